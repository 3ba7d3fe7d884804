import Foundation
import Runtime

/// What a schema document says, in the shape of the catalog queries' answers, so that every
/// uploaded format ends in `ModelBuilder` — the one place relations are derived — like live
/// introspection does.
struct SchemaDraft {
    struct Column {
        var name: String
        var type: SQLTypeName
        var notNull = false
        var defaultExpression: String?
        var identity = false
        var generated = false
        var comment: String?
        var checks: ValueChecks?
    }

    struct Table {
        var schema: String
        var name: String
        var kind: String  // r, v, m
        var columns: [Column] = []
        var comment: String?
        var updatableMask = 28
        var viewColumnUpdatable: [String: Bool] = [:]
    }

    struct ForeignKey {
        var schema: String
        var table: String
        var name: String
        var columns: [String]
        var targetSchema: String
        var targetTable: String
        var targetColumns: [String]
    }

    struct Key {
        var schema: String
        var table: String
        var name: String
        /// "p" or "u", as in pg_constraint.
        var type: String
        var columns: [String]
    }

    struct Enum {
        var schema: String
        var name: String
        var values: [String]
    }

    var tables: [Table]
    var keys: [Key]
    var foreignKeys: [ForeignKey]
    var indexes: [JSONValue]
    var enums: [Enum]
    var functions: [JSONValue]

    func build() -> SchemaModel {
        // Introspection lists relations by schema and name in byte order; so does an upload.
        let ordered = tables.sorted { a, b in
            a.schema == b.schema ? a.name.utf8.lexicographicallyPrecedes(b.name.utf8) : a.schema.utf8.lexicographicallyPrecedes(b.schema.utf8)
        }
        let relations: [JSONValue] = ordered.map { table in
            let columns: [JSONValue] = table.columns.map { column in
                var object: JSONObject = [
                    "name": .string(column.name), "type": .string(column.type.native), "typtype": .string(column.type.typtype),
                    "category": .string(column.type.category), "typname": .string(column.type.typname), "notnull": .bool(column.notNull),
                    "default": column.defaultExpression.map(JSONValue.string) ?? .null, "identity": .bool(column.identity),
                    "generated": .bool(column.generated),
                    "updatable": .bool(table.kind == "r" ? !column.generated : (table.viewColumnUpdatable[column.name] ?? false)),
                    "comment": column.comment.map(JSONValue.string) ?? .null,
                ]
                if let checks = column.checks, let encoded = try? JSONValue.parse(Array((try? JSONEncoder().encode(checks)) ?? Data())) {
                    object["checks"] = encoded
                }
                if let element = column.type.element {
                    object["elemname"] = .string(element.typname)
                    object["elemcategory"] = .string(element.category)
                    object["elemtyptype"] = .string(element.typtype)
                }
                return .object(object)
            }
            return [
                "schema": .string(table.schema), "name": .string(table.name), "kind": .string(table.kind),
                "comment": table.comment.map(JSONValue.string) ?? .null, "updatable_mask": .integer(Int64(table.updatableMask)),
                "columns": .array(columns),
            ]
        }
        var constraints: [JSONValue] = keys.map { key in
            ["schema": .string(key.schema), "table": .string(key.table), "name": .string(key.name), "type": .string(key.type),
             "columns": .array(key.columns.map(JSONValue.string))]
        }
        for fk in foreignKeys {
            var targetColumns = fk.targetColumns
            if targetColumns.isEmpty {
                targetColumns = keys.first { $0.schema == fk.targetSchema && $0.table == fk.targetTable && $0.type == "p" }?.columns ?? []
            }
            constraints.append([
                "schema": .string(fk.schema), "table": .string(fk.table), "name": .string(fk.name), "type": "f",
                "columns": .array(fk.columns.map(JSONValue.string)), "fschema": .string(fk.targetSchema), "ftable": .string(fk.targetTable),
                "fcolumns": .array(targetColumns.map(JSONValue.string)),
            ])
        }
        // Primary keys and unique constraints are backed by indexes of their name, as in the catalog.
        var indexes = self.indexes
        var indexNames = Set(indexes.map { "\($0["schema"]?.stringValue ?? "").\($0["name"]?.stringValue ?? "")" })
        for key in keys where indexNames.insert("\(key.schema).\(key.name)").inserted {
            indexes.append([
                "schema": .string(key.schema), "table": .string(key.table), "name": .string(key.name), "unique": true, "method": "btree",
                "columns": .array(key.columns.map(JSONValue.string)),
            ])
        }
        let enumValues: [JSONValue] = enums.map { item in
            ["schema": .string(item.schema), "name": .string(item.name), "values": .array(item.values.map(JSONValue.string))]
        }
        return ModelBuilder(relations: relations, constraints: constraints, indexes: indexes, enums: enumValues, functions: functions).build()
    }
}
