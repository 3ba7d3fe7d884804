import Foundation
import Runtime

/// Turns the introspection documents into the schema model, deriving relations from foreign keys:
/// many-to-one and its inverse one-to-many (one-to-one when the FK columns are unique), and
/// many-to-many through a junction table whose two foreign keys lie within its primary key.
struct ModelBuilder {
    let relations: [JSONValue]
    let constraints: [JSONValue]
    let indexes: [JSONValue]
    let enums: [JSONValue]
    let functions: [JSONValue]

    func build() -> SchemaModel {
        let enumTypes = enums.compactMap { value -> EnumType? in
            guard let schema = value["schema"]?.stringValue, let name = value["name"]?.stringValue else { return nil }
            return EnumType(schema: schema, name: name, values: value["values"]?.arrayValue?.compactMap(\.stringValue) ?? [], comment: value["comment"]?.stringValue)
        }
        let enumValues = Dictionary(enumTypes.map { ($0.name, $0.values) }, uniquingKeysWith: { first, _ in first })

        var entities: [EntityName: Entity] = [:]
        var order: [EntityName] = []
        for value in relations {
            guard let schema = value["schema"]?.stringValue, let name = value["name"]?.stringValue else { continue }
            let kind: Entity.Kind
            switch value["kind"]?.stringValue {
            case "v": kind = .view
            case "m": kind = .materializedView
            case "f": kind = .foreignTable
            default: kind = .table
            }
            let mask = value["updatable_mask"]?.intValue ?? 0
            let columns = (value["columns"]?.arrayValue ?? []).compactMap { Self.column($0, enumValues: enumValues) }
            let entity = Entity(
                schema: schema, name: name, kind: kind, comment: value["comment"]?.stringValue, columns: columns,
                insertable: mask & 8 != 0, updatable: mask & 4 != 0, deletable: mask & 16 != 0)
            entities[entity.qualifiedName] = entity
            order.append(entity.qualifiedName)
        }

        struct ForeignKey {
            let name: String
            let from: EntityName
            let columns: [String]
            let to: EntityName
            let toColumns: [String]
            let comment: String?
        }
        var foreignKeys: [ForeignKey] = []
        for value in constraints {
            guard let schema = value["schema"]?.stringValue, let table = value["table"]?.stringValue,
                let name = value["name"]?.stringValue, let type = value["type"]?.stringValue
            else { continue }
            let key = EntityName(schema: schema, name: table)
            let columns = value["columns"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch type {
            case "p": entities[key]?.primaryKey = columns
            case "u": entities[key]?.uniqueKeys.append(UniqueKey(name: name, columns: columns))
            case "f":
                guard let fschema = value["fschema"]?.stringValue, let ftable = value["ftable"]?.stringValue else { continue }
                foreignKeys.append(ForeignKey(
                    name: name, from: key, columns: columns, to: EntityName(schema: fschema, name: ftable),
                    toColumns: value["fcolumns"]?.arrayValue?.compactMap(\.stringValue) ?? [], comment: value["comment"]?.stringValue))
            default: continue
            }
        }
        for value in indexes {
            guard let schema = value["schema"]?.stringValue, let table = value["table"]?.stringValue,
                let name = value["name"]?.stringValue
            else { continue }
            entities[EntityName(schema: schema, name: table)]?.indexes.append(Index(
                name: name, columns: value["columns"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                unique: value["unique"]?.boolValue ?? false, method: value["method"]?.stringValue ?? "btree"))
        }

        var relationList: [Relation] = []
        for fk in foreignKeys where entities[fk.from] != nil && entities[fk.to] != nil {
            let unique = entities[fk.from]?.isUnique(fk.columns) ?? false
            var forward = Relation(
                constraint: fk.name, kind: unique ? .oneToOne : .manyToOne, from: fk.from, fromColumns: fk.columns,
                to: fk.to, toColumns: fk.toColumns)
            var backward = Relation(
                constraint: fk.name, kind: unique ? .oneToOne : .oneToMany, from: fk.to, fromColumns: fk.toColumns,
                to: fk.from, toColumns: fk.columns)
            if unique {
                forward.holdsForeignKey = true
                backward.holdsForeignKey = false
            }
            forward.comment = fk.comment
            backward.comment = fk.comment
            relationList.append(forward)
            relationList.append(backward)
        }
        // Junctions: two foreign keys of one table, both within its primary key.
        let byTable = Dictionary(grouping: foreignKeys, by: \.from)
        for (junction, keys) in byTable {
            guard let pk = entities[junction]?.primaryKey, !pk.isEmpty, keys.count >= 2 else { continue }
            let inKey = keys.filter { Set($0.columns).isSubset(of: pk) }
            for left in inKey {
                for right in inKey where right.name != left.name {
                    relationList.append(Relation(
                        constraint: right.name, kind: .manyToMany, from: left.to, fromColumns: left.toColumns, to: right.to,
                        toColumns: right.toColumns,
                        junction: .init(entity: junction, fromConstraint: left.name, fromColumns: left.columns, toColumns: right.columns)))
                }
            }
        }
        relationList.sort { ($0.from.description, $0.to.description, $0.constraint) < ($1.from.description, $1.to.description, $1.constraint) }

        let operations = functions.compactMap { Self.operation($0) }
        return SchemaModel(entities: order.compactMap { entities[$0] }, relations: relationList, operations: operations, enums: enumTypes)
    }

    static func portableType(category: String?, typtype: String?, typname: String?) -> PortableType {
        if typtype == "e" { return .enumeration }
        switch typname {
        case "int2", "int4": return .integer
        case "int8": return .bigint
        case "float4", "float8", "numeric", "money": return .number
        case "bool": return .boolean
        case "json", "jsonb": return .json
        case "date": return .date
        case "time", "timetz": return .time
        case "timestamp", "timestamptz": return .datetime
        case "uuid": return .uuid
        case "bytea": return .binary
        default: break
        }
        switch category {
        case "S": return .string
        case "N": return .number
        case "A": return .array
        default: return .other
        }
    }

    static func column(_ value: JSONValue, enumValues: [String: [String]]) -> Column? {
        guard let name = value["name"]?.stringValue, let native = value["type"]?.stringValue else { return nil }
        let typname = value["typname"]?.stringValue
        let type = portableType(category: value["category"]?.stringValue, typtype: value["typtype"]?.stringValue, typname: typname)
        var element: PortableType?
        if type == .array {
            element = portableType(
                category: value["elemcategory"]?.stringValue, typtype: value["elemtyptype"]?.stringValue, typname: value["elemname"]?.stringValue)
        }
        var column = Column(
            name: name, type: type, nativeType: native, elementType: element, nullable: !(value["notnull"]?.boolValue ?? false),
            defaultExpression: value["default"]?.stringValue, isIdentity: value["identity"]?.boolValue ?? false,
            isGenerated: value["generated"]?.boolValue ?? false, updatable: value["updatable"]?.boolValue ?? true,
            comment: value["comment"]?.stringValue, enumValues: type == .enumeration ? typname.flatMap { enumValues[$0] } : nil)
        if let checks = value["checks"] { column.checks = try? JSONDecoder().decode(ValueChecks.self, from: Data(checks.encoded())) }
        return column
    }

    static func operation(_ value: JSONValue) -> Operation? {
        guard let schema = value["schema"]?.stringValue, let name = value["name"]?.stringValue else { return nil }
        let types = value["argtypes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let categories = value["argcategories"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let allNames = value["argnames"]?.arrayValue?.map { $0.stringValue ?? "" } ?? []
        let modes = value["argmodes"]?.arrayValue?.map { $0.stringValue ?? "i" }
        var inputNames: [String] = []
        for (index, argName) in allNames.enumerated() {
            let mode = modes.map { index < $0.count ? $0[index] : "i" } ?? "i"
            if ["i", "b", "v"].contains(mode) { inputNames.append(argName) }
        }
        let defaults = Int(value["ndefaults"]?.intValue ?? 0)
        let arguments = types.enumerated().map { index, type in
            Operation.Argument(
                name: index < inputNames.count ? inputNames[index] : "",
                nativeType: type,
                type: portableType(category: index < categories.count ? categories[index] : nil, typtype: nil, typname: nil),
                hasDefault: index >= types.count - defaults)
        }
        let volatility: Operation.Volatility =
            switch value["volatility"]?.stringValue {
            case "i": .immutable
            case "s": .stable
            default: .volatile
            }
        var returnsEntity: EntityName?
        if let relSchema = value["retrelschema"]?.stringValue, let relName = value["retrelname"]?.stringValue {
            returnsEntity = EntityName(schema: relSchema, name: relName)
        }
        let returnType = value["rettype"]?.stringValue ?? "void"
        return Operation(
            schema: schema, name: name, arguments: arguments, returnType: returnType, returnsSet: value["retset"]?.boolValue ?? false,
            returnsEntity: returnsEntity, returnsVoid: returnType == "void", volatility: volatility, comment: value["comment"]?.stringValue)
    }
}
