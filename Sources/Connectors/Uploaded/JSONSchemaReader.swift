import Runtime

/// Reads JSON Schema (draft 7 and 2020-12) and OpenAPI 3.0/3.1 documents into the model. Object
/// schemas under `$defs`/`definitions` (or `components.schemas`) become tables; properties become
/// columns (types and formats mapped to PostgreSQL's); a `$ref` to another object becomes a
/// foreign key (`<property>_id`), an array of such refs the inverse; enums become enum types;
/// `allOf` is merged; `oneOf`/`anyOf` and inline objects are stored as `jsonb`. OpenAPI paths
/// become operations. Errors and warnings name their place with a JSON pointer.
struct JSONSchemaReader {
    private let root: JSONValue
    private var tables: [SchemaDraft.Table] = []
    private var keys: [SchemaDraft.Key] = []
    private var foreignKeys: [SchemaDraft.ForeignKey] = []
    private var enums: [SchemaDraft.Enum] = []
    private var operations: [Operation] = []
    private(set) var warnings: [String] = []
    /// Entity name by the pointer of its definition.
    private var entityPointers: [String: String] = [:]
    static let maxRefDepth = 32
    /// Schema nodes a document may make us visit: `allOf` fans out, and a small document could
    /// otherwise ask for an exponential walk.
    static let maxWork = 200_000
    private let work = WorkCounter()

    final class WorkCounter: @unchecked Sendable {
        var count = 0
    }

    struct Failure: Error {
        var pointer: String
        var message: String
    }

    init(root: JSONValue) {
        self.root = root
    }

    static func read(_ text: String, openAPI: Bool) throws(Failure) -> (model: SchemaModel, warnings: [String]) {
        guard text.utf8.count <= SQLTokenizer.maxBytes else { throw Failure(pointer: "", message: "the document is larger than 16 MiB") }
        let value: JSONValue
        do {
            value = try StructuredDocument.parse(text)
        } catch {
            throw Failure(pointer: "", message: error.message)
        }
        guard value.objectValue != nil else { throw Failure(pointer: "", message: "expected an object at the top of the document") }
        var reader = JSONSchemaReader(root: value)
        try reader.run(openAPI: openAPI)
        let draft = SchemaDraft(tables: reader.tables, keys: reader.keys, foreignKeys: reader.foreignKeys, indexes: [], enums: reader.enums, functions: [])
        var model = draft.build()
        model.operations = reader.operations
        return (model, reader.warnings)
    }

    // MARK: - Entities

    private mutating func run(openAPI: Bool) throws(Failure) {
        var definitions: [(pointer: String, name: String, schema: JSONObject)] = []
        if openAPI {
            guard let version = root["openapi"]?.stringValue, version.hasPrefix("3.") else {
                throw Failure(pointer: "/openapi", message: "expected an OpenAPI 3.0 or 3.1 document (\"openapi\": \"3.x\")")
            }
            for (name, schema) in root["components"]?["schemas"]?.objectValue ?? [:] {
                guard let object = schema.objectValue else { throw Failure(pointer: "/components/schemas/\(Self.escape(name))", message: "expected a schema object") }
                definitions.append(("/components/schemas/\(Self.escape(name))", name, object))
            }
        } else {
            for container in ["$defs", "definitions"] {
                for (name, schema) in root[container]?.objectValue ?? [:] {
                    guard let object = schema.objectValue else { throw Failure(pointer: "/\(container)/\(Self.escape(name))", message: "expected a schema object") }
                    definitions.append(("/\(container)/\(Self.escape(name))", name, object))
                }
            }
            if let title = root["title"]?.stringValue, root["properties"] != nil, let object = root.objectValue {
                definitions.append(("", title, object))
            }
        }
        // Only object schemas are tables; the rest (enums, scalars) are types columns refer to.
        var entities: [(pointer: String, name: String, schema: JSONObject)] = []
        for definition in definitions {
            let resolved = try merged(definition.schema, pointer: definition.pointer, depth: 0)
            guard Self.isObject(resolved) else { continue }
            entityPointers[definition.pointer] = definition.name
            entities.append((definition.pointer, definition.name, resolved))
        }
        guard entities.count <= SQLSchemaParser.maxObjects else { throw Failure(pointer: "", message: "more than \(SQLSchemaParser.maxObjects) object schemas") }
        guard !entities.isEmpty else {
            throw Failure(pointer: openAPI ? "/components/schemas" : "/$defs", message: "no object schemas to make tables of")
        }
        // Primary keys first: references need their targets' keys.
        var primaryKeys: [String: (column: String, type: SQLTypeName)] = [:]
        for entity in entities {
            let properties = entity.schema["properties"]?.objectValue ?? [:]
            let marked = properties.first { $0.value["x-primary-key"]?.boolValue == true }?.key
            if let name = marked ?? (properties["id"] != nil ? "id" : nil), let property = properties[name] {
                let type = (try? scalarType(property, pointer: entity.pointer + "/properties/" + name, entity: entity.name, column: name, depth: 0))?.type
                primaryKeys[entity.name] = (name, type ?? SQLTypeName(native: "text", typname: "text", category: "S"))
            } else {
                primaryKeys[entity.name] = ("id", SQLTypeName(native: "bigint", typname: "int8", category: "N"))
            }
        }
        for entity in entities {
            try table(entity.name, schema: entity.schema, pointer: entity.pointer, primaryKeys: primaryKeys)
        }
        if openAPI { readOperations() }
    }

    private mutating func table(
        _ name: String, schema: JSONObject, pointer: String, primaryKeys: [String: (column: String, type: SQLTypeName)]
    ) throws(Failure) {
        var table = SchemaDraft.Table(schema: "public", name: name, kind: "r", comment: schema["description"]?.stringValue)
        let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        let key = primaryKeys[name]!
        let properties = schema["properties"]?.objectValue ?? [:]
        if properties[key.column] == nil {
            var id = SchemaDraft.Column(name: "id", type: key.type, notNull: true)
            id.identity = true
            table.columns.append(id)
            warnings.append("\(pointer): no id property; an identity column id was added")
        }
        for (property, value) in properties {
            let propertyPointer = pointer + "/properties/" + Self.escape(property)
            guard let object = value.objectValue else { throw Failure(pointer: propertyPointer, message: "expected a schema object") }
            // A reference to another table: a foreign key column.
            if let target = try referencedEntity(object, pointer: propertyPointer) {
                guard let targetKey = primaryKeys[target] else { continue }
                let column = "\(property)_id"
                table.columns.append(SchemaDraft.Column(name: column, type: Self.keyType(targetKey.type), notNull: required.contains(property)))
                foreignKeys.append(SchemaDraft.ForeignKey(
                    schema: "public", table: name, name: "\(name)_\(column)_fkey", columns: [column], targetSchema: "public",
                    targetTable: target, targetColumns: [targetKey.column]))
                continue
            }
            // An array of references: the other table points back here.
            if object["type"]?.stringValue == "array", let items = object["items"]?.objectValue,
                let target = try referencedEntity(items, pointer: propertyPointer + "/items")
            {
                let column = "\(name.lowercased())_id"
                let back = SchemaDraft.Column(name: column, type: Self.keyType(key.type))
                if target == name {
                    if !table.columns.contains(where: { $0.name == column }) { table.columns.append(back) }
                } else if let index = tables.firstIndex(where: { $0.name == target }) {
                    if !tables[index].columns.contains(where: { $0.name == column }) { tables[index].columns.append(back) }
                } else {
                    pendingBackReferences.append((target, column, back.type))
                }
                foreignKeys.append(SchemaDraft.ForeignKey(
                    schema: "public", table: target, name: "\(target)_\(column)_fkey", columns: [column], targetSchema: "public",
                    targetTable: name, targetColumns: [key.column]))
                continue
            }
            guard let (type, nullableByType) = try scalarType(value, pointer: propertyPointer, entity: name, column: property, depth: 0) else {
                warnings.append("\(propertyPointer): stored as jsonb")
                table.columns.append(SchemaDraft.Column(name: property, type: SQLTypeName(native: "jsonb", typname: "jsonb", category: "U"), notNull: required.contains(property)))
                continue
            }
            var column = SchemaDraft.Column(
                name: property, type: type, notNull: (required.contains(property) || property == key.column) && !nullableByType,
                comment: object["description"]?.stringValue)
            if let value = object["default"], let text = Self.defaultLiteral(value, type: type) { column.defaultExpression = text }
            column.checks = valueChecks(value, pointer: propertyPointer)
            table.columns.append(column)
        }
        for pending in pendingBackReferences where pending.table == name && !table.columns.contains(where: { $0.name == pending.column }) {
            table.columns.append(SchemaDraft.Column(name: pending.column, type: pending.type))
        }
        pendingBackReferences.removeAll { $0.table == name }
        keys.append(SchemaDraft.Key(schema: "public", table: name, name: "\(name)_pkey", type: "p", columns: [key.column]))
        tables.append(table)
        if let index = tables.indices.last { tables[index].columns.sort { a, b in a.name == key.column && b.name != key.column } }
    }

    private var pendingBackReferences: [(table: String, column: String, type: SQLTypeName)] = []

    /// The validation keywords a column can enforce as CHECK constraints; others are named in
    /// the warnings (`enum` is an enum type already; `maxLength` alone also sizes `varchar`).
    private mutating func valueChecks(_ value: JSONValue, pointer: String) -> ValueChecks? {
        guard let schema = value.objectValue else { return nil }
        var checks = ValueChecks()
        checks.minimum = schema["minimum"]?.doubleValue
        checks.maximum = schema["maximum"]?.doubleValue
        // Draft 4 (and OpenAPI 3.0) write exclusiveMinimum as a flag on minimum.
        if case .bool(let exclusive)? = schema["exclusiveMinimum"] {
            if exclusive { (checks.exclusiveMinimum, checks.minimum) = (checks.minimum, nil) }
        } else {
            checks.exclusiveMinimum = schema["exclusiveMinimum"]?.doubleValue
        }
        if case .bool(let exclusive)? = schema["exclusiveMaximum"] {
            if exclusive { (checks.exclusiveMaximum, checks.maximum) = (checks.maximum, nil) }
        } else {
            checks.exclusiveMaximum = schema["exclusiveMaximum"]?.doubleValue
        }
        checks.minLength = schema["minLength"]?.intValue.map(Int.init)
        checks.maxLength = schema["maxLength"]?.intValue.map(Int.init)
        checks.pattern = schema["pattern"]?.stringValue
        for keyword in ["multipleOf", "format", "minItems", "maxItems", "uniqueItems", "const", "not", "oneOf", "anyOf"] where schema[keyword] != nil {
            if keyword == "format" { continue }
            warnings.append("\(pointer)/\(keyword): not enforced by the hosted table")
        }
        return checks.isEmpty ? nil : checks
    }

    /// The entity a schema refers to by `$ref` (directly, or as the only item of `allOf`).
    private func referencedEntity(_ schema: JSONObject, pointer: String) throws(Failure) -> String? {
        var candidate = schema
        if let all = schema["allOf"]?.arrayValue, all.count == 1, let only = all[0].objectValue { candidate = only }
        guard let ref = candidate["$ref"]?.stringValue else { return nil }
        guard ref.hasPrefix("#") else { throw Failure(pointer: pointer + "/$ref", message: "only references inside the document are read: \(ref)") }
        return entityPointers[String(ref.dropFirst())]
    }

    /// A schema with `$ref` followed and `allOf` merged (properties and required united).
    private func merged(_ schema: JSONObject, pointer: String, depth: Int) throws(Failure) -> JSONObject {
        guard depth < Self.maxRefDepth else { throw Failure(pointer: pointer, message: "references nest deeper than \(Self.maxRefDepth) (a cycle?)") }
        work.count += 1
        guard work.count <= Self.maxWork else { throw Failure(pointer: pointer, message: "the schema expands to more than \(Self.maxWork) parts") }
        var result = schema
        if let ref = schema["$ref"]?.stringValue {
            result = try merged(try resolve(ref, at: pointer), pointer: String(ref.dropFirst()), depth: depth + 1)
        }
        if let all = schema["allOf"]?.arrayValue {
            var properties = result["properties"]?.objectValue ?? [:]
            var required = result["required"]?.arrayValue ?? []
            for (index, part) in all.enumerated() {
                guard let object = part.objectValue else { throw Failure(pointer: "\(pointer)/allOf/\(index)", message: "expected a schema object") }
                let piece = try merged(object, pointer: "\(pointer)/allOf/\(index)", depth: depth + 1)
                for (name, value) in piece["properties"]?.objectValue ?? [:] { properties[name] = value }
                required += piece["required"]?.arrayValue ?? []
                if result["type"] == nil, let type = piece["type"] { result["type"] = type }
            }
            result["properties"] = .object(properties)
            result["required"] = .array(required)
            result["allOf"] = nil
        }
        return result
    }

    private func resolve(_ ref: String, at pointer: String) throws(Failure) -> JSONObject {
        guard ref.hasPrefix("#") else { throw Failure(pointer: pointer + "/$ref", message: "only references inside the document are read: \(ref)") }
        var current = root
        for part in ref.dropFirst().split(separator: "/", omittingEmptySubsequences: true) {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard let next = current[key] else { throw Failure(pointer: pointer + "/$ref", message: "\(ref) does not exist in the document") }
            current = next
        }
        guard let object = current.objectValue else { throw Failure(pointer: pointer + "/$ref", message: "\(ref) is not a schema object") }
        return object
    }

    private static func isObject(_ schema: JSONObject) -> Bool {
        schema["type"]?.stringValue == "object" || (schema["type"] == nil && schema["properties"] != nil)
    }

    /// A column type for a property, and whether the schema itself allows null; nil for shapes a
    /// column cannot hold except as jsonb.
    private mutating func scalarType(
        _ value: JSONValue, pointer: String, entity: String, column: String, depth: Int
    ) throws(Failure) -> (type: SQLTypeName, nullable: Bool)? {
        guard let raw = value.objectValue else { throw Failure(pointer: pointer, message: "expected a schema object") }
        let schema = try merged(raw, pointer: pointer, depth: depth)
        var nullable = schema["nullable"]?.boolValue == true
        var typeName = schema["type"]?.stringValue
        if let types = schema["type"]?.arrayValue {
            let names = types.compactMap(\.stringValue)
            nullable = nullable || names.contains("null")
            let rest = names.filter { $0 != "null" }
            guard rest.count <= 1 else { return nil }
            typeName = rest.first
        }
        if let values = schema["enum"]?.arrayValue {
            let labels = values.compactMap(\.stringValue)
            guard labels.count == values.filter({ $0 != .null }).count, !labels.isEmpty else { return nil }
            let enumName = raw["$ref"]?.stringValue.flatMap { $0.split(separator: "/").last.map(String.init) } ?? "\(entity)_\(column)"
            if !enums.contains(where: { $0.name == enumName }) { enums.append(SchemaDraft.Enum(schema: "public", name: enumName, values: labels)) }
            return (SQLTypeName(native: SQLNames.quoteIfNeeded(enumName), typname: enumName, category: "E", typtype: "e"), nullable)
        }
        let format = schema["format"]?.stringValue
        let words: [String]
        var modifiers: [String] = []
        switch (typeName, format) {
        case ("string", "date-time"?): words = ["timestamptz"]
        case ("string", "date"?): words = ["date"]
        case ("string", "time"?): words = ["time"]
        case ("string", "uuid"?): words = ["uuid"]
        case ("string", "byte"?), ("string", "binary"?): words = ["bytea"]
        case ("string", _):
            if let max = schema["maxLength"]?.intValue, max > 0, max <= 10_485_760 {
                words = ["character", "varying"]
                modifiers = [String(max)]
            } else {
                words = ["text"]
            }
        case ("integer", "int64"?): words = ["bigint"]
        case ("integer", _): words = ["integer"]
        case ("number", "float"?): words = ["real"]
        case ("number", _): words = ["double", "precision"]
        case ("boolean", _): words = ["boolean"]
        case ("array", _):
            guard let items = schema["items"], let (element, _) = try scalarType(items, pointer: pointer + "/items", entity: entity, column: column, depth: depth + 1),
                element.element == nil
            else { return nil }
            return (SQLTypeName(native: element.native + "[]", typname: "_" + element.typname, category: "A", element: (element.typname, element.category, element.typtype)), nullable)
        default: return nil
        }
        return (SQLTypeName.resolve(words: words, schema: nil, modifiers: modifiers, dimensions: 0, enums: [:]), nullable)
    }

    private static func keyType(_ type: SQLTypeName) -> SQLTypeName {
        var type = type
        type.serial = false
        return type
    }

    private static func defaultLiteral(_ value: JSONValue, type: SQLTypeName) -> String? {
        switch value {
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .string(let text): return "'\(text.replacingOccurrences(of: "'", with: "''"))'::\(type.native)"
        default: return nil
        }
    }

    static func escape(_ name: String) -> String {
        name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    // MARK: - OpenAPI operations

    private mutating func readOperations() {
        for (path, item) in root["paths"]?.objectValue ?? [:] {
            for method in ["get", "post", "put", "patch", "delete"] {
                guard let operation = item[method]?.objectValue else { continue }
                let fallback = method + path.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
                let name = operation["operationId"]?.stringValue ?? fallback
                let parameters = (operation["parameters"]?.arrayValue ?? []) + (item["parameters"]?.arrayValue ?? [])
                var arguments: [Operation.Argument] = parameters.compactMap { parameter in
                    var parameter = parameter
                    if let ref = parameter["$ref"]?.stringValue, let resolved = try? resolve(ref, at: "") { parameter = .object(resolved) }
                    guard let argumentName = parameter["name"]?.stringValue else { return nil }
                    let type = parameter["schema"]?["type"]?.stringValue ?? "string"
                    let portable: PortableType = ["integer": .integer, "number": .number, "boolean": .boolean, "array": .array][type] ?? .string
                    return Operation.Argument(name: argumentName, nativeType: type, type: portable, hasDefault: parameter["required"]?.boolValue != true)
                }
                if operation["requestBody"] != nil {
                    arguments.append(Operation.Argument(name: "body", nativeType: "json", type: .json, hasDefault: operation["requestBody"]?["required"]?.boolValue != true))
                }
                let success = operation["responses"]?["200"] ?? operation["responses"]?["201"]
                let schema = success?["content"]?["application/json"]?["schema"]
                var returnsEntity: EntityName?
                var returnsSet = false
                if let ref = (schema?["$ref"] ?? schema?["items"]?["$ref"])?.stringValue, let entity = entityPointers[String(ref.dropFirst())] {
                    returnsEntity = EntityName(schema: "public", name: entity)
                    returnsSet = schema?["type"]?.stringValue == "array"
                }
                operations.append(Operation(
                    schema: "api", name: name, arguments: arguments, returnType: returnsEntity?.name ?? (schema == nil ? "void" : "json"),
                    returnsSet: returnsSet, returnsEntity: returnsEntity, returnsVoid: schema == nil,
                    volatility: method == "get" ? .stable : .volatile, comment: operation["summary"]?.stringValue ?? "\(method.uppercased()) \(path)"))
            }
        }
        operations.sort { $0.name < $1.name }
    }
}
