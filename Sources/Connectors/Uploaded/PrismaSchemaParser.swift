import Runtime

/// Reads a Prisma schema into the model, as the tables Prisma Migrate would create on PostgreSQL:
/// models (with `@@map`/`@map` names), scalar, list and enum fields, optional fields, `@id`/`@@id`,
/// `@unique`/`@@unique`, `@@index`, `@default`, `@relation(fields:, references:)` foreign keys, and
/// implicit many-to-many relations through Prisma's `_AToB` join tables. `datasource` and
/// `generator` blocks are ignored; `///` comments become the table's or column's comment.
struct PrismaSchemaParser {
    struct Token: Equatable {
        enum Kind: Equatable { case word, string, number, symbol, newline, doc }
        var kind: Kind
        var text: String
        var line: Int
        var column: Int
    }

    private struct Attribute {
        var name: String
        /// Positional and named arguments, as raw token lists.
        var positional: [[Token]] = []
        var named: [String: [Token]] = [:]
        var line: Int
    }

    private struct Field {
        var name: String
        var type: String
        var optional: Bool
        var list: Bool
        var attributes: [Attribute]
        var doc: String?
        var line: Int
        var column: Int
    }

    private struct Model {
        var name: String
        var fields: [Field] = []
        var blockAttributes: [Attribute] = []
        var doc: String?
        var line: Int
        var tableName: String {
            blockAttributes.first { $0.name == "map" }.flatMap { $0.positional.first?.first?.text } ?? name
        }
    }

    private var tokens: [Token] = []
    private var position = 0
    private var models: [Model] = []
    private var enums: [(name: String, values: [String], dbName: String)] = []
    private var warnings: [String] = []

    static func parse(_ text: String) throws(SQLSyntaxError) -> (model: SchemaModel, warnings: [String]) {
        var parser = PrismaSchemaParser()
        parser.tokens = try tokenize(text)
        try parser.readBlocks()
        let model = try parser.build()
        return (model, parser.warnings)
    }

    // MARK: - Tokens

    static func tokenize(_ text: String) throws(SQLSyntaxError) -> [Token] {
        let bytes = Array(text.utf8)
        guard bytes.count <= SQLTokenizer.maxBytes else { throw SQLSyntaxError(message: "the document is too large", line: 1, column: 1) }
        var tokens: [Token] = []
        var index = 0
        var line = 1
        var lineStart = 0
        func isWordByte(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D || b >= 0x80
        }
        while index < bytes.count {
            let byte = bytes[index]
            let column = index - lineStart + 1
            switch byte {
            case 0x0A:
                tokens.append(Token(kind: .newline, text: "\n", line: line, column: column))
                line += 1
                index += 1
                lineStart = index
            case 0x20, 0x09, 0x0D:
                index += 1
            case 0: throw SQLSyntaxError(message: "NUL byte in the document", line: line, column: column)
            case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2F:
                let isDoc = index + 2 < bytes.count && bytes[index + 2] == 0x2F
                var end = index
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                if isDoc {
                    let text = String(decoding: bytes[(index + 3)..<end], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                    tokens.append(Token(kind: .doc, text: text, line: line, column: column))
                }
                index = end
            case 0x22:
                var value: [UInt8] = []
                var i = index + 1
                var closed = false
                while i < bytes.count && bytes[i] != 0x0A {
                    if bytes[i] == 0x5C, i + 1 < bytes.count {
                        value.append(bytes[i + 1])
                        i += 2
                        continue
                    }
                    if bytes[i] == 0x22 {
                        closed = true
                        i += 1
                        break
                    }
                    value.append(bytes[i])
                    i += 1
                }
                guard closed else { throw SQLSyntaxError(message: "unterminated string", line: line, column: column) }
                tokens.append(Token(kind: .string, text: String(decoding: value, as: UTF8.self), line: line, column: column))
                index = i
            case 0x40:
                let double = index + 1 < bytes.count && bytes[index + 1] == 0x40
                tokens.append(Token(kind: .symbol, text: double ? "@@" : "@", line: line, column: column))
                index += double ? 2 : 1
            default:
                if isWordByte(byte) && byte != 0x2D {
                    var i = index + 1
                    while i < bytes.count && (isWordByte(bytes[i]) && bytes[i] != 0x2D || bytes[i] == 0x2E && byte >= 0x30 && byte <= 0x39) { i += 1 }
                    let text = String(decoding: bytes[index..<i], as: UTF8.self)
                    let numeric = byte >= 0x30 && byte <= 0x39
                    tokens.append(Token(kind: numeric ? .number : .word, text: text, line: line, column: column))
                    index = i
                } else if byte == 0x2D, index + 1 < bytes.count, bytes[index + 1] >= 0x30, bytes[index + 1] <= 0x39 {
                    var i = index + 1
                    while i < bytes.count && ((bytes[i] >= 0x30 && bytes[i] <= 0x39) || bytes[i] == 0x2E) { i += 1 }
                    tokens.append(Token(kind: .number, text: String(decoding: bytes[index..<i], as: UTF8.self), line: line, column: column))
                    index = i
                } else if "{}()[],:?=.!".utf8.contains(byte) {
                    tokens.append(Token(kind: .symbol, text: String(UnicodeScalar(byte)), line: line, column: column))
                    index += 1
                } else {
                    throw SQLSyntaxError(message: "unexpected character '\(String(UnicodeScalar(byte)))'", line: line, column: column)
                }
            }
        }
        return tokens
    }

    // MARK: - Blocks

    private mutating func readBlocks() throws(SQLSyntaxError) {
        var doc: [String] = []
        while position < tokens.count {
            let token = tokens[position]
            switch token.kind {
            case .newline:
                position += 1
            case .doc:
                doc.append(token.text)
                position += 1
            case .word where ["model", "enum", "datasource", "generator", "view", "type"].contains(token.text):
                position += 1
                let name = try word()
                try expect("{")
                switch token.text {
                case "model":
                    models.append(try modelBody(name: name, doc: doc.isEmpty ? nil : doc.joined(separator: "\n"), line: token.line))
                case "enum":
                    enums.append(try enumBody(name: name))
                default:
                    if token.text == "view" || token.text == "type" {
                        warnings.append("line \(token.line): \(token.text) \(name) skipped")
                    }
                    try skipBlock()
                }
                doc = []
            default:
                throw SQLSyntaxError(message: "expected model, enum, datasource or generator, found '\(token.text)'", line: token.line, column: token.column)
            }
        }
    }

    private mutating func modelBody(name: String, doc: String?, line: Int) throws(SQLSyntaxError) -> Model {
        var model = Model(name: name, doc: doc, line: line)
        var fieldDoc: [String] = []
        while true {
            guard position < tokens.count else { throw SQLSyntaxError(message: "model \(name) is not closed", line: line, column: 1) }
            let token = tokens[position]
            if token.kind == .newline { position += 1; continue }
            if token.kind == .doc { fieldDoc.append(token.text); position += 1; continue }
            if token.text == "}" && token.kind == .symbol { position += 1; return model }
            if token.text == "@@" && token.kind == .symbol {
                position += 1
                model.blockAttributes.append(try attribute())
                continue
            }
            let fieldName = try word()
            guard position < tokens.count else { throw SQLSyntaxError(message: "field \(fieldName) has no type", line: token.line, column: token.column) }
            let typeToken = tokens[position]
            let type = try word()
            var optional = false
            var list = false
            if accept("[") {
                try expect("]")
                list = true
            }
            if accept("?") { optional = true }
            var attributes: [Attribute] = []
            while position < tokens.count, tokens[position].kind == .symbol, tokens[position].text == "@" {
                position += 1
                attributes.append(try attribute())
            }
            guard position >= tokens.count || tokens[position].kind == .newline || tokens[position].text == "}" else {
                throw SQLSyntaxError(message: "unexpected '\(tokens[position].text)' after field \(fieldName)", line: tokens[position].line, column: tokens[position].column)
            }
            model.fields.append(Field(
                name: fieldName, type: type, optional: optional, list: list, attributes: attributes,
                doc: fieldDoc.isEmpty ? nil : fieldDoc.joined(separator: "\n"), line: typeToken.line, column: typeToken.column))
            fieldDoc = []
        }
    }

    private mutating func enumBody(name: String) throws(SQLSyntaxError) -> (name: String, values: [String], dbName: String) {
        var values: [String] = []
        var dbName = name
        while true {
            guard position < tokens.count else { throw SQLSyntaxError(message: "enum \(name) is not closed", line: tokens.last?.line ?? 1, column: 1) }
            let token = tokens[position]
            if token.kind == .newline || token.kind == .doc { position += 1; continue }
            if token.kind == .symbol && token.text == "}" { position += 1; break }
            if token.kind == .symbol && token.text == "@@" {
                position += 1
                let attribute = try attribute()
                if attribute.name == "map", let mapped = attribute.positional.first?.first?.text { dbName = mapped }
                continue
            }
            var value = try word()
            if position < tokens.count, tokens[position].text == "@" {
                position += 1
                let attribute = try attribute()
                if attribute.name == "map", let mapped = attribute.positional.first?.first?.text { value = mapped }
            }
            values.append(value)
        }
        return (name, values, dbName)
    }

    /// `name`, `db.VarChar(255)`, `relation(fields: [a], references: [b], onDelete: Cascade)`.
    private mutating func attribute() throws(SQLSyntaxError) -> Attribute {
        let line = tokens[min(position, tokens.count - 1)].line
        var name = try word()
        while accept(".") { name += "." + (try word()) }
        var attribute = Attribute(name: name, line: line)
        guard accept("(") else { return attribute }
        var depth = 0
        var current: [Token] = []
        var currentName: String?
        func flush(_ attribute: inout Attribute) {
            guard !current.isEmpty else { return }
            if let name = currentName { attribute.named[name] = current } else { attribute.positional.append(current) }
            current = []
            currentName = nil
        }
        while position < tokens.count {
            let token = tokens[position]
            position += 1
            if token.kind == .newline { continue }
            if token.kind == .symbol && (token.text == "(" || token.text == "[") { depth += 1 }
            if token.kind == .symbol && (token.text == ")" || token.text == "]") {
                if depth == 0 && token.text == ")" {
                    flush(&attribute)
                    return attribute
                }
                depth -= 1
            }
            if depth == 0 && token.kind == .symbol && token.text == "," {
                flush(&attribute)
                continue
            }
            if depth == 0 && current.count == 1 && token.kind == .symbol && token.text == ":" && current[0].kind == .word {
                currentName = current[0].text
                current = []
                continue
            }
            current.append(token)
        }
        throw SQLSyntaxError(message: "attribute @\(name) is not closed", line: line, column: 1)
    }

    private mutating func skipBlock() throws(SQLSyntaxError) {
        var depth = 1
        while position < tokens.count && depth > 0 {
            if tokens[position].kind == .symbol && tokens[position].text == "{" { depth += 1 }
            if tokens[position].kind == .symbol && tokens[position].text == "}" { depth -= 1 }
            position += 1
        }
        guard depth == 0 else { throw SQLSyntaxError(message: "a block is not closed", line: tokens.last?.line ?? 1, column: 1) }
    }

    private mutating func word() throws(SQLSyntaxError) -> String {
        guard position < tokens.count, tokens[position].kind == .word else {
            let token = position < tokens.count ? tokens[position] : tokens.last
            throw SQLSyntaxError(message: "expected a name, found '\(token?.text ?? "end")'", line: token?.line ?? 1, column: token?.column ?? 1)
        }
        position += 1
        return tokens[position - 1].text
    }

    private mutating func accept(_ symbol: String) -> Bool {
        guard position < tokens.count, tokens[position].kind == .symbol, tokens[position].text == symbol else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ symbol: String) throws(SQLSyntaxError) {
        guard accept(symbol) else {
            let token = position < tokens.count ? tokens[position] : tokens.last
            throw SQLSyntaxError(message: "expected '\(symbol)', found '\(token?.text ?? "end")'", line: token?.line ?? 1, column: token?.column ?? 1)
        }
    }

    // MARK: - Model

    private static func names(_ tokens: [Token]?) -> [String] {
        (tokens ?? []).filter { $0.kind == .word || $0.kind == .string }.map(\.text)
    }

    private mutating func build() throws(SQLSyntaxError) -> SchemaModel {
        let modelNames = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let enumNames = Dictionary(enums.map { ($0.name, $0.dbName) }, uniquingKeysWith: { first, _ in first })
        var tables: [SchemaDraft.Table] = []
        var keys: [SchemaDraft.Key] = []
        var foreignKeys: [SchemaDraft.ForeignKey] = []
        var indexes: [JSONValue] = []

        func columnName(_ field: Field) -> String {
            field.attributes.first { $0.name == "map" }.flatMap { $0.positional.first?.first?.text } ?? field.name
        }

        for model in models {
            let table = model.tableName
            var draft = SchemaDraft.Table(schema: "public", name: table, kind: "r", comment: model.doc)
            for field in model.fields where modelNames[field.type] == nil {
                guard let type = scalarType(field, enums: enumNames) else {
                    warnings.append("line \(field.line): field \(model.name).\(field.name) of type \(field.type) skipped")
                    continue
                }
                var column = SchemaDraft.Column(name: columnName(field), type: type, notNull: !field.optional, comment: field.doc)
                if let defaultAttribute = field.attributes.first(where: { $0.name == "default" }), let value = defaultAttribute.positional.first {
                    if value.first?.text == "autoincrement" {
                        let sequence = "\(table)_\(column.name)_seq"
                        column.defaultExpression = "nextval('\(SQLNames.quoteIfNeeded(sequence))'::regclass)"
                    } else {
                        column.defaultExpression = defaultExpression(value, type: type, field: field, enums: enumNames)
                    }
                }
                draft.columns.append(column)
                if field.attributes.contains(where: { $0.name == "id" }) {
                    keys.append(SchemaDraft.Key(schema: "public", table: table, name: "\(table)_pkey", type: "p", columns: [column.name]))
                }
                if let unique = field.attributes.first(where: { $0.name == "unique" }) {
                    let name = unique.named["map"]?.first?.text ?? "\(table)_\(column.name)_key"
                    keys.append(SchemaDraft.Key(schema: "public", table: table, name: name, type: "u", columns: [column.name]))
                }
            }
            let fieldColumns = Dictionary(model.fields.map { ($0.name, columnName($0)) }, uniquingKeysWith: { first, _ in first })
            func columns(_ tokens: [Token]?) -> [String] { Self.names(tokens).map { fieldColumns[$0] ?? $0 } }
            for attribute in model.blockAttributes {
                let listed = columns(attribute.named["fields"] ?? attribute.positional.first)
                switch attribute.name {
                case "id":
                    let name = attribute.named["map"]?.first?.text ?? attribute.named["name"]?.first?.text ?? "\(table)_pkey"
                    keys.append(SchemaDraft.Key(schema: "public", table: table, name: name, type: "p", columns: listed))
                case "unique":
                    let name = attribute.named["map"]?.first?.text ?? "\(table)_\(listed.joined(separator: "_"))_key"
                    keys.append(SchemaDraft.Key(schema: "public", table: table, name: name, type: "u", columns: listed))
                case "index":
                    let name = attribute.named["map"]?.first?.text ?? "\(table)_\(listed.joined(separator: "_"))_idx"
                    indexes.append([
                        "schema": "public", "table": .string(table), "name": .string(name), "unique": false, "method": "btree",
                        "columns": .array(listed.map(JSONValue.string)),
                    ])
                case "map", "schema": break
                default: warnings.append("line \(attribute.line): @@\(attribute.name) on \(model.name) skipped")
                }
            }
            for key in keys where key.table == table && key.type == "p" {
                for index in draft.columns.indices where key.columns.contains(draft.columns[index].name) { draft.columns[index].notNull = true }
            }
            // Relation fields that hold the foreign key.
            for field in model.fields {
                guard let target = modelNames[field.type], let relation = field.attributes.first(where: { $0.name == "relation" }),
                    relation.named["fields"] != nil
                else { continue }
                let from = columns(relation.named["fields"])
                let targetColumns = Dictionary(target.fields.map { ($0.name, columnName($0)) }, uniquingKeysWith: { first, _ in first })
                let to = Self.names(relation.named["references"]).map { targetColumns[$0] ?? $0 }
                guard from.count == to.count, !from.isEmpty else {
                    throw SQLSyntaxError(message: "@relation on \(model.name).\(field.name) needs as many fields as references", line: relation.line, column: 1)
                }
                let name = relation.named["map"]?.first?.text ?? "\(table)_\(from.joined(separator: "_"))_fkey"
                foreignKeys.append(SchemaDraft.ForeignKey(
                    schema: "public", table: table, name: name, columns: from, targetSchema: "public", targetTable: target.tableName,
                    targetColumns: to))
            }
            tables.append(draft)
        }
        // Implicit many-to-many: list fields on both sides, no `fields`; Prisma joins them through
        // `_AToB` (model names in order, or `_RelationName`) with columns A and B.
        var done = Set<String>()
        for model in models {
            for field in model.fields where field.list {
                guard let target = modelNames[field.type] else { continue }
                let relationName = field.attributes.first { $0.name == "relation" }.flatMap { Self.names($0.positional.first ?? $0.named["name"]).first }
                let back = target.fields.first { other in
                    other.list && other.type == model.name
                        && (other.attributes.first { $0.name == "relation" }.flatMap { Self.names($0.positional.first ?? $0.named["name"]).first }) == relationName
                }
                guard back != nil, target.name != model.name || relationName != nil else { continue }
                let (a, b) = model.name < target.name ? (model, target) : (target, model)
                let junction = "_" + (relationName ?? "\(a.name)To\(b.name)")
                guard done.insert(junction).inserted else { continue }
                guard let aKey = keys.first(where: { $0.table == a.tableName && $0.type == "p" }), aKey.columns.count == 1,
                    let bKey = keys.first(where: { $0.table == b.tableName && $0.type == "p" }), bKey.columns.count == 1,
                    let aColumn = tables.first(where: { $0.name == a.tableName })?.columns.first(where: { $0.name == aKey.columns[0] }),
                    let bColumn = tables.first(where: { $0.name == b.tableName })?.columns.first(where: { $0.name == bKey.columns[0] })
                else {
                    warnings.append("line \(field.line): many-to-many \(junction) needs single-column ids on both sides; skipped")
                    continue
                }
                var aType = aColumn.type
                aType.serial = false
                var bType = bColumn.type
                bType.serial = false
                tables.append(SchemaDraft.Table(
                    schema: "public", name: junction, kind: "r",
                    columns: [SchemaDraft.Column(name: "A", type: aType, notNull: true), SchemaDraft.Column(name: "B", type: bType, notNull: true)]))
                keys.append(SchemaDraft.Key(schema: "public", table: junction, name: "\(junction)_AB_pkey", type: "p", columns: ["A", "B"]))
                indexes.append([
                    "schema": "public", "table": .string(junction), "name": .string("\(junction)_B_index"), "unique": false, "method": "btree",
                    "columns": ["B"],
                ])
                foreignKeys.append(SchemaDraft.ForeignKey(
                    schema: "public", table: junction, name: "\(junction)_A_fkey", columns: ["A"], targetSchema: "public",
                    targetTable: a.tableName, targetColumns: aKey.columns))
                foreignKeys.append(SchemaDraft.ForeignKey(
                    schema: "public", table: junction, name: "\(junction)_B_fkey", columns: ["B"], targetSchema: "public",
                    targetTable: b.tableName, targetColumns: bKey.columns))
            }
        }
        let enumDrafts = enums.map { SchemaDraft.Enum(schema: "public", name: $0.dbName, values: $0.values) }
        return SchemaDraft(tables: tables, keys: keys, foreignKeys: foreignKeys, indexes: indexes, enums: enumDrafts, functions: []).build()
    }

    /// Prisma's scalar types as Prisma Migrate creates them on PostgreSQL, `@db.*` overriding.
    private func scalarType(_ field: Field, enums: [String: String]) -> SQLTypeName? {
        let native = field.attributes.first { $0.name.hasPrefix("db.") }
        var words: [String]
        var modifiers: [String] = []
        if let native {
            modifiers = native.positional.compactMap { $0.first?.text }
            switch native.name.dropFirst(3).lowercased() {
            case "varchar": words = ["character", "varying"]
            case "char": words = ["character"]
            case "text": words = ["text"]
            case "uuid": words = ["uuid"]
            case "integer": words = ["integer"]
            case "smallint": words = ["smallint"]
            case "bigint": words = ["bigint"]
            case "real": words = ["real"]
            case "doubleprecision": words = ["double", "precision"]
            case "decimal": words = ["numeric"]
            case "boolean": words = ["boolean"]
            case "timestamp": words = ["timestamp"]
            case "timestamptz": words = ["timestamptz"]
            case "date": words = ["date"]
            case "time": words = ["time"]
            case "json": words = ["json"]
            case "jsonb": words = ["jsonb"]
            case "bytea": words = ["bytea"]
            case "inet": words = ["inet"]
            default: return nil
            }
        } else {
            switch field.type {
            case "String": words = ["text"]
            case "Int": words = ["integer"]
            case "BigInt": words = ["bigint"]
            case "Float": words = ["double", "precision"]
            case "Decimal":
                words = ["numeric"]
                modifiers = ["65", "30"]
            case "Boolean": words = ["boolean"]
            case "DateTime":
                words = ["timestamp"]
                modifiers = ["3"]
            case "Json": words = ["jsonb"]
            case "Bytes": words = ["bytea"]
            default:
                guard let dbName = enums[field.type] else { return nil }
                words = [dbName]
            }
        }
        return SQLTypeName.resolve(
            words: words, schema: nil, modifiers: modifiers, dimensions: field.list ? 1 : 0,
            enums: Dictionary(enums.values.map { ($0, "public") }, uniquingKeysWith: { first, _ in first }))
    }

    /// `@default(…)` as PostgreSQL would print the column default; functions Prisma evaluates in
    /// its client (`cuid()`, `uuid()` on a text column) have no database default.
    private mutating func defaultExpression(_ value: [Token], type: SQLTypeName, field: Field, enums: [String: String]) -> String? {
        guard let first = value.first else { return nil }
        switch (first.kind, first.text) {
        case (.word, "now"): return "CURRENT_TIMESTAMP"
        case (.word, "uuid") where type.typname == "uuid": return "gen_random_uuid()"
        case (.word, "dbgenerated"):
            return value.count >= 3 && value[2].kind == .string ? value[2].text : nil
        case (.word, "true"), (.word, "false"): return first.text
        case (.number, _): return first.text
        case (.string, _): return "'\(first.text.replacingOccurrences(of: "'", with: "''"))'::\(type.native)"
        case (.word, let name) where type.typtype == "e": return "'\(name)'::\(type.native)"
        case (.symbol, "["): return "'{}'::\(type.native)"
        default:
            warnings.append("line \(field.line): @default(\(first.text)…) on \(field.name) is applied by Prisma's client, not the database")
            return nil
        }
    }
}
