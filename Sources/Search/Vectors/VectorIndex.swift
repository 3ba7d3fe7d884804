import Foundation
import Runtime

/// One record as Pinecone's clients send it.
public struct VectorRecord: Sendable, Equatable {
    public var id: String
    public var values: [Float]
    public var metadata: JSONObject?

    public init(id: String, values: [Float], metadata: JSONObject?) {
        self.id = id
        self.values = values
        self.metadata = metadata
    }
}

/// A match of a query.
public struct VectorMatch: Sendable {
    public var id: String
    public var score: Float
    public var values: [Float]?
    public var metadata: JSONObject?
}

/// A vector index in memory: per namespace, the vectors in one flat array, their ids and
/// metadata, and an HNSW graph over them. Namespaces below `exactBelow` live vectors are
/// searched exactly (a scan is fast there and always right); filters that leave the graph search
/// short fall back to an exact scan of the matching vectors. What is here is derived: the
/// control plane holds every record, and an index is loaded again from it on a new owner.
public final class VectorIndex: @unchecked Sendable {
    public let name: String
    public let dimension: Int
    public let metric: VectorMetric
    public let createdAt: Date
    /// The search beam (at least topK).
    public let ef: Int
    public static let exactBelow = 5_000
    private let lock = Lock()
    private var spaces: [String: Namespace] = [:]

    final class Namespace {
        var vectors: [Float] = []
        var ids: [String] = []
        var metadata: [JSONObject?] = []
        /// Cosine keeps vectors normalized; their norms give the values back as sent.
        var norms: [Float] = []
        var deleted: [Bool] = []
        var slots: [String: Int32] = [:]
        var graph: HNSWGraph
        var live = 0

        init(dimension: Int, metric: VectorMetric) {
            graph = HNSWGraph(dimension: dimension, metric: metric)
        }
    }

    public init(name: String, dimension: Int, metric: VectorMetric, ef: Int = 100, createdAt: Date = Date()) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.ef = ef
        self.createdAt = createdAt
    }

    /// Cosine compares directions: vectors are kept normalized, with their norm.
    private func prepared(_ values: [Float]) -> (values: [Float], norm: Float) {
        guard metric == .cosine else { return (values, 1) }
        let norm = values.withUnsafeBufferPointer { VectorMetric.dot($0, $0) }.squareRoot()
        return norm > 0 ? (values.map { $0 / norm }, norm) : (values, 1)
    }

    private func values(_ space: Namespace, _ slot: Int) -> [Float] {
        let stored = space.vectors[slot * dimension..<(slot + 1) * dimension]
        let norm = space.norms[slot]
        return norm == 1 ? Array(stored) : stored.map { $0 * norm }
    }

    /// Appends one record to a namespace and links it into its graph.
    private func append(_ record: VectorRecord, to space: Namespace) {
        let slot = Int32(space.ids.count)
        let (normalized, norm) = prepared(record.values)
        space.vectors += normalized
        space.norms.append(norm)
        space.ids.append(record.id)
        space.metadata.append(record.metadata)
        space.deleted.append(false)
        space.slots[record.id] = slot
        space.live += 1
        space.vectors.withUnsafeBufferPointer { space.graph.insert(vectors: $0) }
    }

    // MARK: - Writes (already stored in the control plane by the caller)

    public func upsert(_ records: [VectorRecord], namespace: String) {
        lock.withLock {
            let space = spaces[namespace] ?? Namespace(dimension: dimension, metric: metric)
            spaces[namespace] = space
            for record in records {
                if let old = space.slots[record.id] {
                    space.deleted[Int(old)] = true
                    space.live -= 1
                }
                append(record, to: space)
            }
            compactIfNeeded(space)
        }
    }

    /// Removes `ids`; answers how many existed.
    @discardableResult
    public func delete(ids: [String], namespace: String) -> Int {
        lock.withLock {
            guard let space = spaces[namespace] else { return 0 }
            var removed = 0
            for id in ids {
                guard let slot = space.slots.removeValue(forKey: id) else { continue }
                space.deleted[Int(slot)] = true
                space.live -= 1
                removed += 1
            }
            if space.live == 0 { spaces[namespace] = nil } else { compactIfNeeded(space) }
            return removed
        }
    }

    public func deleteAll(namespace: String) {
        lock.withLock { _ = spaces.removeValue(forKey: namespace) }
    }

    /// The ids whose metadata passes `filter` (a delete by filter names them to the store first).
    public func ids(matching filter: MetadataFilter, namespace: String) -> [String] {
        lock.withLock {
            guard let space = spaces[namespace] else { return [] }
            return space.ids.indices.filter { !space.deleted[$0] && filter.matches(space.metadata[$0]) }.map { space.ids[$0] }
        }
    }

    /// A record as it was sent.
    public func record(_ id: String, namespace: String) -> VectorRecord? {
        lock.withLock {
            guard let space = spaces[namespace], let slot = space.slots[id] else { return nil }
            return record(space, Int(slot))
        }
    }

    private func record(_ space: Namespace, _ slot: Int) -> VectorRecord {
        VectorRecord(id: space.ids[slot], values: values(space, slot), metadata: space.metadata[slot])
    }

    /// Rebuilds a namespace without its deleted nodes once they outnumber the live ones.
    private func compactIfNeeded(_ space: Namespace) {
        let dead = space.ids.count - space.live
        guard dead > 1_000, dead > space.live else { return }
        let kept = space.ids.indices.filter { !space.deleted[$0] }.map { record(space, $0) }
        let fresh = Namespace(dimension: dimension, metric: metric)
        for record in kept { append(record, to: fresh) }
        space.vectors = fresh.vectors
        space.norms = fresh.norms
        space.ids = fresh.ids
        space.metadata = fresh.metadata
        space.deleted = fresh.deleted
        space.slots = fresh.slots
        space.graph = fresh.graph
        space.live = fresh.live
    }

    // MARK: - Reads

    /// The `topK` nearest to `vector`, filtered; exact when the namespace is small or the filter
    /// leaves the graph search short.
    public func query(_ vector: [Float], topK: Int, filter: MetadataFilter?, namespace: String, includeValues: Bool, includeMetadata: Bool, exact: Bool = false)
        -> [VectorMatch]
    {
        lock.withLock {
            guard let space = spaces[namespace], space.live > 0 else { return [] }
            let query = prepared(vector).values
            let accept: (Int32) -> Bool = { slot in
                !space.deleted[Int(slot)] && (filter?.matches(space.metadata[Int(slot)]) ?? true)
            }
            var found: [(Float, Int32)] = []
            query.withUnsafeBufferPointer { query in
                space.vectors.withUnsafeBufferPointer { vectors in
                    if !exact && space.live >= Self.exactBelow {
                        found = space.graph.search(query, k: topK, ef: max(ef, topK), vectors: vectors, accept: accept)
                    }
                    if found.count < min(topK, space.live) {
                        found = exactScan(query, vectors: vectors, space: space, topK: topK, accept: accept)
                    }
                }
            }
            return found.map { distance, slot in
                VectorMatch(
                    id: space.ids[Int(slot)], score: metric.score(distance),
                    values: includeValues ? values(space, Int(slot)) : nil,
                    metadata: includeMetadata ? space.metadata[Int(slot)] : nil)
            }
        }
    }

    private func exactScan(
        _ query: UnsafeBufferPointer<Float>, vectors: UnsafeBufferPointer<Float>, space: Namespace, topK: Int, accept: (Int32) -> Bool
    ) -> [(Float, Int32)] {
        var heap = HNSWGraph.Heap(max: true, capacity: topK + 1)
        for slot in 0..<Int32(space.ids.count) where accept(slot) {
            let d = metric.distance(query, space.graph.vector(slot, vectors))
            if heap.count < topK || d < heap.top!.0 {
                heap.push((d, slot))
                if heap.count > topK { heap.pop() }
            }
        }
        return heap.items.sorted { $0.0 < $1.0 }
    }

    /// Ids in order with a prefix, a page at a time (`list`).
    public func list(prefix: String?, limit: Int, after: String?, namespace: String) -> (ids: [String], next: String?) {
        lock.withLock {
            guard let space = spaces[namespace] else { return ([], nil) }
            let sorted = space.slots.keys.filter { prefix.map($0.hasPrefix) ?? true }.sorted()
            let start = after.map { token in sorted.firstIndex { $0 > token } ?? sorted.count } ?? 0
            let page = Array(sorted[start..<min(start + limit, sorted.count)])
            return (page, start + limit < sorted.count ? page.last : nil)
        }
    }

    /// Every live id of a namespace.
    public func ids(namespace: String) -> [String] { lock.withLock { spaces[namespace].map { Array($0.slots.keys) } ?? [] } }

    /// Live vectors per namespace.
    public var namespaces: [String: Int] { lock.withLock { spaces.mapValues(\.live) } }
    public var total: Int { lock.withLock { spaces.values.reduce(0) { $0 + $1.live } } }
    /// About how much memory the index holds: the vectors (kept and deleted until compaction),
    /// and the graph and ids (measured at ~1.7x the raw vectors for 128 dimensions).
    public var estimatedBytes: Int {
        lock.withLock { spaces.values.reduce(0) { $0 + $1.vectors.count * 4 + $1.ids.count * (48 * 4 + 64) } }
    }
}
