import Foundation
import NIOCore
import Runtime
import SQLiteNIO

extension SQLiteControlPlaneStore {
    public func vectorIndexes(tenant: String) async throws -> [VectorIndexRecord] {
        try await read("SELECT * FROM vector_indexes WHERE tenant = ? ORDER BY name", [.text(tenant)]).map { row in
            guard let name = row.column("name")?.string, let metric = row.column("metric")?.string else { throw ControlPlaneError.corrupt("vector index row") }
            return VectorIndexRecord(
                tenant: tenant, name: name, dimension: row.column("dimension")?.integer ?? 0, metric: metric,
                createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
                binding: try row.column("binding")?.string.map(StoreCoding.decodeObject))
        }
    }

    public func createVectorIndex(_ index: VectorIndexRecord) async throws {
        try await transaction { db in
            guard (try db.rows("SELECT 1 FROM vector_indexes WHERE tenant = ? AND name = ?", [.text(index.tenant), .text(index.name)])).isEmpty
            else { throw ControlPlaneError.duplicate("vector index '\(index.name)'") }
            _ = try db.rows(
                "INSERT INTO vector_indexes (tenant, name, dimension, metric, created_at_ms, binding) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(index.tenant), .text(index.name), .integer(index.dimension), .text(index.metric), .integer(Int(StoreCoding.milliseconds(index.createdAt))),
                 index.binding.map { .text(StoreCoding.encodeObject($0)) } ?? .null])
        }
    }

    public func deleteVectorIndex(tenant: String, name: String) async throws -> Bool {
        try await transaction { db in
            _ = try db.rows("DELETE FROM vector_records WHERE tenant = ? AND index_name = ?", [.text(tenant), .text(name)])
            return !(try db.rows("DELETE FROM vector_indexes WHERE tenant = ? AND name = ? RETURNING 1", [.text(tenant), .text(name)])).isEmpty
        }
    }

    public func vectors(tenant: String, index: String) async throws -> [StoredVector] {
        try await read("SELECT namespace, id, vector, metadata FROM vector_records WHERE tenant = ? AND index_name = ? ORDER BY rowid", [.text(tenant), .text(index)])
            .map { row in
                guard let namespace = row.column("namespace")?.string, let id = row.column("id")?.string, case .blob(let bytes)? = row.column("vector") else {
                    throw ControlPlaneError.corrupt("vector row")
                }
                return StoredVector(
                    namespace: namespace, id: id, values: StoredVector.values(from: bytes.readableBytesView),
                    metadata: try row.column("metadata")?.string.map(StoreCoding.decodeObject))
            }
    }

    public func upsertVectors(tenant: String, index: String, _ vectors: [StoredVector]) async throws {
        guard !vectors.isEmpty else { return }
        try await transaction(lane: tenant) { db in
            for vector in vectors {
                _ = try db.rows(
                    """
                    INSERT INTO vector_records (tenant, index_name, namespace, id, vector, metadata) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, index_name, namespace, id) DO UPDATE SET vector = excluded.vector, metadata = excluded.metadata
                    """,
                    [.text(tenant), .text(index), .text(vector.namespace), .text(vector.id), .blob(ByteBuffer(bytes: vector.bytes)),
                     vector.metadata.map { .text(StoreCoding.encodeObject($0)) } ?? .null])
            }
        }
    }

    public func deleteVectors(tenant: String, index: String, namespace: String, ids: [String]?) async throws {
        try await transaction(lane: tenant) { db in
            guard let ids else {
                _ = try db.rows("DELETE FROM vector_records WHERE tenant = ? AND index_name = ? AND namespace = ?", [.text(tenant), .text(index), .text(namespace)])
                return
            }
            for id in ids {
                _ = try db.rows(
                    "DELETE FROM vector_records WHERE tenant = ? AND index_name = ? AND namespace = ? AND id = ?", [.text(tenant), .text(index), .text(namespace), .text(id)])
            }
        }
    }
}
