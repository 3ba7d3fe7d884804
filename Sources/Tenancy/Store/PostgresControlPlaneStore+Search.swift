import Foundation
import PostgresNIO

extension PostgresControlPlaneStore {
    public func searchIndexes(tenant: String) async throws -> [SearchIndexRecord] {
        var found: [SearchIndexRecord] = []
        let rows = try await client.query(
            """
            SELECT tenant, uid, source, entity, primary_key, settings::text, created_at, updated_at
            FROM minibaas.search_indexes WHERE tenant = \(tenant) ORDER BY uid
            """, logger: logger)
        for try await row in rows.decode((String, String, String, String, String, String, Date, Date).self) {
            found.append(SearchIndexRecord(
                tenant: row.0, uid: row.1, source: row.2, entity: row.3, primaryKey: row.4, settings: try StoreCoding.decodeObject(row.5),
                createdAt: row.6, updatedAt: row.7))
        }
        return found
    }

    public func createSearchIndex(_ index: SearchIndexRecord) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                """
                INSERT INTO minibaas.search_indexes (tenant, uid, source, entity, primary_key, settings, created_at, updated_at)
                VALUES (\(index.tenant), \(index.uid), \(index.source), \(index.entity), \(index.primaryKey),
                        \(StoreCoding.encodeObject(index.settings))::jsonb, \(index.createdAt), \(index.updatedAt))
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("index '\(index.uid)'")
        }
    }

    public func updateSearchIndex(_ index: SearchIndexRecord) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.search_indexes SET primary_key = \(index.primaryKey), settings = \(StoreCoding.encodeObject(index.settings))::jsonb,
              updated_at = \(index.updatedAt)
            WHERE tenant = \(index.tenant) AND uid = \(index.uid) RETURNING 1
            """, logger: logger))
    }

    public func deleteSearchIndex(tenant: String, uid: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.search_indexes WHERE tenant = \(tenant) AND uid = \(uid) RETURNING 1", logger: logger))
    }
}
