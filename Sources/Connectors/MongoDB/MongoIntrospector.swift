import CMongoc
import Foundation
import Runtime

/// Builds a MongoDB source's model (contract "Model"): per collection, the `$jsonSchema`
/// validator's fields first, then what a `$sample` of documents shows — each field's type the
/// union of the BSON types seen (int ⊂ long ⊂ double ⊂ decimal; other clashes a `mixed` JSON
/// field and a warning with each type's share), nullable when absent or null anywhere, `_id` the
/// key; unique indexes kept; references from `x_id`/`xId` ObjectId fields (≥ 90 % of the sampled
/// values) to a collection `x`, `xs` or `xes`, and declared relations over them.
struct MongoIntrospector {
    struct DeclaredRelation: Sendable {
        var name: String
        var from: (collection: String, field: String)
        var to: (collection: String, field: String)
    }

    struct Result: Sendable {
        var model: SchemaModel
        var warnings: [JSONValue]
        /// `hello` named a replica set (or a mongos): change streams could be read.
        var replicaSet: Bool
    }

    let database: String
    let sampleSize: Int
    let collections: [String]?
    let relations: [DeclaredRelation]

    /// Connects once with a single-threaded client (it tries server selection once instead of
    /// waiting like a pool would) and reads the database; blocking, so run off the event loops.
    func introspect(url: String) throws -> Result {
        _ = MongoLibrary.ready
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else { throw MongoError(error) }
        defer { mongoc_uri_destroy(uri) }
        mongoc_uri_set_option_as_int32(uri, "serverSelectionTimeoutMS", 5_000)
        mongoc_uri_set_option_as_int32(uri, "connectTimeoutMS", 5_000)
        mongoc_uri_set_option_as_int32(uri, "socketTimeoutMS", 30_000)
        guard let client = mongoc_client_new_from_uri_with_error(uri, &error) else { throw MongoError(error) }
        defer { mongoc_client_destroy(client) }
        mongoc_client_set_error_api(client, 2)
        mongoc_client_set_appname(client, "mini-baas-registration")
        let session = MongoSession(client: client, database: database)
        let hello = try session.command(["hello": .int32(1)], on: "admin")
        var replicaSet = hello["setName"] != nil
        if case .string("isdbgrid")? = hello["msg"] { replicaSet = true }
        // Authentication and the database's readability, before anything is sampled.
        try session.command(["ping": .int32(1)])
        let (model, warnings) = try model(session)
        return Result(model: model, warnings: warnings, replicaSet: replicaSet)
    }

    init(database: String, sampleSize: Int, collections: [String]?, relations: [DeclaredRelation]) {
        self.database = database
        self.sampleSize = sampleSize
        self.collections = collections
        self.relations = relations
    }

    // MARK: - Model

    func model(_ session: MongoSession) throws -> (SchemaModel, [JSONValue]) {
        let listed = try session.listCollections().compactMap { document -> (name: String, view: Bool, options: BSONDocument)? in
            guard case .string(let name)? = document["name"], !name.hasPrefix("system.") else { return nil }
            var options = BSONDocument()
            if case .document(let given)? = document["options"] { options = given }
            var view = false
            if case .string("view")? = document["type"] { view = true }
            return (name, view, options)
        }
        var chosen = listed
        if let wanted = collections {
            let missing = wanted.filter { name in !listed.contains { $0.name == name } }
            guard missing.isEmpty else { throw MongoModelError.missingCollections(missing) }
            chosen = listed.filter { wanted.contains($0.name) }
        }
        guard !chosen.isEmpty else { throw MongoModelError.noCollections(database) }
        var entities: [Entity] = []
        var warnings: [JSONValue] = []
        var references: [String: Set<String>] = [:]
        for collection in chosen.sorted(by: { $0.name < $1.name }) {
            let (entity, referring) = try entity(collection.name, view: collection.view, options: collection.options, warnings: &warnings, session)
            entities.append(entity)
            references[entity.name] = referring
        }
        return (SchemaModel(entities: entities, relations: try relationsOf(entities, references: references)), warnings)
    }

    /// The collection as an entity, and the fields holding ObjectIds in at least 90 % of their
    /// sampled values (candidates for references).
    private func entity(
        _ name: String, view: Bool, options: BSONDocument, warnings: inout [JSONValue], _ session: MongoSession
    ) throws -> (Entity, Set<String>) {
        var fields = FieldSet()
        if case .document(let validator)? = options["validator"], case .document(let schema)? = validator["$jsonSchema"] {
            fields.declare(schema)
        }
        let samples = try session.aggregate(name, pipeline: [.document(["$sample": .document(["size": .int32(Int32(sampleSize))])])], limit: sampleSize)
        for document in samples { fields.observe(document) }
        var columns: [Column] = []
        for field in fields.order {
            let (column, warning) = fields.column(field, sampled: samples.count)
            columns.append(column)
            if let warning { warnings.append(["collection": .string(name), "field": .string(field), "types": .object(warning), "sampled": .integer(Int64(samples.count))]) }
        }
        var uniqueKeys: [UniqueKey] = []
        var indexes: [Index] = []
        if !view {
            for index in try session.listIndexes(name) {
                guard case .string(let indexName)? = index["name"], case .document(let key)? = index["key"] else { continue }
                let keys = key.pairs.map(\.key)
                var unique = false
                if case .bool(true)? = index["unique"] { unique = true }
                indexes.append(Index(name: indexName, columns: keys, unique: unique || indexName == "_id_", method: "btree"))
                if unique, keys.allSatisfy({ key in columns.contains { $0.name == key } }) { uniqueKeys.append(UniqueKey(name: indexName, columns: keys)) }
            }
        }
        let entity = Entity(
            schema: database, name: name, kind: view ? .view : .collection, columns: columns, primaryKey: ["_id"], uniqueKeys: uniqueKeys,
            indexes: indexes, insertable: !view, updatable: !view, deletable: !view)
        return (entity, fields.mostlyObjectIDs(threshold: 0.9))
    }

    // MARK: - Relations

    private func relationsOf(_ entities: [Entity], references: [String: Set<String>]) throws -> [Relation] {
        func entity(_ name: String) -> Entity? { entities.first { $0.name == name } }
        var relations: [Relation] = []
        var declaredFields: Set<String> = []
        for declared in self.relations {
            guard let from = entity(declared.from.collection), from.column(named: declared.from.field) != nil,
                let to = entity(declared.to.collection), to.column(named: declared.to.field) != nil
            else { throw MongoModelError.badRelation(declared.name) }
            declaredFields.insert("\(from.name).\(declared.from.field)")
            relations += pair(declared.name, from: from, field: declared.from.field, to: to, toField: declared.to.field, many: isArray(from, declared.from.field))
        }
        for from in entities {
            for column in from.columns where column.name != "_id" && !declaredFields.contains("\(from.name).\(column.name)") {
                let many = column.nativeType == "array<objectId>"
                let single = column.nativeType == "objectId" || references[from.name]?.contains(column.name) == true
                guard single || many, let stem = Self.referenceStem(column.name, plural: many) else { continue }
                let candidates = [stem, stem + "s", stem + "es"]
                guard let to = candidates.lazy.compactMap(entity).first, to.column(named: "_id")?.nativeType == "objectId" else { continue }
                relations += pair("\(from.name)_\(column.name)_fkey", from: from, field: column.name, to: to, toField: "_id", many: many)
            }
        }
        return relations
    }

    private func isArray(_ entity: Entity, _ field: String) -> Bool {
        entity.column(named: field)?.nativeType.hasPrefix("array") ?? false
    }

    /// A reference and its reverse: many-to-one (one-to-many back); an array of references is
    /// to-many both ways (`$lookup` matches any element).
    private func pair(_ name: String, from: Entity, field: String, to: Entity, toField: String, many: Bool) -> [Relation] {
        [
            Relation(constraint: name, kind: many ? .oneToMany : .manyToOne, from: from.qualifiedName, fromColumns: [field], to: to.qualifiedName, toColumns: [toField]),
            Relation(constraint: name, kind: .oneToMany, from: to.qualifiedName, fromColumns: [toField], to: from.qualifiedName, toColumns: [field]),
        ]
    }

    /// `user_id`/`userId` → `user`; with `plural`, `tag_ids`/`tagIds` → `tag`.
    static func referenceStem(_ field: String, plural: Bool) -> String? {
        for suffix in plural ? ["_ids", "Ids"] : ["_id", "Id"] where field.hasSuffix(suffix) && field.count > suffix.count {
            let stem = String(field.dropLast(suffix.count))
            return stem.prefix(1).lowercased() + stem.dropFirst()
        }
        return nil
    }
}

enum MongoModelError: Error, CustomStringConvertible {
    case noCollections(String)
    case missingCollections([String])
    case badRelation(String)

    var description: String {
        switch self {
        case .noCollections(let database): "database '\(database)' has no collections (or does not exist)"
        case .missingCollections(let names): "collections not found: \(names.joined(separator: ", "))"
        case .badRelation(let name): "relation '\(name)' names a collection or field the model does not have"
        }
    }
}

/// What the validator declares and the samples show, field by field (top level).
struct FieldSet {
    struct Seen {
        var types: [String: Int] = [:]
        var elementTypes: [String: Int] = [:]
        var present = 0
        var nulls = 0
        var declared: [String]?
        var required = false
    }

    private(set) var order: [String] = ["_id"]
    private var seen: [String: Seen] = ["_id": Seen()]

    mutating func declare(_ schema: BSONDocument) {
        var required: Set<String> = []
        if case .array(let names)? = schema["required"] {
            for case .string(let name) in names { required.insert(name) }
        }
        guard case .document(let properties)? = schema["properties"] else { return }
        for (name, property) in properties.pairs where !name.hasPrefix("$") && !name.contains(".") {
            guard case .document(let spec) = property else { continue }
            var types: [String] = []
            switch spec["bsonType"] ?? spec["type"] {
            case .string(let type)?: types = [type]
            case .array(let list)?: types = list.compactMap { if case .string(let type) = $0 { type } else { nil } }
            default: break
            }
            types = types.map { $0 == "number" ? "double" : $0 == "integer" ? "long" : $0 == "boolean" ? "bool" : $0 }
            if seen[name] == nil { order.append(name) }
            var entry = seen[name] ?? Seen()
            entry.declared = types
            entry.required = required.contains(name) && !types.contains("null")
            if types.contains("array"), case .document(let items)? = spec["items"], case .string(let element)? = items["bsonType"] {
                entry.elementTypes[element, default: 0] += 1
            }
            seen[name] = entry
        }
    }

    mutating func observe(_ document: BSONDocument) {
        for (name, value) in document.pairs where !name.hasPrefix("$") && !name.contains(".") && !name.hasPrefix("_mb_") && !name.isEmpty {
            if seen[name] == nil {
                order.append(name)
                seen[name] = Seen()
            }
            seen[name]!.present += 1
            if case .null = value {
                seen[name]!.nulls += 1
                continue
            }
            seen[name]!.types[value.typeName, default: 0] += 1
            if case .array(let items) = value {
                for item in items where item != .null { seen[name]!.elementTypes[item.typeName, default: 0] += 1 }
            }
        }
    }

    /// Fields whose non-null sampled values are ObjectIds at least `threshold` of the time.
    func mostlyObjectIDs(threshold: Double) -> Set<String> {
        Set(seen.compactMap { name, entry in
            let total = entry.types.values.reduce(0, +)
            guard total > 0, Double(entry.types["objectId"] ?? 0) / Double(total) >= threshold else { return nil }
            return name
        })
    }

    /// The field as a column, and a warning when its sampled types clash (each type's share).
    func column(_ name: String, sampled: Int) -> (Column, JSONObject?) {
        let entry = seen[name] ?? Seen()
        let types = entry.declared.map { Set($0.filter { $0 != "null" }) } ?? Set(entry.types.keys)
        let (type, native, element) = Self.resolve(types, elements: Set(entry.elementTypes.keys))
        var nullable = entry.declared != nil ? !entry.required : (entry.present < sampled || entry.nulls > 0 || sampled == 0)
        if name == "_id" { nullable = false }
        var column = Column(name: name, type: type, nativeType: name == "_id" && types.isEmpty ? "objectId" : native, elementType: element, nullable: nullable)
        if name == "_id" && types.isEmpty { column.type = .string }
        var warning: JSONObject?
        if native.hasPrefix("mixed("), entry.declared == nil {
            let total = entry.types.values.reduce(0, +)
            var shares = JSONObject()
            for (key, count) in entry.types.sorted(by: { $0.value > $1.value }) {
                shares[key] = .number((Double(count) / Double(max(total, 1)) * 100).rounded() / 100)
            }
            warning = shares
        }
        return (column, warning)
    }

    static let numeric = ["int", "long", "double", "decimal"]

    static func resolve(_ types: Set<String>, elements: Set<String>) -> (PortableType, String, PortableType?) {
        if types.isEmpty { return (.json, "null", nil) }
        if types.isSubset(of: Set(numeric)) {
            let widest = numeric.last { types.contains($0) } ?? "double"
            switch widest {
            case "int": return (.integer, "int", nil)
            case "long": return (.bigint, "long", nil)
            default: return (.number, widest, nil)
            }
        }
        guard types.count == 1, let only = types.first else { return (.json, "mixed(\(types.sorted().joined(separator: ",")))", nil) }
        switch only {
        case "objectId": return (.string, "objectId", nil)
        case "string": return (.string, "string", nil)
        case "bool": return (.boolean, "bool", nil)
        case "date": return (.datetime, "date", nil)
        case "uuid": return (.uuid, "uuid", nil)
        case "binData": return (.binary, "binData", nil)
        case "object": return (.json, "object", nil)
        case "array":
            if elements.isEmpty { return (.array, "array", .json) }
            let (elementType, elementNative, _) = resolve(elements, elements: [])
            return (.array, "array<\(elementNative)>", elementType)
        default: return (.other, only, nil)
        }
    }
}
