import Runtime
import SQLiteNIO
import Tenancy

/// Runs one write plan on a SQLite-hosted source's writer connection, in one transaction:
/// SQLite has no data-modifying CTEs, so the PostgreSQL renderer's single statement becomes a
/// few (find the rows, write them returning their rowids, check them against the policy, read
/// the representation) that commit or roll back together, all in one trip to the blocking pool.
/// The writer connection is the source's only one, so nothing else writes in between.
struct SQLiteWriter {
    let plan: WritePlan
    let returnRows: Bool
    let publishRows: Bool
    let expecting: WrittenRows
    let renderer = SQLiteRenderer()

    var entity: Entity { plan.target.entity }
    var table: String { quote(entity.name) }

    func run(on connection: SQLiteSession, rollback: Bool) throws -> StatementResult {
        try checkWritable()
        return try connection.transaction(rollback: rollback) { try body(connection) }
    }

    /// The write inside a transaction its caller opened and ends (several writes in one).
    func runInOpenTransaction(on connection: SQLiteSession) throws -> StatementResult {
        try checkWritable()
        return try body(connection)
    }

    private func checkWritable() throws(RestError) {
        guard entity.kind == .table else {
            throw RestError(status: 405, code: "MB350", message: "'\(entity.name)' is not a table of the SQLite-hosted source and cannot be written")
        }
    }

    private func body(_ connection: SQLiteSession) throws -> StatementResult {
        var written: [Int64] = []
        var inserted: Set<Int64>?
        var before: (body: String?, changes: String?)?
        switch plan.kind {
        case .insert(let rows, let columns, let onConflict, let missingDefault):
            var existing: Set<Int64>?
            if let target = onConflict.map({ conflict -> [String] in
                switch conflict {
                case .merge(let target), .ignore(let target): target
                }
            }) {
                existing = try existingRows(matching: target, in: rows, connection)
            }
            for group in try groups(rows, columns: columns, missingDefault: missingDefault) {
                written += try rowids(try insert(group.columns, group.rows, onConflict: onConflict), connection)
            }
            if let existing { inserted = Set(written.filter { !existing.contains($0) }) }
        case .update(let values, let columns):
            var query = SQLiteQuery()
            var sets: [String] = []
            for name in columns {
                sets.append("\(quote(name)) = \(query.bind(try SQLiteValueCoder.bind(json: values[name] ?? .null, for: entity.column(named: name))))")
            }
            var where_ = try renderer.conditions(plan.target, alias: "t0", into: &query)
            if where_.isEmpty { where_ = "1" }
            guard !sets.isEmpty else { return StatementResult(body: returnRows ? "[]" : nil, count: 0, total: nil) }
            query.sql = "UPDATE \(table) AS \"t0\" SET \(sets.joined(separator: ", ")) WHERE \(where_) RETURNING rowid"
            written = try rowids(query, connection)
        case .delete:
            var query = SQLiteQuery()
            var where_ = try renderer.conditions(plan.target, alias: "t0", into: &query)
            if where_.isEmpty { where_ = "1" }
            query.sql = "SELECT \"t0\".rowid FROM \(table) AS \"t0\" WHERE \(where_)"
            written = try rowids(query, connection)
            // What is answered and published is read before the rows are gone.
            before = (try representation(of: written, connection), try changes(of: written, inserted: nil, connection))
            try expecting.check(written.count)
            var delete = SQLiteQuery()
            delete.sql = "DELETE FROM \(table) WHERE rowid IN (SELECT value FROM json_each(\(delete.bind(.text(Self.list(written))))))"
            _ = try connection.rows(delete.sql, delete.binds)
        }
        try expecting.check(written.count)
        let violations = try violations(written, inserted: inserted, connection)
        if violations > 0 {
            throw RestError(
                status: 403, code: "42501", message: "new row violates the policy check",
                details: "\(violations) row(s) would be outside what the policy allows")
        }
        if let before { return StatementResult(body: before.body, count: written.count, total: nil, changes: before.changes) }
        return StatementResult(
            body: try representation(of: written, connection), count: written.count, total: nil,
            changes: try changes(of: written, inserted: inserted, connection))
    }

    // MARK: - Inserts

    /// Rows grouped by the columns they give: with `missing=default` a row's absent keys take
    /// their defaults, which a VALUES list cannot say per row in SQLite.
    private func groups(_ rows: [JSONObject], columns: [String], missingDefault: Bool) throws -> [(columns: [String], rows: [JSONObject])] {
        guard missingDefault else { return [(columns, rows)] }
        var order: [[String]] = []
        var byColumns: [[String]: [JSONObject]] = [:]
        for row in rows {
            let present = columns.filter { row[$0] != nil }
            if byColumns[present] == nil { order.append(present) }
            byColumns[present, default: []].append(row)
        }
        return order.map { ($0, byColumns[$0] ?? []) }
    }

    private func insert(_ columns: [String], _ rows: [JSONObject], onConflict: OnConflict?) throws -> [SQLiteQuery] {
        guard !columns.isEmpty else {
            return rows.map { _ in SQLiteQuery(sql: "INSERT INTO \(table) DEFAULT VALUES RETURNING rowid") }
        }
        var query = SQLiteQuery()
        var values: [String] = []
        for row in rows {
            var items: [String] = []
            for name in columns { items.append(query.bind(try SQLiteValueCoder.bind(json: row[name] ?? .null, for: entity.column(named: name)))) }
            values.append("(" + items.joined(separator: ", ") + ")")
        }
        var sql = "INSERT INTO \(table) AS \"t0\" (\(columns.map(quote).joined(separator: ", "))) VALUES \(values.joined(separator: ", "))"
        switch onConflict {
        case .merge(let target)?:
            sql += " ON CONFLICT (\(target.map(quote).joined(separator: ", "))) DO "
            if let update = plan.conflictUpdate {
                var sets = update.columns.filter { name in !update.presets.contains { $0.0 == name } }.map { "\(quote($0)) = excluded.\(quote($0))" }
                for (name, value) in update.presets {
                    sets.append("\(quote(name)) = \(query.bind(try SQLiteValueCoder.bind(json: value, for: entity.column(named: name))))")
                }
                if sets.isEmpty {
                    sql += "NOTHING"
                } else {
                    sql += "UPDATE SET " + sets.joined(separator: ", ")
                    if let rows = update.rows { sql += " WHERE " + (try renderer.rule(rows, alias: "t0", into: &query)) }
                }
            } else {
                let updates = columns.filter { !target.contains($0) }
                sql += updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.map { "\(quote($0)) = excluded.\(quote($0))" }.joined(separator: ", ")
            }
        case .ignore(let target)?:
            sql += " ON CONFLICT (\(target.map(quote).joined(separator: ", "))) DO NOTHING"
        case nil:
            break
        }
        query.sql = sql + " RETURNING rowid"
        return [query]
    }

    /// The rows an upsert will meet on its conflict target, so inserted rows can be told from
    /// updated ones (each meets its own policy check, and is published as what it was).
    private func existingRows(matching target: [String], in rows: [JSONObject], _ connection: SQLiteSession) throws -> Set<Int64> {
        guard !target.isEmpty, !rows.isEmpty else { return [] }
        var query = SQLiteQuery()
        var alternatives: [String] = []
        for row in rows {
            var parts: [String] = []
            for name in target {
                parts.append("\(quote(name)) IS \(query.bind(try SQLiteValueCoder.bind(json: row[name] ?? .null, for: entity.column(named: name))))")
            }
            alternatives.append("(" + parts.joined(separator: " AND ") + ")")
        }
        query.sql = "SELECT rowid FROM \(table) WHERE " + alternatives.joined(separator: " OR ")
        return Set(try rowids([query], connection))
    }

    // MARK: - After the write

    private func violations(_ written: [Int64], inserted: Set<Int64>?, _ connection: SQLiteSession) throws -> Int {
        guard !written.isEmpty else { return 0 }
        var query = SQLiteQuery()
        let rows = query.bind(.text(Self.list(written)))
        let condition: String
        if let update = plan.conflictUpdate, plan.check != nil || update.check != nil {
            let insertedRows = query.bind(.text(Self.list(Array(inserted ?? []))))
            let insertCheck = try renderer.rule(plan.check ?? .always(true), alias: "t0", into: &query)
            let updateCheck = try renderer.rule(update.check ?? .always(true), alias: "t0", into: &query)
            condition = "(CASE WHEN \"t0\".rowid IN (SELECT value FROM json_each(\(insertedRows))) THEN (\(insertCheck)) ELSE (\(updateCheck)) END)"
        } else if let check = plan.check {
            condition = "(\(try renderer.rule(check, alias: "t0", into: &query)))"
        } else {
            return 0
        }
        query.sql = "SELECT count(*) AS n FROM \(table) AS \"t0\" WHERE \"t0\".rowid IN (SELECT value FROM json_each(\(rows))) AND \(condition) IS NOT TRUE"
        let answer = try connection.rows(query.sql, query.binds)
        return Int(answer.first?.column("n")?.integer ?? 0)
    }

    /// `return=representation`: the written rows through the returning plan (columns, embeds).
    private func representation(of written: [Int64], _ connection: SQLiteSession) throws -> String? {
        guard returnRows else { return nil }
        guard !written.isEmpty else { return "[]" }
        var query = SQLiteQuery()
        let rows = query.bind(.text(Self.list(written)))
        let inner = try renderer.select(plan.returning, alias: "t0", into: &query, extraWhere: ["\"t0\".rowid IN (SELECT value FROM json_each(\(rows)))"])
        query.sql = "SELECT '[' || coalesce(group_concat(\"j\", ','), '') || ']' AS body FROM (\(inner)) AS \"_rows\""
        return try connection.rows(query.sql, query.binds).first?.column("body")?.string ?? "[]"
    }

    /// Every column of the written rows, for realtime subscribers; an upsert's rows say whether
    /// they were inserted (`_mb_inserted`), as the PostgreSQL renderer's do.
    private func changes(of written: [Int64], inserted: Set<Int64>?, _ connection: SQLiteSession) throws -> String? {
        guard publishRows, !written.isEmpty else { return nil }
        var query = SQLiteQuery()
        let rows = query.bind(.text(Self.list(written)))
        let pairs = entity.columns.map { column in
            "\(SQLiteValueCoder.literal(column.name)), \(SQLiteValueCoder.output("\"t0\".\(quote(column.name))", type: column.type))"
        }
        query.sql = "SELECT \"t0\".rowid AS \"r\", json_object(\(pairs.joined(separator: ", "))) AS \"j\" FROM \(table) AS \"t0\" WHERE \"t0\".rowid IN (SELECT value FROM json_each(\(rows)))"
        var items: [JSONValue] = []
        for row in try connection.rows(query.sql, query.binds) {
            guard let text = row.column("j")?.string, var object = try JSONValue.parse(Array(text.utf8)).objectValue else { continue }
            if let inserted, let rowid = row.column("r")?.integer { object["_mb_inserted"] = .bool(inserted.contains(Int64(rowid))) }
            items.append(.object(object))
        }
        return JSONValue.array(items).jsonString
    }

    // MARK: - Helpers

    private func rowids(_ queries: [SQLiteQuery], _ connection: SQLiteSession) throws -> [Int64] {
        var ids: [Int64] = []
        for query in queries {
            for row in try connection.rows(query.sql, query.binds) {
                if let id = row.values.first?.integer { ids.append(Int64(id)) }
            }
        }
        return ids
    }

    private func rowids(_ query: SQLiteQuery, _ connection: SQLiteSession) throws -> [Int64] {
        try rowids([query], connection)
    }

    static func list(_ ids: [Int64]) -> String {
        "[" + ids.map(String.init).joined(separator: ",") + "]"
    }
}
