import Foundation
import Runtime

/// A vector index as the control plane keeps it.
public struct VectorIndexRecord: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var dimension: Int
    /// cosine, euclidean or dotproduct.
    public var metric: String
    public var createdAt: Date
    /// For an index mirroring a source: `{source, entity, vectorColumn, metadataColumns,
    /// primaryKey}`; nil for an index written through the API.
    public var binding: JSONObject?

    public init(tenant: String, name: String, dimension: Int, metric: String, createdAt: Date, binding: JSONObject? = nil) {
        self.tenant = tenant
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.createdAt = createdAt
        self.binding = binding
    }
}

/// One stored vector: the truth the in-memory index is loaded from.
public struct StoredVector: Sendable, Equatable {
    public var namespace: String
    public var id: String
    public var values: [Float]
    public var metadata: JSONObject?

    public init(namespace: String, id: String, values: [Float], metadata: JSONObject?) {
        self.namespace = namespace
        self.id = id
        self.values = values
        self.metadata = metadata
    }

    /// Float32, little-endian: 4 bytes per dimension.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(values.count * 4)
        for value in values {
            let bits = value.bitPattern.littleEndian
            result += [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
        }
        return result
    }

    public static func values(from bytes: some Collection<UInt8>) -> [Float] {
        let array = Array(bytes)
        return stride(from: 0, to: array.count - 3, by: 4).map { start in
            Float(bitPattern: UInt32(array[start]) | UInt32(array[start + 1]) << 8 | UInt32(array[start + 2]) << 16 | UInt32(array[start + 3]) << 24)
        }
    }
}

/// Vector indexes and their records in the control plane: every write is stored before the
/// client's acknowledgement, so an index is rebuilt from here on any owner.
public protocol VectorStore: Sendable {
    func vectorIndexes(tenant: String) async throws -> [VectorIndexRecord]
    /// Throws `ControlPlaneError.duplicate` when the name is taken.
    func createVectorIndex(_ index: VectorIndexRecord) async throws
    /// Deletes the index and its records; false when there was none.
    func deleteVectorIndex(tenant: String, name: String) async throws -> Bool
    func vectors(tenant: String, index: String) async throws -> [StoredVector]
    /// Inserts or replaces, in one transaction.
    func upsertVectors(tenant: String, index: String, _ vectors: [StoredVector]) async throws
    /// Deletes the ids (all of the namespace when nil), in one transaction.
    func deleteVectors(tenant: String, index: String, namespace: String, ids: [String]?) async throws
}
