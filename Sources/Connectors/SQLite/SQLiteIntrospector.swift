import Runtime
import SQLiteNIO

/// Reads the model of an existing SQLite file (`kind: sqlite` with a `path`) from `sqlite_schema`
/// and `PRAGMA table_info / foreign_key_list / index_list / index_info`, through the same
/// `SchemaDraft` → `ModelBuilder` path as uploads, so relations are derived in one place.
/// Declared types map to the model's types by SQLite's own affinity rules, refined by the names
/// people write (`BOOLEAN`, `TIMESTAMPTZ`, `JSON`, `UUID`, `DATE`…).
enum SQLiteIntrospector {
    static func model(of connection: SQLiteHandle) async throws -> SchemaModel {
        var tables: [SchemaDraft.Table] = []
        var keys: [SchemaDraft.Key] = []
        var foreignKeys: [SchemaDraft.ForeignKey] = []
        var indexes: [JSONValue] = []
        let objects = try await connection.query(
            "SELECT name, type, sql FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_mb\\_%' ESCAPE '\\' ORDER BY name")
        for object in objects {
            guard let name = object.column("name")?.string else { continue }
            let isView = object.column("type")?.string == "view"
            let withoutRowid = (object.column("sql")?.string ?? "").uppercased().contains("WITHOUT ROWID")
            var table = SchemaDraft.Table(schema: "public", name: name, kind: isView ? "v" : "r")
            // Views and WITHOUT ROWID tables are read-only here: writes find rows by rowid.
            if isView || withoutRowid { table.updatableMask = 0 }
            var primaryKey: [(Int, String)] = []
            for info in try await connection.query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)", [.text(name)]) {
                guard let column = info.column("name")?.string else { continue }
                let declared = info.column("type")?.string ?? ""
                let pk = Int(info.column("pk")?.integer ?? 0)
                var draft = SchemaDraft.Column(name: column, type: typeName(declared))
                draft.notNull = info.column("notnull")?.integer == 1 || pk > 0 && declared.uppercased() == "INTEGER"
                draft.identity = pk > 0 && declared.uppercased() == "INTEGER" && !withoutRowid
                draft.defaultExpression = info.column("dflt_value")?.string.flatMap(postgresDefault)
                if pk > 0 { primaryKey.append((pk, column)) }
                table.columns.append(draft)
            }
            if primaryKey.count > 1 { for index in table.columns.indices { table.columns[index].identity = false } }
            tables.append(table)
            guard !isView else { continue }
            if !primaryKey.isEmpty {
                keys.append(.init(schema: "public", table: name, name: "\(name)_pkey", type: "p", columns: primaryKey.sorted { $0.0 < $1.0 }.map(\.1)))
            }
            var byID: [Int: SchemaDraft.ForeignKey] = [:]
            for fk in try await connection.query("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq", [.text(name)]) {
                let id = Int(fk.column("id")?.integer ?? 0)
                let target = fk.column("table")?.string ?? ""
                var key = byID[id] ?? .init(
                    schema: "public", table: name, name: "\(name)_fk\(id)", columns: [], targetSchema: "public", targetTable: target, targetColumns: [])
                key.columns.append(fk.column("from")?.string ?? "")
                if let to = fk.column("to")?.string { key.targetColumns.append(to) }
                byID[id] = key
            }
            foreignKeys += byID.keys.sorted().compactMap { byID[$0] }
            for index in try await connection.query("SELECT name, \"unique\", origin FROM pragma_index_list(?1)", [.text(name)]) {
                guard let indexName = index.column("name")?.string else { continue }
                let unique = index.column("unique")?.integer == 1
                var columns: [String] = []
                for part in try await connection.query("SELECT name FROM pragma_index_info(?1) ORDER BY seqno", [.text(indexName)]) {
                    if let column = part.column("name")?.string { columns.append(column) }
                }
                guard !columns.isEmpty else { continue }
                let origin = index.column("origin")?.string
                if unique && origin == "u" { keys.append(.init(schema: "public", table: name, name: indexName, type: "u", columns: columns)) }
                guard origin != "pk" else { continue }
                indexes.append([
                    "schema": "public", "table": .string(name), "name": .string(indexName), "unique": .bool(unique), "method": "btree",
                    "columns": .array(columns.map(JSONValue.string)),
                ])
            }
        }
        // Foreign keys that name no columns point at the target's primary key.
        for index in foreignKeys.indices where foreignKeys[index].targetColumns.contains("") || foreignKeys[index].targetColumns.isEmpty {
            foreignKeys[index].targetColumns = []
        }
        return SchemaDraft(tables: tables, keys: keys, foreignKeys: foreignKeys, indexes: indexes, enums: [], functions: []).build()
    }

    /// A declared SQLite type as the PostgreSQL type it stands for.
    static func typeName(_ declared: String) -> SQLTypeName {
        var text = declared.uppercased()
        var dimensions = 0
        while text.hasSuffix("[]") {
            text.removeLast(2)
            dimensions += 1
        }
        let words: [String]
        if text.contains("BOOL") {
            words = ["boolean"]
        } else if text.contains("BIGINT") || text.contains("INT8") {
            words = ["bigint"]
        } else if text.contains("INT") {
            words = ["integer"]
        } else if text.contains("TIMESTAMPTZ") || text.contains("WITH TIME ZONE") {
            words = ["timestamp", "with", "time", "zone"]
        } else if text.contains("TIMESTAMP") || text.contains("DATETIME") {
            words = ["timestamp", "without", "time", "zone"]
        } else if text.hasPrefix("DATE") {
            words = ["date"]
        } else if text.hasPrefix("TIME") {
            words = ["time", "without", "time", "zone"]
        } else if text.contains("UUID") {
            words = ["uuid"]
        } else if text.contains("JSON") {
            words = ["jsonb"]
        } else if text.contains("REAL") || text.contains("FLOA") || text.contains("DOUB") {
            words = ["double", "precision"]
        } else if text.contains("NUMERIC") || text.contains("DECIMAL") {
            words = ["numeric"]
        } else if text.contains("BLOB") || text.contains("BYTEA") {
            words = ["bytea"]
        } else {
            words = ["text"]
        }
        return SQLTypeName.resolve(words: words, schema: nil, modifiers: [], dimensions: dimensions, enums: [:])
    }

    /// SQLite defaults kept where the model can say them (literals); others are the database's
    /// business and stay unnamed.
    static func postgresDefault(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.uppercased() == "CURRENT_TIMESTAMP" { return "now()" }
        if trimmed.hasPrefix("'") || Double(trimmed) != nil || trimmed.uppercased() == "NULL" { return trimmed }
        return nil
    }
}

import Foundation
