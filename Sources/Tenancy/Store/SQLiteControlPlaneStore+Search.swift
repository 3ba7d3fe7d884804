import Foundation
import Runtime
import SQLiteNIO

extension SQLiteControlPlaneStore {
    public func searchIndexes(tenant: String) async throws -> [SearchIndexRecord] {
        try await read("SELECT * FROM search_indexes WHERE tenant = ? ORDER BY uid", [.text(tenant)]).map(Self.searchIndex(from:))
    }

    public func createSearchIndex(_ index: SearchIndexRecord) async throws {
        try await transaction { db in
            guard (try db.rows("SELECT 1 FROM search_indexes WHERE tenant = ? AND uid = ?", [.text(index.tenant), .text(index.uid)])).isEmpty
            else { throw ControlPlaneError.duplicate("index '\(index.uid)'") }
            _ = try db.rows(
                """
                INSERT INTO search_indexes (tenant, uid, source, entity, primary_key, settings, created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(index.tenant), .text(index.uid), .text(index.source), .text(index.entity), .text(index.primaryKey),
                 .text(StoreCoding.encodeObject(index.settings)), .integer(Int(StoreCoding.milliseconds(index.createdAt))),
                 .integer(Int(StoreCoding.milliseconds(index.updatedAt)))])
        }
    }

    public func updateSearchIndex(_ index: SearchIndexRecord) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                "UPDATE search_indexes SET primary_key = ?, settings = ?, updated_at_ms = ? WHERE tenant = ? AND uid = ? RETURNING 1",
                [.text(index.primaryKey), .text(StoreCoding.encodeObject(index.settings)), .integer(Int(StoreCoding.milliseconds(index.updatedAt))),
                 .text(index.tenant), .text(index.uid)])).isEmpty
        }
    }

    public func deleteSearchIndex(tenant: String, uid: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows("DELETE FROM search_indexes WHERE tenant = ? AND uid = ? RETURNING 1", [.text(tenant), .text(uid)])).isEmpty
        }
    }

    private static func searchIndex(from row: SQLiteResultRow) throws -> SearchIndexRecord {
        guard let tenant = row.column("tenant")?.string, let uid = row.column("uid")?.string, let source = row.column("source")?.string,
            let entity = row.column("entity")?.string, let key = row.column("primary_key")?.string, let settings = row.column("settings")?.string
        else { throw ControlPlaneError.corrupt("search index row") }
        return SearchIndexRecord(
            tenant: tenant, uid: uid, source: source, entity: entity, primaryKey: key, settings: try StoreCoding.decodeObject(settings),
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
            updatedAt: StoreCoding.date(milliseconds: Int64(row.column("updated_at_ms")?.integer ?? 0)))
    }
}
