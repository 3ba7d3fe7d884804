import Runtime

/// Reads a PostgreSQL schema — `pg_dump --schema-only` output or hand-written DDL — into the same
/// model live introspection builds. It understands CREATE TABLE (inline and table constraints,
/// identity, serial and generated columns), ALTER TABLE … ADD CONSTRAINT / SET DEFAULT / ADD
/// GENERATED, CREATE INDEX, CREATE TYPE … AS ENUM, CREATE VIEW, CREATE FUNCTION signatures and
/// COMMENT ON; every other statement is skipped with a warning naming its line.
struct SQLSchemaParser {
    private var tokens: [SQLToken] = []
    private let source: [UInt8]
    private var position = 0
    private var statementStart = 0
    private var statementEnd = 0

    private var tables: [SchemaDraft.Table] = []
    private var tableIndex: [String: Int] = [:]
    private var keys: [SchemaDraft.Key] = []
    private var keyNames = Set<String>()
    /// Tables, keys and indexes a document may define: far beyond real schemas, well short of
    /// what would tie up the node or the hosted database's lock table.
    static let maxObjects = 20_000
    private var foreignKeys: [SchemaDraft.ForeignKey] = []
    private var indexes: [JSONValue] = []
    private var enums: [SchemaDraft.Enum] = []
    private var enumSchemas: [String: String] = [:]
    private var functions: [JSONValue] = []
    private(set) var warnings: [String] = []

    init(_ text: String) {
        source = Array(text.utf8)
    }

    static func parse(_ text: String) throws(SQLSyntaxError) -> (model: SchemaModel, warnings: [String]) {
        var parser = SQLSchemaParser(text)
        parser.tokens = try SQLTokenizer.tokenize(text)
        try parser.run()
        return (parser.build(), parser.warnings)
    }

    // MARK: - Statements

    private mutating func run() throws(SQLSyntaxError) {
        while position < tokens.count {
            if tokens[position].isSymbol(";") {
                position += 1
                continue
            }
            statementStart = position
            statementEnd = Self.statementEnd(tokens, from: position)
            try statement()
            position = statementEnd + 1
        }
    }

    /// The index of the `;` ending the statement at `from` (or the end), at parenthesis depth 0.
    private static func statementEnd(_ tokens: [SQLToken], from: Int) -> Int {
        var depth = 0
        var index = from
        while index < tokens.count {
            let token = tokens[index]
            if token.isSymbol("(") { depth += 1 }
            if token.isSymbol(")") { depth = max(0, depth - 1) }
            if token.isSymbol(";") && depth == 0 { return index }
            index += 1
        }
        return tokens.count
    }

    private mutating func statement() throws(SQLSyntaxError) {
        let first = current
        if first.isWord("create") {
            position += 1
            _ = accept("or") && expect("replace")
            _ = accept("temporary") || accept("temp") || accept("unlogged")
            if accept("table") { return try createTable() }
            if accept("unique") {
                try expectWord("index")
                return try createIndex(unique: true)
            }
            if accept("index") { return try createIndex(unique: false) }
            if accept("type") { return try createType(at: first) }
            if accept("view") { return try createView(materialized: false) }
            if accept("materialized") {
                try expectWord("view")
                return try createView(materialized: true)
            }
            if accept("function") { return try createFunction() }
        } else if first.isWord("alter") && peekWord(1) == "table" {
            position += 2
            return try alterTable()
        } else if first.isWord("comment") && peekWord(1) == "on" {
            position += 2
            return try comment()
        }
        skip(from: first)
    }

    /// Records a statement we do not model. Ownership, grants and session settings are pg_dump's
    /// routine noise and are dropped silently.
    private mutating func skip(from token: SQLToken) {
        let statement = tokens[statementStart..<min(statementEnd, tokens.count)]
        let head = statement.prefix(3).map { $0.kind == .word ? $0.text.uppercased() : $0.text }.joined(separator: " ")
        let silent = ["set", "select", "grant", "revoke"].contains(statement.first?.text ?? "")
            || (statement.first?.isWord("alter") == true && statement.contains { $0.isWord("owner") || $0.isWord("sequence") })
        if !silent && warnings.count < 200 {
            warnings.append("line \(token.line): \(head) … skipped")
        }
    }

    // MARK: CREATE TABLE

    private mutating func createTable() throws(SQLSyntaxError) {
        let startToken = tokens[position - 1]
        _ = accept("if") && expect("not") && expect("exists")
        let (schema, name) = try qualifiedName()
        guard acceptSymbol("(") else {
            // CREATE TABLE … AS / PARTITION OF / OF type: not a definition we can read.
            return skip(from: startToken)
        }
        var table = SchemaDraft.Table(schema: schema, name: name, kind: "r")
        var pendingKeys: [(String, String, [String])] = []
        var pendingForeignKeys: [SchemaDraft.ForeignKey] = []
        while true {
            if acceptSymbol(")") { break }
            var constraintName: String?
            if accept("constraint") { constraintName = try identifier() }
            if let constraint = try tableConstraint(schema: schema, table: name, named: constraintName) {
                switch constraint {
                case .key(let key): pendingKeys.append((key.name, key.type, key.columns))
                case .foreignKey(let fk): pendingForeignKeys.append(fk)
                case .ignored: break
                }
            } else if constraintName == nil && accept("like") {
                warnings.append("line \(tokens[position - 1].line): LIKE in CREATE TABLE \(name) skipped")
                skipUntilListEnd()
            } else {
                guard constraintName == nil else { throw unexpected("PRIMARY KEY, UNIQUE, FOREIGN KEY or CHECK") }
                let column = try columnDefinition(table: name, schema: schema, keys: &pendingKeys, foreignKeys: &pendingForeignKeys)
                table.columns.append(column)
            }
            if acceptSymbol(",") { continue }
            guard acceptSymbol(")") else { throw unexpected("',' or ')'") }
            break
        }
        let key = "\(schema).\(name)"
        guard tables.count < Self.maxObjects else { throw SQLSyntaxError(message: "more than \(Self.maxObjects) tables", line: startToken.line, column: startToken.column) }
        if let existing = tableIndex[key] {
            tables[existing] = table
        } else {
            tableIndex[key] = tables.count
            tables.append(table)
        }
        for (constraint, type, columns) in pendingKeys { addKey(schema: schema, table: name, name: constraint, type: type, columns: columns) }
        foreignKeys += pendingForeignKeys
    }

    private enum TableConstraint {
        case key(SchemaDraft.Key)
        case foreignKey(SchemaDraft.ForeignKey)
        case ignored
    }

    /// A table constraint (in CREATE TABLE or ALTER TABLE … ADD), or nil when none starts here.
    private mutating func tableConstraint(schema: String, table: String, named name: String?) throws(SQLSyntaxError) -> TableConstraint? {
        if accept("primary") {
            try expectWord("key")
            let columns = try columnList()
            skipIndexParameters()
            return .key(SchemaDraft.Key(schema: schema, table: table, name: name ?? "\(table)_pkey", type: "p", columns: columns))
        }
        if accept("unique") {
            _ = accept("nulls") && (accept("not") || true) && expect("distinct")
            let columns = try columnList()
            skipIndexParameters()
            return .key(SchemaDraft.Key(schema: schema, table: table, name: name ?? "\(table)_\(columns.joined(separator: "_"))_key", type: "u", columns: columns))
        }
        if accept("foreign") {
            try expectWord("key")
            let columns = try columnList()
            try expectWord("references")
            var fk = try references(schema: schema, table: table, columns: columns)
            fk.name = name ?? "\(table)_\(columns.joined(separator: "_"))_fkey"
            return .foreignKey(fk)
        }
        if accept("check") || accept("exclude") {
            skipUntilListEnd()
            return .ignored
        }
        return nil
    }

    private mutating func columnDefinition(
        table: String, schema: String, keys: inout [(String, String, [String])], foreignKeys: inout [SchemaDraft.ForeignKey]
    ) throws(SQLSyntaxError) -> SchemaDraft.Column {
        let name = try identifier()
        let type = try typeName()
        var column = SchemaDraft.Column(name: name, type: type)
        if type.serial {
            column.notNull = true
            let sequence = "\(table)_\(name)_seq"
            let qualified = (schema == "public" ? "" : "\(SQLNames.quoteIfNeeded(schema)).") + SQLNames.quoteIfNeeded(sequence)
            column.defaultExpression = "nextval('\(qualified)'::regclass)"
        }
        while position < statementEnd, !current.isSymbol(","), !current.isSymbol(")") {
            var constraintName: String?
            if accept("constraint") { constraintName = try identifier() }
            if accept("not") {
                try expectWord("null")
                column.notNull = true
            } else if accept("null") {
                continue
            } else if accept("default") {
                column.defaultExpression = expressionText(until: Self.columnConstraintWords)
            } else if accept("primary") {
                try expectWord("key")
                column.notNull = true
                keys.append((constraintName ?? "\(table)_pkey", "p", [name]))
            } else if accept("unique") {
                keys.append((constraintName ?? "\(table)_\(name)_key", "u", [name]))
            } else if accept("references") {
                var fk = try references(schema: schema, table: table, columns: [name])
                fk.name = constraintName ?? "\(table)_\(name)_fkey"
                foreignKeys.append(fk)
            } else if accept("check") {
                try skipParenthesised()
                _ = accept("no") && expect("inherit")
            } else if accept("generated") {
                if accept("always") {} else {
                    try expectWord("by")
                    try expectWord("default")
                }
                try expectWord("as")
                if accept("identity") {
                    column.identity = true
                    column.notNull = true
                    if current.isSymbol("(") { try skipParenthesised() }
                } else {
                    // The catalog shows a generated column's expression as its default; so does the model.
                    guard acceptSymbol("(") else { throw unexpected("'('") }
                    column.defaultExpression = expressionText(until: [])
                    guard acceptSymbol(")") else { throw unexpected("')'") }
                    _ = accept("stored")
                    column.generated = true
                }
            } else if accept("collate") {
                _ = try qualifiedName()
            } else if accept("deferrable") || accept("initially") || accept("immediate") || accept("deferred") {
                continue
            } else {
                throw unexpected("a column constraint")
            }
        }
        return column
    }

    private static let columnConstraintWords: Set<String> = [
        "constraint", "not", "null", "default", "primary", "unique", "references", "check", "generated", "collate",
    ]

    /// `REFERENCES t [(cols)] [MATCH …] [ON DELETE …] [ON UPDATE …] [DEFERRABLE …]`.
    private mutating func references(schema: String, table: String, columns: [String]) throws(SQLSyntaxError) -> SchemaDraft.ForeignKey {
        let (targetSchema, targetTable) = try qualifiedName()
        var targetColumns: [String] = []
        if current.isSymbol("(") { targetColumns = try columnList() }
        while position < statementEnd {
            if accept("match") {
                advance()
            } else if accept("on") {
                advance()  // delete | update
                if accept("set") {
                    advance()  // null | default
                    if current.isSymbol("(") { try skipParenthesised() }
                } else if accept("no") {
                    try expectWord("action")
                } else {
                    advance()  // cascade | restrict
                }
            } else if accept("deferrable") || accept("initially") || accept("deferred") || accept("immediate") {
                continue
            } else if accept("not") {
                if !accept("deferrable") { try expectWord("valid") }
            } else {
                break
            }
        }
        return SchemaDraft.ForeignKey(
            schema: schema, table: table, name: "", columns: columns, targetSchema: targetSchema, targetTable: targetTable,
            targetColumns: targetColumns)
    }

    // MARK: ALTER TABLE

    private mutating func alterTable() throws(SQLSyntaxError) {
        let start = tokens[position - 2]
        _ = accept("if") && expect("exists")
        _ = accept("only")
        let (schema, name) = try qualifiedName()
        repeat {
            if accept("add") {
                var constraintName: String?
                if accept("constraint") { constraintName = try identifier() }
                if let constraint = try tableConstraint(schema: schema, table: name, named: constraintName) {
                    switch constraint {
                    case .key(let key): addKey(schema: schema, table: name, name: key.name, type: key.type, columns: key.columns)
                    case .foreignKey(let fk): foreignKeys.append(fk)
                    case .ignored: break
                    }
                } else {
                    _ = accept("column")
                    _ = accept("if") && expect("not") && expect("exists")
                    var keys: [(String, String, [String])] = []
                    var fks: [SchemaDraft.ForeignKey] = []
                    let column = try columnDefinition(table: name, schema: schema, keys: &keys, foreignKeys: &fks)
                    if let index = tableIndex["\(schema).\(name)"] { tables[index].columns.append(column) }
                    for (constraint, type, columns) in keys { addKey(schema: schema, table: name, name: constraint, type: type, columns: columns) }
                    foreignKeys += fks
                }
            } else if accept("alter") {
                _ = accept("column")
                let column = try identifier()
                if accept("set") {
                    if accept("default") {
                        let expression = expressionText(until: [])
                        mutateColumn(schema, name, column) { $0.defaultExpression = expression }
                    } else if accept("not") {
                        try expectWord("null")
                        mutateColumn(schema, name, column) { $0.notNull = true }
                    } else {
                        skipUntilListEnd()
                    }
                } else if accept("add") {
                    try expectWord("generated")
                    skipUntilListEnd()
                    mutateColumn(schema, name, column) {
                        $0.identity = true
                        $0.notNull = true
                    }
                } else if accept("drop") {
                    if accept("default") {
                        mutateColumn(schema, name, column) { $0.defaultExpression = nil }
                    } else if accept("not") {
                        try expectWord("null")
                        mutateColumn(schema, name, column) { $0.notNull = false }
                    } else {
                        skipUntilListEnd()
                    }
                } else {
                    skipUntilListEnd()
                }
            } else if position < statementEnd && (current.isWord("owner") || current.isWord("enable")
                || current.isWord("replica") || current.isWord("force") || current.isWord("cluster"))
            {
                skipUntilListEnd()
            } else {
                warnings.append("line \(start.line): ALTER TABLE \(name) action skipped")
                skipUntilListEnd()
            }
        } while acceptSymbol(",")
    }

    // MARK: CREATE INDEX, TYPE, VIEW, FUNCTION; COMMENT ON

    private mutating func createIndex(unique: Bool) throws(SQLSyntaxError) {
        _ = accept("concurrently")
        _ = accept("if") && expect("not") && expect("exists")
        var indexName = ""
        if !current.isWord("on") { indexName = try identifier() }
        try expectWord("on")
        _ = accept("only")
        let (schema, table) = try qualifiedName()
        var method = "btree"
        if accept("using") { method = try identifier() }
        guard acceptSymbol("(") else { throw unexpected("'('") }
        var columns: [String] = []
        while true {
            let start = position
            _ = expressionText(until: [])
            let element = Array(tokens[start..<position])
            // A plain column (with ordering options) reads as its name; anything else as written.
            if let first = element.first, first.kind == .word || first.kind == .quoted,
                element.dropFirst().allSatisfy({ $0.kind == .word && ["asc", "desc", "nulls", "first", "last"].contains($0.text) })
            {
                columns.append(first.text)
            } else if let first = element.first, let last = element.last {
                columns.append(String(decoding: source[first.start..<last.end], as: UTF8.self))
            }
            if acceptSymbol(",") { continue }
            guard acceptSymbol(")") else { throw unexpected("')'") }
            break
        }
        if indexName.isEmpty { indexName = "\(table)_\(columns.first ?? "expr")_idx" }
        indexes.append([
            "schema": .string(schema), "table": .string(table), "name": .string(indexName), "unique": .bool(unique),
            "method": .string(method), "columns": .array(columns.map(JSONValue.string)),
        ])
    }

    private mutating func createType(at start: SQLToken) throws(SQLSyntaxError) {
        let (schema, name) = try qualifiedName()
        guard accept("as"), accept("enum") else { return skip(from: start) }
        guard acceptSymbol("(") else { throw unexpected("'('") }
        var values: [String] = []
        while !acceptSymbol(")") {
            guard position < statementEnd, current.kind == .string else { throw unexpected("an enum label") }
            values.append(current.text)
            advance()
            _ = acceptSymbol(",")
        }
        enums.append(SchemaDraft.Enum(schema: schema, name: name, values: values))
        enumSchemas[name] = schema
    }

    private mutating func createView(materialized: Bool) throws(SQLSyntaxError) {
        _ = accept("if") && expect("not") && expect("exists")
        let (schema, name) = try qualifiedName()
        var declared: [String] = []
        if current.isSymbol("(") { declared = try columnList() }
        if accept("with") { try skipParenthesised() }
        try expectWord("as")
        var view = SchemaDraft.Table(schema: schema, name: name, kind: materialized ? "m" : "v")
        let body = Array(tokens[position..<statementEnd])
        let (columns, simple) = viewColumns(body)
        for (index, column) in columns.enumerated() {
            var draft = column.draft
            if index < declared.count { draft.name = declared[index] }
            view.columns.append(draft)
            view.viewColumnUpdatable[draft.name] = !materialized && simple && column.direct
        }
        view.updatableMask = !materialized && simple ? 28 : 0
        tableIndex["\(schema).\(name)"] = tables.count
        tables.append(view)
    }

    /// The output columns of a view's SELECT, typed from the tables it reads where an item is a
    /// plain column reference; and whether the view is simple enough for PostgreSQL to update it
    /// (one table, no grouping, set operations, DISTINCT, LIMIT or aggregates).
    private func viewColumns(_ body: [SQLToken]) -> (columns: [(draft: SchemaDraft.Column, direct: Bool)], simple: Bool) {
        guard let select = body.firstIndex(where: { $0.isWord("select") }) else { return ([], false) }
        var depth = 0
        var fromIndex: Int?
        var items: [[SQLToken]] = [[]]
        var index = select + 1
        while index < body.count {
            let token = body[index]
            if token.isSymbol("(") { depth += 1 }
            if token.isSymbol(")") { depth -= 1 }
            if depth == 0 && token.isWord("from") {
                fromIndex = index
                break
            }
            if depth == 0 && token.isSymbol(",") { items.append([]) } else { items[items.count - 1].append(token) }
            index += 1
        }
        // FROM: the tables and their aliases.
        var sources: [(alias: String, table: SchemaDraft.Table)] = []
        var simple = true
        if let fromIndex {
            var cursor = fromIndex + 1
            depth = 0
            var expectTable = true
            while cursor < body.count {
                let token = body[cursor]
                if token.isSymbol("(") { depth += 1; simple = false }
                if token.isSymbol(")") { depth -= 1 }
                if depth == 0 && (token.isWord("where") || token.isWord("group") || token.isWord("order") || token.isWord("limit")
                    || token.isWord("union") || token.isWord("having") || token.isWord("window") || token.isWord("offset"))
                {
                    if !token.isWord("where") && !token.isWord("order") { simple = false }
                    var rest = cursor
                    while rest < body.count {
                        if ["group", "union", "having", "limit", "offset", "intersect", "except", "window"].contains(body[rest].text)
                            && body[rest].kind == .word
                        {
                            simple = false
                        }
                        rest += 1
                    }
                    break
                }
                if depth == 0 && (token.isSymbol(",") || token.isWord("join")) {
                    expectTable = true
                    simple = false
                    cursor += 1
                    continue
                }
                if depth == 0 && expectTable && (token.kind == .word || token.kind == .quoted) && !["lateral", "only", "inner", "left", "right", "full", "outer", "cross", "natural"].contains(token.text) {
                    var schema = "public"
                    var name = token.text
                    var next = cursor + 1
                    if next + 1 < body.count, body[next].isSymbol(".") {
                        schema = name
                        name = body[next + 1].text
                        next += 2
                    }
                    var alias = name
                    if next < body.count, body[next].isWord("as") { next += 1 }
                    if next < body.count, body[next].kind == .quoted || (body[next].kind == .word && !["where", "join", "on", "group", "order", "limit", "inner", "left", "right", "full", "cross", "natural", "union", "using"].contains(body[next].text)) {
                        alias = body[next].text
                        next += 1
                    }
                    if let found = tableIndex["\(schema).\(name)"] { sources.append((alias, tables[found])) } else { simple = false }
                    expectTable = false
                    cursor = next
                    continue
                }
                cursor += 1
            }
        } else {
            simple = false
        }
        if let first = body[select + 1..<body.count].first, first.isWord("distinct") { simple = false }
        var columns: [(SchemaDraft.Column, Bool)] = []
        for item in items where !item.isEmpty {
            var expression = item
            var alias: String?
            if expression.count >= 2, let last = expression.last, last.kind == .word || last.kind == .quoted {
                let beforeLast = expression[expression.count - 2]
                if beforeLast.isWord("as") {
                    alias = last.text
                    expression.removeLast(2)
                } else if !beforeLast.isSymbol(".") && !beforeLast.isSymbol("::") && expression.count == 2 {
                    alias = last.text
                    expression.removeLast()
                }
            }
            // `t.col`, `col`, `schema.t.col`: a column of a FROM table.
            let names = expression.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            let dots = expression.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            let isReference = !expression.isEmpty && names.allSatisfy { $0.kind == .word || $0.kind == .quoted }
                && dots.allSatisfy { $0.isSymbol(".") } && expression.count % 2 == 1
            if isReference, let columnName = names.last?.text {
                let qualifier = names.count >= 2 ? names[names.count - 2].text : nil
                let table = sources.first { qualifier == nil || $0.alias == qualifier }?.table
                if let base = table?.columns.first(where: { $0.name == columnName }) {
                    var draft = base
                    draft.name = alias ?? columnName
                    draft.notNull = false
                    draft.defaultExpression = nil
                    draft.identity = false
                    draft.generated = false
                    draft.comment = nil
                    columns.append((draft, !base.generated))
                    continue
                }
            }
            if aggregateCall(expression) { simple = false }
            let name = alias ?? (expression.last(where: { $0.kind == .word || $0.kind == .quoted })?.text ?? "?column?")
            var type = SQLTypeName(native: "text", typname: "text", category: "S")
            if let cast = expression.lastIndex(where: { $0.isSymbol("::") }), cast + 1 < expression.count {
                let words = expression[(cast + 1)...].filter { $0.kind == .word }.map(\.text)
                type = SQLTypeName.resolve(words: words, schema: nil, modifiers: [], dimensions: 0, enums: enumSchemas)
            } else if let call = expression.first, call.isWord("count") {
                type = SQLTypeName(native: "bigint", typname: "int8", category: "N")
            }
            columns.append((SchemaDraft.Column(name: name, type: type), false))
        }
        return (columns, simple && sources.count == 1)
    }

    private func aggregateCall(_ expression: [SQLToken]) -> Bool {
        let aggregates: Set<String> = ["count", "sum", "avg", "min", "max", "array_agg", "json_agg", "jsonb_agg", "string_agg", "bool_and", "bool_or"]
        return expression.enumerated().contains { index, token in
            token.kind == .word && aggregates.contains(token.text) && index + 1 < expression.count && expression[index + 1].isSymbol("(")
        }
    }

    private mutating func createFunction() throws(SQLSyntaxError) {
        let (schema, name) = try qualifiedName()
        guard acceptSymbol("(") else { throw unexpected("'('") }
        var names: [JSONValue] = []
        var modes: [JSONValue] = []
        var types: [JSONValue] = []
        var categories: [JSONValue] = []
        var defaults = 0
        while !acceptSymbol(")") {
            var mode = "i"
            if accept("in") {} else if accept("out") { mode = "o" } else if accept("inout") { mode = "b" } else if accept("variadic") { mode = "v" }
            // `name type` or just `type`: a name is followed by something that is not `,`, `)` or `(`.
            var argName = ""
            if position + 1 < statementEnd, current.kind == .word || current.kind == .quoted,
                !tokens[position + 1].isSymbol(","), !tokens[position + 1].isSymbol(")"), !tokens[position + 1].isSymbol("("),
                !tokens[position + 1].isSymbol("."), !tokens[position + 1].isSymbol("["),
                !(current.kind == .word && ["double", "character", "timestamp", "time", "bit"].contains(current.text))
            {
                argName = try identifier()
            }
            let type = try typeName()
            if accept("default") || acceptSymbol("=") {
                _ = expressionText(until: [])
                defaults += 1
            }
            names.append(.string(argName))
            modes.append(.string(mode))
            if mode != "o" {
                types.append(.string(type.native))
                categories.append(.string(type.category))
            }
            _ = acceptSymbol(",")
        }
        var returnType = "void"
        var returnsSet = false
        var returnEntity: (String, String)?
        var volatility = "v"
        while position < statementEnd {
            if accept("returns") {
                if accept("setof") { returnsSet = true }
                if accept("table") {
                    returnsSet = true
                    try skipParenthesised()
                    returnType = "record"
                    continue
                }
                let start = position
                let type = try typeName()
                returnType = type.native
                let (typeSchema, typeName) = (position - start >= 3 && tokens[start + 1].isSymbol(".")) ? (tokens[start].text, tokens[start + 2].text) : ("public", tokens[start].text)
                if tableIndex["\(typeSchema).\(typeName)"] != nil { returnEntity = (typeSchema, typeName) }
            } else if accept("immutable") {
                volatility = "i"
            } else if accept("stable") {
                volatility = "s"
            } else if accept("volatile") {
                volatility = "v"
            } else {
                advance()
            }
        }
        var function: JSONObject = [
            "schema": .string(schema), "name": .string(name), "argtypes": .array(types), "argcategories": .array(categories),
            "argnames": .array(names), "argmodes": .array(modes), "ndefaults": .integer(Int64(defaults)), "rettype": .string(returnType),
            "retset": .bool(returnsSet), "volatility": .string(volatility),
        ]
        if let (relSchema, relName) = returnEntity {
            function["retrelschema"] = .string(relSchema)
            function["retrelname"] = .string(relName)
        }
        functions.append(.object(function))
    }

    private mutating func comment() throws(SQLSyntaxError) {
        let start = tokens[position - 2]
        if accept("table") || accept("view") || (accept("materialized") && expect("view")) {
            let (schema, name) = try qualifiedName()
            try expectWord("is")
            let text = commentText()
            if let index = tableIndex["\(schema).\(name)"] { tables[index].comment = text }
        } else if accept("column") {
            var parts = [try identifier()]
            while acceptSymbol(".") { parts.append(try identifier()) }
            try expectWord("is")
            let text = commentText()
            guard parts.count >= 2 else { return }
            let schema = parts.count >= 3 ? parts[parts.count - 3] : "public"
            mutateColumn(schema, parts[parts.count - 2], parts[parts.count - 1]) { $0.comment = text }
        } else {
            skip(from: start)
        }
    }

    private mutating func commentText() -> String? {
        guard position < statementEnd else { return nil }
        let token = current
        position += 1
        return token.kind == .string ? token.text : nil
    }

    // MARK: - Pieces

    /// A type name: `integer`, `character varying(20)`, `numeric(5,2)`, `public.mood`, `text[]`,
    /// `timestamp(3) with time zone`, `integer ARRAY`.
    private mutating func typeName() throws(SQLSyntaxError) -> SQLTypeName {
        var words: [String] = []
        var schema: String?
        var modifiers: [String] = []
        guard position < statementEnd, current.kind == .word || current.kind == .quoted else { throw unexpected("a type name") }
        words.append(current.text)
        advance()
        if acceptSymbol(".") {
            schema = words[0]
            words = [try identifier()]
        }
        let multiWord: Set<String> = ["double", "character", "bit", "timestamp", "time", "national"]
        if multiWord.contains(words[0]) {
            if accept("precision") { words.append("precision") }
            if accept("varying") { words.append("varying") }
        }
        if acceptSymbol("(") {
            while !acceptSymbol(")") {
                guard position < statementEnd else { throw unexpected("')'") }
                if !current.isSymbol(",") { modifiers.append(current.text) }
                advance()
            }
        }
        if words[0] == "timestamp" || words[0] == "time" {
            if accept("with") {
                try expectWord("time")
                try expectWord("zone")
                words += ["with", "time", "zone"]
            } else if accept("without") {
                try expectWord("time")
                try expectWord("zone")
                words += ["without", "time", "zone"]
            }
        }
        var dimensions = 0
        while acceptSymbol("[") {
            while position < statementEnd && !current.isSymbol("]") { position += 1 }
            _ = acceptSymbol("]")
            dimensions += 1
        }
        if accept("array") {
            dimensions += 1
            if acceptSymbol("[") {
                while position < statementEnd && !current.isSymbol("]") { position += 1 }
                _ = acceptSymbol("]")
            }
        }
        return SQLTypeName.resolve(words: words, schema: schema, modifiers: modifiers, dimensions: dimensions, enums: enumSchemas)
    }

    /// An expression as written, up to the next `,` or `)` at depth 0, or a word of `stopWords`.
    private mutating func expressionText(until stopWords: Set<String>) -> String? {
        let start = position
        var depth = 0
        while position < statementEnd {
            let token = current
            if token.isSymbol("(") { depth += 1 }
            if token.isSymbol(")") {
                if depth == 0 { break }
                depth -= 1
            }
            if depth == 0 && token.isSymbol(",") { break }
            if depth == 0 && token.kind == .word && stopWords.contains(token.text) && position > start { break }
            position += 1
        }
        guard position > start else { return nil }
        return String(decoding: source[tokens[start].start..<tokens[position - 1].end], as: UTF8.self)
    }

    private mutating func qualifiedName() throws(SQLSyntaxError) -> (String, String) {
        let first = try identifier()
        if acceptSymbol(".") { return (first, try identifier()) }
        return ("public", first)
    }

    private mutating func identifier() throws(SQLSyntaxError) -> String {
        guard position < statementEnd, current.kind == .word || current.kind == .quoted else { throw unexpected("a name") }
        position += 1
        return tokens[position - 1].text
    }

    private mutating func columnList() throws(SQLSyntaxError) -> [String] {
        guard acceptSymbol("(") else { throw unexpected("'('") }
        var names: [String] = []
        repeat { names.append(try identifier()) } while acceptSymbol(",")
        guard acceptSymbol(")") else { throw unexpected("')'") }
        return names
    }

    private mutating func skipParenthesised() throws(SQLSyntaxError) {
        guard acceptSymbol("(") else { throw unexpected("'('") }
        var depth = 1
        while position < statementEnd && depth > 0 {
            if current.isSymbol("(") { depth += 1 }
            if current.isSymbol(")") { depth -= 1 }
            position += 1
        }
        guard depth == 0 else { throw unexpected("')'") }
    }

    /// To the next `,` or `)` at depth 0 (the end of a table element or an ALTER action).
    private mutating func skipUntilListEnd() {
        _ = expressionText(until: [])
    }

    private mutating func skipIndexParameters() {
        while position < statementEnd, current.isWord("include") || current.isWord("with") || current.isWord("using")
            || current.isWord("deferrable") || current.isWord("initially")
        {
            skipUntilListEnd()
        }
    }

    /// The token at `position`, or an empty end-of-statement marker past the statement's end: the
    /// parser may look at it freely without ever indexing beyond the document.
    private var current: SQLToken {
        if position < statementEnd && position < tokens.count { return tokens[position] }
        let last = tokens.last
        return SQLToken(kind: .symbol, text: "", line: last?.line ?? 1, column: last?.column ?? 1, start: last?.end ?? 0, end: last?.end ?? 0)
    }

    /// Steps over one token, never past the statement's end.
    private mutating func advance() {
        if position < statementEnd { position += 1 }
    }

    private mutating func accept(_ word: String) -> Bool {
        guard position < statementEnd, current.isWord(word) else { return false }
        position += 1
        return true
    }

    private mutating func acceptSymbol(_ symbol: String) -> Bool {
        guard position < statementEnd, current.isSymbol(symbol) else { return false }
        position += 1
        return true
    }

    /// For chains like `accept("if") && expect("not")`: true when the word is there.
    private mutating func expect(_ word: String) -> Bool { accept(word) }

    private mutating func expectWord(_ word: String) throws(SQLSyntaxError) {
        guard accept(word) else { throw unexpected(word.uppercased()) }
    }

    private func peekWord(_ offset: Int) -> String? {
        let index = position + offset
        guard index < tokens.count, tokens[index].kind == .word else { return nil }
        return tokens[index].text
    }

    private func unexpected(_ expected: String) -> SQLSyntaxError {
        guard position < min(statementEnd, tokens.count) else {
            let last = tokens[max(0, min(statementEnd, tokens.count) - 1)]
            return SQLSyntaxError(message: "expected \(expected) before the end of the statement", line: last.line, column: last.column)
        }
        let token = current
        return SQLSyntaxError(message: "expected \(expected), found '\(token.text)'", line: token.line, column: token.column)
    }

    private mutating func addKey(schema: String, table: String, name: String, type: String, columns: [String]) {
        // A key named twice keeps its last definition; the set keeps the common case linear.
        if !keyNames.insert("\(schema).\(table).\(name)").inserted {
            keys.removeAll { $0.schema == schema && $0.table == table && $0.name == name }
        }
        guard keys.count < Self.maxObjects else { return }
        keys.append(SchemaDraft.Key(schema: schema, table: table, name: name, type: type, columns: columns))
        if type == "p" { for column in columns { mutateColumn(schema, table, column) { $0.notNull = true } } }
    }

    private mutating func mutateColumn(_ schema: String, _ table: String, _ column: String, _ change: (inout SchemaDraft.Column) -> Void) {
        guard let index = tableIndex["\(schema).\(table)"], let columnIndex = tables[index].columns.firstIndex(where: { $0.name == column }) else { return }
        change(&tables[index].columns[columnIndex])
    }

    // MARK: - Model

    private func build() -> SchemaModel {
        SchemaDraft(tables: tables, keys: keys, foreignKeys: foreignKeys, indexes: indexes, enums: enums, functions: functions).build()
    }
}
