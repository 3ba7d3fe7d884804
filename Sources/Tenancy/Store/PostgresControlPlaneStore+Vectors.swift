import Foundation
import NIOCore
import PostgresNIO

extension PostgresControlPlaneStore {
    public func vectorIndexes(tenant: String) async throws -> [VectorIndexRecord] {
        var found: [VectorIndexRecord] = []
        let rows = try await client.query(
            "SELECT name, dimension, metric, created_at, binding::text FROM minibaas.vector_indexes WHERE tenant = \(tenant) ORDER BY name", logger: logger)
        for try await (name, dimension, metric, created, binding) in rows.decode((String, Int, String, Date, String?).self) {
            found.append(VectorIndexRecord(
                tenant: tenant, name: name, dimension: dimension, metric: metric, createdAt: created, binding: try binding.map(StoreCoding.decodeObject)))
        }
        return found
    }

    public func createVectorIndex(_ index: VectorIndexRecord) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                """
                INSERT INTO minibaas.vector_indexes (tenant, name, dimension, metric, created_at, binding)
                VALUES (\(index.tenant), \(index.name), \(index.dimension), \(index.metric), \(index.createdAt),
                        \(index.binding.map(StoreCoding.encodeObject))::jsonb)
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("vector index '\(index.name)'")
        }
    }

    public func deleteVectorIndex(tenant: String, name: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.vector_indexes WHERE tenant = \(tenant) AND name = \(name) RETURNING 1", logger: logger))
    }

    public func vectors(tenant: String, index: String) async throws -> [StoredVector] {
        var found: [StoredVector] = []
        let rows = try await client.query(
            """
            SELECT namespace, id, vector, metadata::text FROM minibaas.vector_records WHERE tenant = \(tenant) AND index_name = \(index)
            """, logger: logger)
        for try await (namespace, id, vector, metadata) in rows.decode((String, String, ByteBuffer, String?).self) {
            found.append(StoredVector(
                namespace: namespace, id: id, values: StoredVector.values(from: vector.readableBytesView), metadata: try metadata.map(StoreCoding.decodeObject)))
        }
        return found
    }

    public func upsertVectors(tenant: String, index: String, _ vectors: [StoredVector]) async throws {
        guard !vectors.isEmpty else { return }
        // One statement for the whole batch: arrays of each column, unnested.
        let namespaces = vectors.map(\.namespace)
        let ids = vectors.map(\.id)
        let values = vectors.map { ByteBuffer(bytes: $0.bytes) }
        // No metadata travels as '' (a JSON document is never empty).
        let metadata = vectors.map { $0.metadata.map(StoreCoding.encodeObject) ?? "" }
        _ = try await client.query(
            """
            INSERT INTO minibaas.vector_records (tenant, index_name, namespace, id, vector, metadata)
            SELECT \(tenant), \(index), n, i, v, NULLIF(m, '')::jsonb FROM unnest(\(namespaces)::text[], \(ids)::text[], \(values)::bytea[], \(metadata)::text[]) AS t(n, i, v, m)
            ON CONFLICT (tenant, index_name, namespace, id) DO UPDATE SET vector = excluded.vector, metadata = excluded.metadata
            """, logger: logger).collect()
    }

    public func deleteVectors(tenant: String, index: String, namespace: String, ids: [String]?) async throws {
        if let ids {
            _ = try await client.query(
                """
                DELETE FROM minibaas.vector_records WHERE tenant = \(tenant) AND index_name = \(index) AND namespace = \(namespace) AND id = ANY(\(ids))
                """, logger: logger).collect()
        } else {
            _ = try await client.query(
                "DELETE FROM minibaas.vector_records WHERE tenant = \(tenant) AND index_name = \(index) AND namespace = \(namespace)", logger: logger).collect()
        }
    }
}
