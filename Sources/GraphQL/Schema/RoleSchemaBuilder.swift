import Connectors
import Runtime
import Tenancy

/// Builds one role's `RoleSchema` from a source's model: an entity the role may not read is
/// absent with every relation to it, a column it may not read is absent from type, filter and
/// order, and mutations exist only under write policies. Tables (and views) need a primary key,
/// as in pg_graphql: it makes `nodeId` and cursors.
public struct RoleSchemaBuilder: Sendable {
    public let model: SchemaModel
    public let access: Access
    public let naming: GraphQLNaming

    public init(model: SchemaModel, access: Access, naming: GraphQLNaming) {
        self.model = model
        self.access = access
        self.naming = naming
    }

    static let scalarDescriptions: [(String, String?)] = [
        ("BigFloat", "A high precision floating point value represented as a string"),
        ("BigInt", "An arbitrary size integer represented as a string"),
        ("Boolean", nil),
        ("Cursor", "An opaque string using for tracking a position in results during pagination"),
        ("Date", "A date without time information"),
        ("Datetime", "A date and time"),
        ("Float", nil),
        ("ID", nil),
        ("Int", nil),
        ("JSON", "A Javascript Object Notation value serialized as a string"),
        ("Opaque", "Any type not handled by the type system"),
        ("String", nil),
        ("Time", "A time without date information"),
        ("UUID", "A universally unique identifier"),
    ]

    /// Scalars with their filter's operators (pg_graphql's `<Scalar>Filter` inputs).
    static let filterOperators: [String: [String]] = [
        "BigFloat": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "BigInt": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "Boolean": ["eq", "is"],
        "Date": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "Datetime": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "Float": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "ID": ["eq"],
        "Int": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "String": ["eq", "gt", "gte", "ilike", "in", "iregex", "is", "like", "lt", "lte", "neq", "regex", "startsWith"],
        "Time": ["eq", "gt", "gte", "in", "is", "lt", "lte", "neq"],
        "UUID": ["eq", "in", "is", "neq"],
    ]

    /// A relation field's name from its constraint's comment, as pg_graphql reads it:
    /// `foreign_name` on the table holding the key, `local_name` on the table it points to.
    static func relationName(_ relation: Relation) -> String? {
        guard relation.comment != nil, relation.junction == nil else { return nil }
        let holdsKey = relation.kind == .manyToOne || (relation.kind == .oneToOne && relation.holdsForeignKey == true)
        return CommentDirective(relation.comment).settings[holdsKey ? "foreign_name" : "local_name"]?.stringValue
    }

    /// pg_graphql's filter of an array column whose items are `element`.
    static func listFilter(_ element: String) -> SchemaType {
        var filter = SchemaType(kind: .inputObject, name: element + "ListFilter", description: "Boolean expression comparing fields on type \"[\(element)]\"")
        let items = TypeReference.list(.nonNull(.named(element)))
        filter.add(InputField("containedBy", items))
        filter.add(InputField("contains", items))
        filter.add(InputField("eq", items))
        filter.add(InputField("is", .named("FilterIs")))
        filter.add(InputField("overlaps", items))
        return filter
    }

    public func build() -> RoleSchema {
        // `@graphql({"inflect_names": true, "introspection": true})` on a schema's comment, as
        // pg_graphql reads it, adds to the tenant's settings.
        let schemaSettings = model.graphQLSchemaSettings
        let naming = GraphQLNaming(inflect: self.naming.inflect || schemaSettings["inflect_names"]?.boolValue == true)
        var types: [String: SchemaType] = [:]
        var warnings: [String] = []
        func define(_ type: SchemaType) { types[type.name] = type }

        for (name, description) in Self.scalarDescriptions { define(SchemaType(kind: .scalar, name: name, description: description)) }
        var filterIs = SchemaType(kind: .enumeration, name: "FilterIs")
        filterIs.enumValues = ["NULL", "NOT_NULL"]
        define(filterIs)
        var direction = SchemaType(kind: .enumeration, name: "OrderByDirection", description: "Defines a per-field sorting order")
        direction.enumValues = ["AscNullsFirst", "AscNullsLast", "DescNullsFirst", "DescNullsLast"]
        define(direction)
        var pageInfo = SchemaType(kind: .object, name: "PageInfo")
        pageInfo.add(SchemaField("endCursor", .named("String")))
        pageInfo.add(SchemaField("hasNextPage", .nonNull(.named("Boolean"))))
        pageInfo.add(SchemaField("hasPreviousPage", .nonNull(.named("Boolean"))))
        pageInfo.add(SchemaField("startCursor", .named("String")))
        define(pageInfo)
        var node = SchemaType(kind: .interface, name: "Node")
        node.add(SchemaField("nodeId", .nonNull(.named("ID")), description: "Retrieves a record by `ID`", resolver: .nodeID))

        // Enums whose values are GraphQL names.
        var enumTypes: [String: String] = [:]
        for enumeration in model.enums {
            let typeName = naming.typeName(enumeration.name)
            // `@graphql({"mappings": {"sql label": "GraphQLValue"}})` on the type renames values.
            let directive = CommentDirective(enumeration.comment)
            let mappings = directive.settings["mappings"]?.objectValue ?? [:]
            let renamed = enumeration.values.map { mappings[$0]?.stringValue ?? $0 }
            guard GraphQLNaming.isValid(typeName), types[typeName] == nil, let values = GraphQLNaming.enumValues(renamed), Set(values).count == values.count else {
                warnings.append("enum \(enumeration.name) is left out (its name or values are not GraphQL names)")
                continue
            }
            var type = SchemaType(kind: .enumeration, name: typeName, description: directive.description)
            type.enumValues = values
            for (value, label) in zip(values, enumeration.values) where value != label { type.enumSQLValues[value] = label }
            define(type)
            var filter = SchemaType(kind: .inputObject, name: typeName + "Filter")
            filter.add(InputField("eq", .named(typeName)))
            filter.add(InputField("in", .list(.nonNull(.named(typeName)))))
            filter.add(InputField("is", .named("FilterIs")))
            filter.add(InputField("neq", .named(typeName)))
            define(filter)
            define(Self.listFilter(typeName))
            enumTypes[enumeration.name] = typeName
            enumTypes["\(enumeration.schema).\(enumeration.name)"] = typeName
        }
        for (scalar, operators) in Self.filterOperators {
            var filter = SchemaType(kind: .inputObject, name: scalar + "Filter")
            for op in operators {
                switch op {
                case "in": filter.add(InputField("in", .list(.nonNull(.named(scalar)))))
                case "is": filter.add(InputField("is", .named("FilterIs")))
                case "startsWith", "like", "ilike", "regex", "iregex": filter.add(InputField(op, .named("String")))
                default: filter.add(InputField(op, .named(scalar)))
                }
            }
            define(filter)
            if scalar != "ID" { define(Self.listFilter(scalar)) }
        }

        // Entities the role may read, with a key and a usable name.
        var entityTypes: [String: EntityType] = [:]
        var entityOrder: [EntityType] = []
        var byQualified: [EntityName: EntityType] = [:]
        for entity in model.entities {
            let directive = CommentDirective(entity.comment)
            let typeName = directive.settings["name"]?.stringValue ?? naming.typeName(entity.name)
            guard let grant = access.grant(.read, on: entity, in: model) else { continue }
            var primaryKey = entity.primaryKey
            if primaryKey.isEmpty, let declared = directive.settings["primary_key_columns"]?.arrayValue?.compactMap(\.stringValue), !declared.isEmpty {
                primaryKey = declared
            }
            guard !primaryKey.isEmpty, primaryKey.allSatisfy({ entity.column(named: $0) != nil && grant.allows($0) }) else {
                warnings.append("\(entity.name) is left out: it has no primary key the role can read")
                continue
            }
            guard GraphQLNaming.isValid(typeName), types[typeName] == nil, entityTypes[typeName] == nil else {
                warnings.append("\(entity.name) is left out: '\(typeName)' is not a free GraphQL type name")
                continue
            }
            var keyed = entity
            keyed.primaryKey = primaryKey
            var columns: [(field: String, column: Column)] = []
            var taken: Set<String> = ["nodeId", "__typename"]
            for column in entity.columns where grant.allows(column.name) {
                let name = CommentDirective(column.comment).settings["name"]?.stringValue ?? naming.fieldName(column.name)
                guard GraphQLNaming.isValid(name), taken.insert(name).inserted else {
                    warnings.append("\(entity.name).\(column.name) is left out: '\(name)' is not a free field name")
                    continue
                }
                columns.append((name, column))
            }
            let maxRows = directive.settings["max_rows"]?.intValue.map(Int.init)
            let entityType = EntityType(entity: keyed, typeName: typeName, columns: columns, maxRows: maxRows, restrictsRows: grant.restrictsRows)
            entityTypes[typeName] = entityType
            entityOrder.append(entityType)
            byQualified[entity.qualifiedName] = entityType
        }

        func scalar(_ column: Column) -> TypeReference {
            func named(_ type: PortableType, native: String) -> String {
                switch type {
                case .integer: return "Int"
                case .bigint: return "BigInt"
                case .number:
                    let lowered = native.lowercased()
                    return lowered.hasPrefix("real") || lowered.hasPrefix("double") || lowered.hasPrefix("float") ? "Float" : "BigFloat"
                case .string: return "String"
                case .boolean: return "Boolean"
                case .json: return "JSON"
                case .date: return "Date"
                case .time: return "Time"
                case .datetime: return "Datetime"
                case .uuid: return "UUID"
                case .enumeration:
                    let bare = native.split(separator: ".").last.map(String.init) ?? native
                    return enumTypes[native] ?? enumTypes[bare] ?? "String"
                case .binary, .other, .array: return "Opaque"
                }
            }
            if column.type == .array {
                return .list(.named(named(column.elementType ?? .other, native: String(column.nativeType.dropLast(2)))))
            }
            return .named(named(column.type, native: column.nativeType))
        }

        // Relations by the entity they leave, and entities by name, once (models of thousands of
        // tables are searched per entity otherwise).
        let outgoing = Dictionary(grouping: model.relations, by: \.from)
        let entitiesByName = Dictionary(model.entities.map { ($0.qualifiedName, $0) }, uniquingKeysWith: { first, _ in first })
        var query = SchemaType(kind: .object, name: "Query", description: "The root type for querying data")
        var mutation = SchemaType(kind: .object, name: "Mutation", description: "The root type for creating and mutating data")
        query.add(SchemaField("node", .named("Node"), description: "Retrieve a record by its `ID`", arguments: [InputField("nodeId", .nonNull(.named("ID")), description: "The record's `ID`")], resolver: .node))

        for entityType in entityOrder {
            let typeName = entityType.typeName
            let entity = entityType.entity
            let description = CommentDirective(entity.comment).description
            var object = SchemaType(kind: .object, name: typeName, description: description)
            object.interfaces = ["Node"]
            object.add(SchemaField("nodeId", .nonNull(.named("ID")), description: "Globally Unique Record Identifier", resolver: .nodeID))
            var filter = SchemaType(kind: .inputObject, name: entityType.filterType, description: "Boolean expression comparing fields on type \"\(typeName)\"")
            filter.add(InputField("nodeId", .named("IDFilter")))
            var orderBy = SchemaType(kind: .inputObject, name: entityType.orderByType)
            for (field, column) in entityType.columns {
                let type = scalar(column)
                object.add(SchemaField(field, column.nullable ? type : .nonNull(type), description: CommentDirective(column.comment).description, resolver: .column(column)))
                if case .list(.named(let element)) = type, types[element + "ListFilter"] != nil {
                    filter.add(InputField(field, .named(element + "ListFilter"), column: column))
                }
                if case .named(let name) = type, types[name + "Filter"] != nil {
                    filter.add(InputField(field, .named(name + "Filter"), column: column))
                    if name != "JSON" && name != "Opaque" { orderBy.add(InputField(field, .named("OrderByDirection"), column: column)) }
                }
            }
            filter.add(InputField("and", .list(.nonNull(.named(entityType.filterType))), description: "Returns true only if all its inner filters are true, otherwise returns false"))
            filter.add(InputField("or", .list(.nonNull(.named(entityType.filterType))), description: "Returns true if at least one of its inner filters is true, otherwise returns false"))
            filter.add(InputField("not", .named(entityType.filterType), description: "Negates a filter"))
            define(filter)
            define(orderBy)

            // Relations to entities the role can read, named as pg_graphql names them.
            for relation in outgoing[entity.qualifiedName] ?? [] {
                guard let target = byQualified[relation.to] else { continue }
                if let junction = relation.junction, let junctionEntity = entitiesByName[junction.entity],
                    access.grant(.read, on: junctionEntity, in: model) == nil
                {
                    continue
                }
                let fieldName = Self.relationName(relation) ?? naming.relationField(relation, targetEntity: target.entity.name)
                guard GraphQLNaming.isValid(fieldName) else {
                    warnings.append("\(entity.name): relation \(relation.constraint) is left out; '\(fieldName)' is not a GraphQL name")
                    continue
                }
                let field: SchemaField
                if relation.isToOne {
                    // Non-null only when every key column is and no policy can hide the row.
                    let required = relation.kind == .manyToOne && !target.restrictsRows
                        && relation.fromColumns.allSatisfy { entity.column(named: $0)?.nullable == false }
                    field = SchemaField(fieldName, required ? .nonNull(.named(target.typeName)) : .named(target.typeName), resolver: .toOne(relation, target: target.typeName))
                } else {
                    field = SchemaField(fieldName, .named(target.connectionType), arguments: Self.collectionArguments(target), resolver: .toMany(relation, target: target.typeName))
                }
                if !object.add(field) {
                    warnings.append("\(entity.name): relation \(relation.constraint) is left out; '\(fieldName)' is taken")
                }
            }
            node.possibleTypes.append(typeName)
            define(object)

            var edge = SchemaType(kind: .object, name: entityType.edgeType)
            edge.add(SchemaField("cursor", .nonNull(.named("String"))))
            edge.add(SchemaField("node", .nonNull(.named(typeName))))
            define(edge)
            var connection = SchemaType(kind: .object, name: entityType.connectionType)
            connection.add(SchemaField("edges", .nonNull(.list(.nonNull(.named(entityType.edgeType))))))
            connection.add(SchemaField("pageInfo", .nonNull(.named("PageInfo"))))
            connection.add(SchemaField("totalCount", .nonNull(.named("Int")), description: "The total number of records matching the `filter` criteria"))
            define(connection)

            query.add(SchemaField(
                naming.collectionField(entity.name), .named(entityType.connectionType), description: "A pagable collection of type `\(typeName)`",
                arguments: Self.collectionArguments(entityType), resolver: .collection(typeName)))
            let keyArguments = entityType.primaryKey.map { column in InputField(naming.fieldName(column.name), .nonNull(scalar(column)), column: column) }
            query.add(SchemaField(naming.byPkField(entity.name), .named(typeName), description: "Retrieve a record of type `\(typeName)` by its primary key", arguments: keyArguments, resolver: .byPk(typeName)))

            // Mutations, each under its write policy.
            func writable(_ action: Policy.Action) -> [(field: String, column: Column)]? {
                guard let grant = access.grant(action, on: entity, in: model) else { return nil }
                return entityType.columns(of: entity, naming: naming).filter { _, column in
                    grant.allows(column.name) && !column.isGenerated && (action != .update || column.updatable)
                }
            }
            func response(_ suffix: String) -> String {
                var type = SchemaType(kind: .object, name: typeName + suffix)
                type.add(SchemaField("affectedCount", .nonNull(.named("Int")), description: "Count of the records impacted by the mutation"))
                type.add(SchemaField("records", .nonNull(.list(.nonNull(.named(typeName)))), description: "Array of records impacted by the mutation"))
                define(type)
                return type.name
            }
            if entity.insertable, let columns = writable(.create) {
                var input = SchemaType(kind: .inputObject, name: typeName + "InsertInput")
                for (field, column) in columns { input.add(InputField(field, scalar(column), column: column)) }
                if !input.inputFields.isEmpty {
                    define(input)
                    mutation.add(SchemaField(
                        naming.insertField(typeName), .named(response("InsertResponse")), description: "Adds one or more `\(typeName)` records to the collection",
                        arguments: [InputField("objects", .nonNull(.list(.nonNull(.named(input.name)))))], resolver: .insert(typeName)))
                }
            }
            if entity.updatable, let columns = writable(.update) {
                var input = SchemaType(kind: .inputObject, name: typeName + "UpdateInput")
                for (field, column) in columns { input.add(InputField(field, scalar(column), column: column)) }
                if !input.inputFields.isEmpty {
                    define(input)
                    mutation.add(SchemaField(
                        naming.updateField(typeName), .nonNull(.named(response("UpdateResponse"))), description: "Updates zero or more records in the `\(typeName)` collection",
                        arguments: [
                            InputField("set", .nonNull(.named(input.name)), description: "Fields that are set will be updated for all records matching the `filter`"),
                            InputField("filter", .named(entityType.filterType), description: "Restricts the mutation's impact to records matching the criteria"),
                            InputField("atMost", .nonNull(.named("Int")), description: "The maximum number of records in the collection permitted to be affected", defaultValue: "1"),
                        ], resolver: .update(typeName)))
                }
            }
            if entity.deletable, writable(.delete) != nil {
                mutation.add(SchemaField(
                    naming.deleteField(typeName), .nonNull(.named(response("DeleteResponse"))), description: "Deletes zero or more records from the `\(typeName)` collection",
                    arguments: [
                        InputField("filter", .named(entityType.filterType), description: "Restricts the mutation's impact to records matching the criteria"),
                        InputField("atMost", .nonNull(.named("Int")), description: "The maximum number of records in the collection permitted to be affected", defaultValue: "1"),
                    ], resolver: .delete(typeName)))
            }
        }
        // Functions the role may call, as pg_graphql exposes them: stable and immutable ones on
        // Query, volatile ones on Mutation; rows of a visible entity as the entity (a set as a
        // connection), other results as scalars.
        for operation in model.operations where !operation.returnsVoid && access.mayExecute(operation.name) {
            let fieldName = naming.fieldName(operation.name)
            var arguments: [InputField] = []
            for argument in operation.arguments {
                let name = naming.fieldName(argument.name)
                let scalar = Self.scalar(native: argument.nativeType, enums: enumTypes)
                let type: TypeReference = argument.nativeType.hasSuffix("[]") ? .list(.named(scalar)) : .named(scalar)
                arguments.append(InputField(
                    name, argument.hasDefault ? type : .nonNull(type),
                    column: Column(name: argument.name, type: argument.type, nativeType: argument.nativeType)))
            }
            let result: TypeReference
            if let entityName = operation.returnsEntity {
                guard let target = byQualified[entityName] else { continue }
                if operation.returnsSet {
                    arguments += Self.collectionArguments(target)
                    result = .named(target.connectionType)
                } else {
                    result = .named(target.typeName)
                }
            } else {
                let scalar = Self.scalar(native: operation.returnType, enums: enumTypes)
                result = operation.returnsSet ? .list(.named(scalar)) : .named(scalar)
            }
            let names = arguments.map(\.name)
            guard GraphQLNaming.isValid(fieldName), names.allSatisfy(GraphQLNaming.isValid), Set(names).count == names.count else {
                warnings.append("function \(operation.name) is left out: its name or arguments are not free GraphQL names")
                continue
            }
            let field = SchemaField(fieldName, result, description: operation.comment, arguments: arguments, resolver: .function(operation))
            let added = operation.volatility == .volatile ? mutation.add(field) : query.add(field)
            if !added { warnings.append("function \(operation.name) is left out: '\(fieldName)' is taken") }
        }
        var idFilter = SchemaType(kind: .inputObject, name: "IDFilter", description: "Boolean expression comparing fields on type \"ID\"")
        idFilter.add(InputField("eq", .named("ID")))
        define(idFilter)
        define(node)
        define(query)
        let hasMutations = !mutation.fields.isEmpty
        if hasMutations { define(mutation) }
        // Scalar filters no entity uses are still listed: clients' codegen expects pg_graphql's set.
        return RoleSchema(
            types: types, typeOrder: types.keys.sorted(), mutationType: hasMutations ? "Mutation" : nil, entities: entityTypes,
            role: access.role, introspectionByComment: schemaSettings["introspection"]?.boolValue == true, warnings: warnings)
    }

    /// pg_graphql's scalar for a PostgreSQL type name (function arguments and results, which the
    /// model knows by name only).
    static func scalar(native: String, enums: [String: String]) -> String {
        var name = native.lowercased()
        if name.hasSuffix("[]") { name.removeLast(2) }
        if let enumType = enums[native] ?? enums[String(native.split(separator: ".").last ?? "")] { return enumType }
        switch name {
        case "integer", "int", "int4", "smallint", "int2": return "Int"
        case "bigint", "int8": return "BigInt"
        case "real", "float4", "double precision", "float8": return "Float"
        case "boolean", "bool": return "Boolean"
        case "json", "jsonb": return "JSON"
        case "uuid": return "UUID"
        case "date": return "Date"
        case "text", "citext", "name", "character varying", "varchar", "character", "char", "bpchar": return "String"
        default:
            if name.hasPrefix("numeric") || name.hasPrefix("decimal") { return "BigFloat" }
            if name.hasPrefix("timestamp") { return "Datetime" }
            if name.hasPrefix("time") { return "Time" }
            if name.hasPrefix("character") || name.hasPrefix("varchar") { return "String" }
            return "Opaque"
        }
    }

    static func collectionArguments(_ target: EntityType) -> [InputField] {
        [
            InputField("first", .named("Int"), description: "Query the first `n` records in the collection"),
            InputField("last", .named("Int"), description: "Query the last `n` records in the collection"),
            InputField("before", .named("Cursor"), description: "Query values in the collection before the provided cursor"),
            InputField("after", .named("Cursor"), description: "Query values in the collection after the provided cursor"),
            InputField("offset", .named("Int"), description: "Skip n values from the after cursor. Alternative to cursor pagination. Backward pagination not supported."),
            InputField("filter", .named(target.filterType), description: "Filters to apply to the results set when querying from the collection"),
            InputField("orderBy", .list(.nonNull(.named(target.orderByType))), description: "Sort order to apply to the collection"),
        ]
    }
}

extension SchemaModel {
    /// The `@graphql({...})` settings of the model's schema comments, merged.
    var graphQLSchemaSettings: JSONObject {
        var merged = JSONObject()
        for (_, comment) in (schemaComments ?? [:]).sorted(by: { $0.key < $1.key }) {
            for (key, value) in CommentDirective(comment).settings { merged[key] = value }
        }
        return merged
    }
}

extension EntityType {
    /// Every column of the entity with the field it has (readable or not): writes may name
    /// columns the role cannot read back.
    func columns(of entity: Entity, naming: GraphQLNaming) -> [(field: String, column: Column)] {
        let readable = Dictionary(columns.map { ($0.column.name, $0.field) }, uniquingKeysWith: { first, _ in first })
        return entity.columns.compactMap { column in
            let name = readable[column.name] ?? CommentDirective(column.comment).settings["name"]?.stringValue ?? naming.fieldName(column.name)
            return GraphQLNaming.isValid(name) ? (name, column) : nil
        }
    }
}
