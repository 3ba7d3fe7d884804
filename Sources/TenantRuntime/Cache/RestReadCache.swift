import Connectors
import Metrics
import Runtime
import Tenancy

/// A tenant's cache shard for REST reads: the database's answer to a GET, kept for at most one
/// second, keyed by source, the request as the client sent it, the caller's role and every claim
/// of its token — so nobody is ever answered from an entry made for a caller who may see more.
///
/// Writes through mini-baas and changes from the source's change feed drop the source's entries
/// at once; the one-second lifetime bounds what a write made elsewhere (with no feed running) can
/// leave stale. Bounded in entries and bytes, least recently used out first.
public final class RestReadCache: @unchecked Sendable {
    private struct Entry {
        /// The dictionary's own key, so the use log shares its storage rather than holding the
        /// caller's copy of a long key.
        var key: String
        var result: StatementResult
        var source: String
        var bytes: Int
        var expires: ContinuousClock.Instant
        var used: UInt64
    }

    private let lock = Lock()
    private var entries: [String: Entry] = [:]
    private var bytes = 0
    private var tick: UInt64 = 0
    /// Every use in order, oldest first from `head`; a use is current while its entry's `used`
    /// still equals its tick. Finding the least recently used entry is then amortised O(1) — a
    /// scan of all entries on every insert made a full cache the slowest part of a read.
    private var uses: [(key: String, tick: UInt64)] = []
    private var head = 0
    /// Invalidations per source, so an answer read before one is not stored after it.
    private var epochs: [String: UInt64] = [:]
    private let maxEntries: Int
    private let maxBytes: Int
    private let ttl: Duration
    private let hits: Counter
    private let misses: Counter
    private let evictions: Counter

    public init(tenant: String, maxEntries: Int = 1000, maxBytes: Int = 8 << 20, ttl: Duration = .seconds(1)) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        self.ttl = ttl
        hits = Counter(label: "minibaas_cache_hits_total", dimensions: [("tenant", tenant)])
        misses = Counter(label: "minibaas_cache_misses_total", dimensions: [("tenant", tenant)])
        evictions = Counter(label: "minibaas_cache_evictions_total", dimensions: [("tenant", tenant)])
    }

    public static func key(
        source: String, entity: String, query: [(String, String)], range: String?, rangeUnit: String?, prefer: String?, caller: Caller
    ) -> String {
        var key = "\(source)\u{0}\(entity)\u{0}\(caller.role)\u{0}"
        key += caller.claimsText
        for (name, value) in query { key += "\u{0}\(name)=\(value)" }
        key += "\u{0}range=\(range ?? "")\u{0}unit=\(rangeUnit ?? "")\u{0}prefer=\(prefer ?? "")"
        return key
    }

    public func get(_ key: String) -> StatementResult? {
        // One hash of the (long) key: found by index, updated in place.
        let found: StatementResult? = lock.withLock {
            guard let index = entries.index(forKey: key) else { return nil }
            guard entries.values[index].expires > .now else {
                remove(key)
                return nil
            }
            let used = touch(entries.values[index].key)
            entries.values[index].used = used
            return entries.values[index].result
        }
        if found != nil { hits.increment() } else { misses.increment() }
        return found
    }

    /// The source's invalidation count, taken before a statement runs and given back to `put`.
    public func epoch(of source: String) -> UInt64 {
        lock.withLock { epochs[source, default: 0] }
    }

    /// Stores an answer unless the source was invalidated since `epoch` was taken (the answer may
    /// predate the change). `lifetime`: what the entry has left when it comes from the shared tier.
    public func put(_ key: String, source: String, epoch: UInt64? = nil, lifetime: Duration? = nil, _ result: StatementResult) {
        let size = key.utf8.count + (result.body?.utf8.count ?? 0)
        guard size <= maxBytes / 8 else { return }
        var evicted = 0
        lock.withLock {
            if let epoch, epochs[source, default: 0] != epoch { return }
            remove(key)
            entries[key] = Entry(
                key: key, result: result, source: source, bytes: size, expires: .now + min(ttl, lifetime ?? ttl), used: touch(key))
            bytes += size
            while entries.count > maxEntries || bytes > maxBytes, let oldest = leastRecentlyUsed() {
                remove(oldest)
                evicted += 1
            }
        }
        if evicted > 0 { evictions.increment(by: Int64(evicted)) }
    }

    /// Drops every entry read from `source` (a write through mini-baas, or a change from its feed).
    public func invalidate(source: String) {
        lock.withLock {
            epochs[source, default: 0] += 1
            for (key, entry) in entries where entry.source == source { remove(key) }
        }
    }

    public var count: Int { lock.withLock { entries.count } }

    private func touch(_ key: String) -> UInt64 {
        tick += 1
        uses.append((key, tick))
        if uses.count > 4 * maxEntries + 1024 {
            // Mostly stale uses (hits on the same keys): keep only the current ones, in order.
            uses = uses[head...].filter { entries[$0.key]?.used == $0.tick || $0.key == key && $0.tick == tick }
            head = 0
        }
        return tick
    }

    private func leastRecentlyUsed() -> String? {
        while head < uses.count {
            let use = uses[head]
            head += 1
            if head > 1024 && head * 2 > uses.count {
                uses.removeFirst(head)
                head = 0
            }
            if entries[use.key]?.used == use.tick { return use.key }
        }
        return nil
    }

    private func remove(_ key: String) {
        if let entry = entries.removeValue(forKey: key) { bytes -= entry.bytes }
    }
}
