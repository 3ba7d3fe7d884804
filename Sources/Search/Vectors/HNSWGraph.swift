import Foundation

/// A hierarchical navigable small world graph (Malkov & Yashunin, 2016) over vectors kept in a
/// flat array beside it: each node has up to `m0` neighbours on layer 0 and `m` on the sparser
/// layers above, chosen with the paper's heuristic (a neighbour is kept only if it is closer to
/// the new node than to every neighbour already kept), which keeps clusters connected. Searches
/// descend greedily from the top entry point, then explore layer 0 with a beam of `ef`.
/// Deleted nodes stay as stepping stones and are never returned.
struct HNSWGraph {
    let m: Int
    let m0: Int
    let efConstruction: Int
    let metric: VectorMetric
    let dimension: Int
    private let levelFactor: Double
    /// Layer-0 neighbours per node.
    private(set) var base: [[Int32]] = []
    /// Upper layers per node: `upper[node][layer - 1]`.
    private var upper: [[[Int32]]] = []
    private(set) var entry: Int32 = -1
    private var topLevel = 0
    private var random: UInt64 = 0x2545_F491_4F6C_DD1D

    init(dimension: Int, metric: VectorMetric, m: Int = 16, efConstruction: Int = 64) {
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.m0 = 2 * m
        self.efConstruction = efConstruction
        self.levelFactor = 1 / log(Double(m))
    }

    var count: Int { base.count }

    private mutating func randomLevel() -> Int {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        let uniform = max(Double(random >> 11) / Double(1 << 53), 1e-12)
        return min(Int(-log(uniform) * levelFactor), 16)
    }

    // MARK: - Heaps of (distance, node)

    /// A binary heap ordered by distance: `max` true keeps the farthest on top.
    struct Heap {
        var items: [(Float, Int32)] = []
        let max: Bool
        init(max: Bool, capacity: Int = 0) {
            self.max = max
            items.reserveCapacity(capacity)
        }
        var count: Int { items.count }
        var top: (Float, Int32)? { items.first }
        @inline(__always) private func before(_ a: (Float, Int32), _ b: (Float, Int32)) -> Bool { max ? a.0 > b.0 : a.0 < b.0 }
        mutating func push(_ item: (Float, Int32)) {
            items.append(item)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard before(items[child], items[parent]) else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }
        @discardableResult
        mutating func pop() -> (Float, Int32)? {
            guard !items.isEmpty else { return nil }
            let first = items[0]
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                var parent = 0
                while true {
                    let left = 2 * parent + 1
                    guard left < items.count else { break }
                    var pick = left
                    if left + 1 < items.count, before(items[left + 1], items[left]) { pick = left + 1 }
                    guard before(items[pick], items[parent]) else { break }
                    items.swapAt(pick, parent)
                    parent = pick
                }
            }
            return first
        }
    }

    // MARK: - Search

    /// Layer `layer`'s closest `ef` nodes to `query` found from `entries`; nodes failing `accept`
    /// are walked through but not returned. Sorted nearest first.
    func searchLayer(
        _ query: UnsafeBufferPointer<Float>, entries: [(Float, Int32)], ef: Int, layer: Int, vectors: UnsafeBufferPointer<Float>,
        visited: inout VisitedSet, accept: ((Int32) -> Bool)? = nil, maxVisits: Int = .max
    ) -> [(Float, Int32)] {
        var candidates = Heap(max: false, capacity: ef * 2)
        var results = Heap(max: true, capacity: ef + 1)
        for entry in entries {
            visited.insert(entry.1)
            candidates.push(entry)
            if accept?(entry.1) ?? true { results.push(entry) }
        }
        var visits = 0
        while let (distance, node) = candidates.pop() {
            if results.count >= ef, let worst = results.top, distance > worst.0 { break }
            let links = layer == 0 ? base[Int(node)] : upper[Int(node)][layer - 1]
            for neighbour in links where !visited.contains(neighbour) {
                visited.insert(neighbour)
                visits += 1
                let d = metric.distance(query, vector(neighbour, vectors))
                if results.count < ef || d < results.top!.0 {
                    candidates.push((d, neighbour))
                    if accept?(neighbour) ?? true {
                        results.push((d, neighbour))
                        if results.count > ef { results.pop() }
                    }
                }
            }
            if visits >= maxVisits { break }
        }
        return results.items.sorted { $0.0 < $1.0 }
    }

    @inline(__always)
    func vector(_ node: Int32, _ vectors: UnsafeBufferPointer<Float>) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(rebasing: vectors[Int(node) * dimension..<(Int(node) + 1) * dimension])
    }

    /// The `k` nearest accepted nodes with a beam of `ef` (at least `k`).
    func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, vectors: UnsafeBufferPointer<Float>, accept: ((Int32) -> Bool)?
    ) -> [(Float, Int32)] {
        guard entry >= 0 else { return [] }
        var visited = VisitedSet(count: count)
        var current = (metric.distance(query, vector(entry, vectors)), entry)
        if topLevel > 0 {
            for layer in stride(from: topLevel, through: 1, by: -1) {
                current = greedy(query, from: current, layer: layer, vectors: vectors)
            }
        }
        let found = searchLayer(
            query, entries: [current], ef: max(ef, k), layer: 0, vectors: vectors, visited: &visited, accept: accept, maxVisits: max(count / 2, 10 * ef))
        return Array(found.prefix(k))
    }

    /// Moves to the closest neighbour on `layer` until none is closer.
    private func greedy(_ query: UnsafeBufferPointer<Float>, from start: (Float, Int32), layer: Int, vectors: UnsafeBufferPointer<Float>) -> (Float, Int32) {
        var current = start
        var moved = true
        while moved {
            moved = false
            for neighbour in upper[Int(current.1)][layer - 1] {
                let d = metric.distance(query, vector(neighbour, vectors))
                if d < current.0 {
                    current = (d, neighbour)
                    moved = true
                }
            }
        }
        return current
    }

    // MARK: - Insertion

    /// Links node `count` (its vector already stored at that index in `vectors`).
    mutating func insert(vectors: UnsafeBufferPointer<Float>) {
        let node = Int32(base.count)
        let level = randomLevel()
        base.append([])
        upper.append(Array(repeating: [], count: level))
        guard entry >= 0 else {
            entry = node
            topLevel = level
            return
        }
        let query = vector(node, vectors)
        var current = (metric.distance(query, vector(entry, vectors)), entry)
        if topLevel > level {
            for layer in stride(from: topLevel, to: level, by: -1) {
                current = greedy(query, from: current, layer: layer, vectors: vectors)
            }
        }
        var entries = [current]
        var visited = VisitedSet(count: base.count)
        for layer in stride(from: min(level, topLevel), through: 0, by: -1) {
            visited.clear()
            let found = searchLayer(query, entries: entries, ef: efConstruction, layer: layer, vectors: vectors, visited: &visited)
            let limit = layer == 0 ? m0 : m
            let chosen = select(found, limit: m, vectors: vectors)
            setLinks(node, layer: layer, chosen.map(\.1))
            for (_, neighbour) in chosen {
                var links = self.links(neighbour, layer: layer)
                links.append(node)
                // A full list is pruned with the heuristic once it is a quarter over: pruning at
                // every overflow costs a distance per pair of links, for every neighbour of
                // every insert; the slack amortizes it without giving up the heuristic.
                if links.count > limit + limit / 4 {
                    let here = vector(neighbour, vectors)
                    let scored = links.map { (metric.distance(here, vector($0, vectors)), $0) }.sorted { $0.0 < $1.0 }
                    links = select(scored, limit: limit, vectors: vectors).map(\.1)
                }
                setLinks(neighbour, layer: layer, links)
            }
            entries = found
        }
        if level > topLevel {
            topLevel = level
            entry = node
        }
    }

    private func links(_ node: Int32, layer: Int) -> [Int32] { layer == 0 ? base[Int(node)] : upper[Int(node)][layer - 1] }

    private mutating func setLinks(_ node: Int32, layer: Int, _ links: [Int32]) {
        if layer == 0 { base[Int(node)] = links } else { upper[Int(node)][layer - 1] = links }
    }

    /// The paper's neighbour heuristic over candidates sorted nearest first: keep one only if it
    /// is closer to the base than to any kept so far; fill up with the nearest discarded.
    private func select(_ candidates: [(Float, Int32)], limit: Int, vectors: UnsafeBufferPointer<Float>) -> [(Float, Int32)] {
        guard candidates.count > limit else { return candidates }
        var kept: [(Float, Int32)] = []
        var discarded: [(Float, Int32)] = []
        for candidate in candidates {
            if kept.count >= limit { break }
            let here = vector(candidate.1, vectors)
            if kept.allSatisfy({ metric.distance(here, vector($0.1, vectors)) > candidate.0 }) {
                kept.append(candidate)
            } else {
                discarded.append(candidate)
            }
        }
        for candidate in discarded where kept.count < limit { kept.append(candidate) }
        return kept
    }
}

/// Which nodes a search has seen: one bit per node.
struct VisitedSet {
    private var words: [UInt64]
    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 64) / 64) }
    @inline(__always) func contains(_ node: Int32) -> Bool { words[Int(node) >> 6] & (1 << UInt64(node & 63)) != 0 }
    @inline(__always) mutating func insert(_ node: Int32) { words[Int(node) >> 6] |= 1 << UInt64(node & 63) }
    mutating func clear() { for index in words.indices { words[index] = 0 } }
}
