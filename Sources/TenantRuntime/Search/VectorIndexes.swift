import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime
import Search
import Tenancy

/// The tenant's vector indexes (Pinecone's API, contract ../shared/contracts/search.md): every
/// record is stored in the control plane before a write is acknowledged, then applied to the
/// in-memory HNSW index, which is loaded from the store again on a new owner (while it loads,
/// the index answers 503 MB887). Access: the service role, or a policy on `vectors:{name}`
/// (`read` for queries, fetches, lists and stats; `create`/`update`/`delete` for writes).
public final class VectorIndexes: Sendable {
    let tenant: String
    let store: (any VectorStore)?
    let supervisor: SubsystemSupervisor
    let logger: Logger
    /// The tenant's search and vector memory in use (set by the search subsystem).
    let memoryInUse = NIOLockedValueBox<(@Sendable () -> Int)?>(nil)
    /// Writes are stored, then applied: one at a time per tenant, so two writes to the same id
    /// apply in the order they were stored.
    private let writes = WriteTurns()
    private let indexes = NIOLockedValueBox([String: (index: VectorIndex, ready: Bool, bound: Bool)]())
    public static let maxIndexes = 32
    public static let maxDimension = 4_096
    public static let maxBatch = 1_000
    public static let maxMetadataBytes = 40 * 1024
    public static let maxTopK = 10_000
    /// Per tenant, over all indexes and namespaces.
    public static let maxVectors = 2_000_000

    init(tenant: String, store: (any VectorStore)?, supervisor: SubsystemSupervisor, logger: Logger) {
        self.tenant = tenant
        self.store = store
        self.supervisor = supervisor
        self.logger = logger
    }

    public var all: [VectorIndex] { indexes.withLockedValue { $0.values.map(\.index).sorted { $0.name < $1.name } } }

    /// The index, once loaded.
    public func index(_ name: String) throws(SearchError) -> VectorIndex {
        guard let entry = indexes.withLockedValue({ $0[name] }) else { throw Self.notFound(name) }
        guard entry.ready else {
            throw SearchError(status: 503, code: "MB887", message: "vector index '\(name)' is being loaded on this node; try again shortly", kind: .system)
        }
        return entry.index
    }

    public func exists(_ name: String) -> Bool { indexes.withLockedValue { $0[name] != nil } }

    public static func notFound(_ name: String) -> SearchError {
        SearchError(status: 404, code: "MB890", message: "Resource \(name) not found", kind: .invalidRequest)
    }

    /// Loads every stored index in the background, each a supervised child. Indexes bound to a
    /// source are registered (not ready) and returned: the search subsystem syncs them.
    func start() async -> [(VectorIndexRecord, VectorIndex)] {
        guard let store else { return [] }
        let records: [VectorIndexRecord]
        do {
            records = try await store.vectorIndexes(tenant: tenant)
        } catch {
            logger.warning("cannot read the vector indexes; none are served", metadata: ["error": .string("\(error)")])
            return []
        }
        var bound: [(VectorIndexRecord, VectorIndex)] = []
        for record in records {
            if record.binding != nil {
                if let index = register(record, ready: false) { bound.append((record, index)) }
            } else {
                await load(record)
            }
        }
        return bound
    }

    @discardableResult
    func register(_ record: VectorIndexRecord, ready: Bool) -> VectorIndex? {
        guard let metric = VectorMetric(rawValue: record.metric) else { return nil }
        let index = VectorIndex(name: record.name, dimension: record.dimension, metric: metric, createdAt: record.createdAt)
        indexes.withLockedValue { $0[record.name] = (index, ready, record.binding != nil) }
        return index
    }

    func isReady(_ name: String) -> Bool { indexes.withLockedValue { $0[name]?.ready ?? false } }
    func markReady(_ name: String) { indexes.withLockedValue { if $0[name] != nil { $0[name]?.ready = true } } }

    /// Whether the index mirrors a source (its records are the source's rows: read-only here).
    public func isBound(_ name: String) -> Bool { indexes.withLockedValue { $0[name]?.bound ?? false } }

    /// Refuses writes to an index that mirrors a source.
    public func checkWritable(_ name: String) throws(SearchError) {
        if isBound(name) {
            throw SearchError(status: 405, code: "MB898", message: "vector index '\(name)' mirrors a column of its source: write the rows there, and the index follows")
        }
    }

    private func load(_ record: VectorIndexRecord) async {
        guard let store, let metric = VectorMetric(rawValue: record.metric) else { return }
        let index = VectorIndex(name: record.name, dimension: record.dimension, metric: metric, createdAt: record.createdAt)
        indexes.withLockedValue { $0[record.name] = (index, false, false) }
        let indexes = self.indexes
        let tenant = self.tenant
        await supervisor.start(ChildSpec(name: "vectors:\(record.name)", restart: .transient) {
            let stored = try await store.vectors(tenant: tenant, index: record.name)
            // Built off the event loops: a large index takes seconds of CPU.
            try await offloaded {
                var byNamespace: [String: [VectorRecord]] = [:]
                for vector in stored { byNamespace[vector.namespace, default: []].append(VectorRecord(id: vector.id, values: vector.values, metadata: vector.metadata)) }
                for (namespace, records) in byNamespace { index.upsert(records, namespace: namespace) }
            }
            indexes.withLockedValue { if $0[record.name] != nil { $0[record.name]?.ready = true } }
        })
    }

    // MARK: - Managing indexes

    /// A new index; with `binding`, one mirroring a source (not ready until the search
    /// subsystem's sync built it).
    public func create(name: String, dimension: Int, metric: VectorMetric, binding: JSONObject? = nil) async throws(SearchError) -> VectorIndex {
        guard !name.isEmpty, name.utf8.count <= 45, name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D }) else {
            throw SearchError(status: 400, code: "MB896", message: "Name must consist of lower case alphanumeric characters or '-', and be at most 45 characters")
        }
        guard (1...Self.maxDimension).contains(dimension) else {
            throw SearchError(status: 400, code: "MB893", message: "Dimension must be between 1 and \(Self.maxDimension)")
        }
        guard let store else { throw SearchError(status: 503, code: "MB899", message: "this node keeps no vector store", kind: .system) }
        guard indexes.withLockedValue({ $0.count }) < Self.maxIndexes else {
            throw SearchError(status: 429, code: "MB888", message: "the tenant has \(Self.maxIndexes) vector indexes, the most it may have")
        }
        let record = VectorIndexRecord(tenant: tenant, name: name, dimension: dimension, metric: metric.rawValue, createdAt: Date(), binding: binding)
        do {
            try await store.createVectorIndex(record)
        } catch ControlPlaneError.duplicate {
            throw SearchError(status: 409, code: "MB892", message: "Resource \(name) already exists")
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the index could not be stored: \(error)", kind: .internal)
        }
        let index = VectorIndex(name: name, dimension: dimension, metric: metric, createdAt: record.createdAt)
        indexes.withLockedValue { $0[name] = (index, binding == nil, binding != nil) }
        return index
    }

    public func delete(name: String) async throws(SearchError) {
        guard exists(name), let store else { throw Self.notFound(name) }
        do {
            _ = try await store.deleteVectorIndex(tenant: tenant, name: name)
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the index could not be deleted: \(error)", kind: .internal)
        }
        _ = indexes.withLockedValue { $0.removeValue(forKey: name) }
        await supervisor.remove("vectors:\(name)")
    }

    // MARK: - Writes: stored first, then applied

    /// Checks a batch (dimension, finite values, ids, metadata size) before anything is stored.
    public func validate(_ records: [VectorRecord], for index: VectorIndex) throws(SearchError) {
        guard !records.isEmpty else { throw SearchError(status: 400, code: "MB896", message: "No vectors provided") }
        guard records.count <= Self.maxBatch else {
            throw SearchError(status: 400, code: "MB896", message: "Too many vectors in one upsert: \(records.count), at most \(Self.maxBatch)")
        }
        var seen = Set<String>()
        for record in records {
            guard !record.id.isEmpty, record.id.utf8.count <= 512 else {
                throw SearchError(status: 400, code: "MB896", message: "Vector ids must be between 1 and 512 bytes")
            }
            guard seen.insert(record.id).inserted else { throw SearchError(status: 400, code: "MB896", message: "Duplicate id '\(record.id)' in one upsert") }
            guard record.values.count == index.dimension else {
                throw SearchError(
                    status: 400, code: "MB893",
                    message: "Vector dimension \(record.values.count) does not match the dimension of the index \(index.dimension)")
            }
            guard record.values.allSatisfy(\.isFinite) else {
                throw SearchError(status: 400, code: "MB894", message: "Vector '\(record.id)' has a value that is not a finite number")
            }
            if let metadata = record.metadata, JSONValue.object(metadata).encoded().count > Self.maxMetadataBytes {
                throw SearchError(status: 400, code: "MB895", message: "Metadata size of '\(record.id)' exceeds the limit of \(Self.maxMetadataBytes) bytes per vector")
            }
        }
    }

    public func upsert(_ records: [VectorRecord], into index: VectorIndex, namespace: String) async throws(SearchError) {
        try validate(records, for: index)
        guard let store else { throw SearchError(status: 503, code: "MB899", message: "this node keeps no vector store", kind: .system) }
        let total = all.reduce(0) { $0 + $1.total }
        guard total + records.count <= Self.maxVectors else {
            throw SearchError(status: 429, code: "MB888", message: "the tenant's vector indexes hold \(total) vectors; at most \(Self.maxVectors)")
        }
        let inUse = memoryInUse.withLockedValue { $0?() ?? 0 }
        guard inUse + records.count * (index.dimension * 4 + 256) <= SearchSubsystem.memoryLimit else {
            throw SearchError(
                status: 429, code: "MB888",
                message: "the tenant's search and vector indexes hold about \(inUse / 1_048_576) MB; this upsert would pass its \(SearchSubsystem.memoryLimit / 1_048_576) MB")
        }
        await writes.begin()
        defer { writes.end() }
        do {
            try await store.upsertVectors(
                tenant: tenant, index: index.name, records.map { StoredVector(namespace: namespace, id: $0.id, values: $0.values, metadata: $0.metadata) })
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the vectors could not be stored: \(error)", kind: .internal)
        }
        if records.count > 50 {
            _ = try? await offloaded { index.upsert(records, namespace: namespace) }
        } else {
            index.upsert(records, namespace: namespace)
        }
    }

    public func delete(ids: [String]?, in index: VectorIndex, namespace: String) async throws(SearchError) {
        guard let store else { throw SearchError(status: 503, code: "MB899", message: "this node keeps no vector store", kind: .system) }
        await writes.begin()
        defer { writes.end() }
        do {
            try await store.deleteVectors(tenant: tenant, index: index.name, namespace: namespace, ids: ids)
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the vectors could not be deleted: \(error)", kind: .internal)
        }
        if let ids { index.delete(ids: ids, namespace: namespace) } else { index.deleteAll(namespace: namespace) }
    }

    public func update(id: String, values: [Float]?, setMetadata: JSONObject?, in index: VectorIndex, namespace: String) async throws(SearchError) -> Bool {
        guard var record = index.record(id, namespace: namespace) else { return false }
        if let values { record.values = values }
        if let setMetadata {
            var merged = record.metadata ?? [:]
            for (key, value) in setMetadata { merged[key] = value }
            record.metadata = merged
        }
        try await upsert([record], into: index, namespace: namespace)
        return true
    }
}

/// A FIFO turn for async work: `begin` waits until every earlier turn has `end`ed.
final class WriteTurns: Sendable {
    private let state = NIOLockedValueBox((busy: false, waiting: [CheckedContinuation<Void, Never>]()))

    func begin() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { value -> Bool in
                if value.busy {
                    value.waiting.append(continuation)
                    return false
                }
                value.busy = true
                return true
            }
            if now { continuation.resume() }
        }
    }

    func end() {
        let next = state.withLockedValue { value -> CheckedContinuation<Void, Never>? in
            if value.waiting.isEmpty {
                value.busy = false
                return nil
            }
            return value.waiting.removeFirst()
        }
        next?.resume()
    }
}
