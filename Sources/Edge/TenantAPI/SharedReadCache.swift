import Connectors
import Crypto
import Metrics
import Runtime
import Tenancy

/// The second tier of a tenant's REST read cache in cluster mode: entries in Redis, shared by the
/// nodes, so a node that takes a tenant over (after a move, a restart or a rolling deploy) answers
/// its hot reads without going to the database first.
///
/// Entries are keyed by a per-source generation. Invalidating (a write through mini-baas, a change
/// from the feed) bumps the generation with `INCR`; until Redis has answered, this tier is bypassed
/// for the source, so no reader ever sees an entry made before the change. An entry is stored
/// under the generation read *before* its statement ran, so a read racing a write lands under a
/// generation nobody asks for any more. A node that gains the tenant reads the generation afresh
/// (this object lives in the tenant's tree). Redis being away costs a miss, never an error.
final class SharedReadCache: @unchecked Sendable {
    private enum Generation {
        case known(Int64)
        /// `INCR`s still in flight, the highest value any of them answered so far, and whether one
        /// of them failed.
        case bumping(inFlight: Int, highest: Int64, failed: Bool)
        /// An `INCR` failed: entries of the old generation may still be in Redis, so the tier is
        /// bypassed until they have expired, and the generation read again after.
        case unknownUntil(ContinuousClock.Instant)
    }

    private let redis: RedisClient
    private let prefix: String
    private let tenant: String
    private let ttl: Duration
    private let lock = Lock()
    private var generations: [String: Generation] = [:]
    private let hits: Counter
    private let misses: Counter

    init(redis: RedisClient, prefix: String, tenant: String, ttl: Duration) {
        self.redis = redis
        self.prefix = prefix
        self.tenant = tenant
        self.ttl = ttl
        hits = Counter(label: "minibaas_cache_shared_hits_total", dimensions: [("tenant", tenant)])
        misses = Counter(label: "minibaas_cache_shared_misses_total", dimensions: [("tenant", tenant)])
    }

    /// The source's current generation, read from Redis the first time; nil while an
    /// invalidation is in flight or Redis cannot say.
    func generation(of source: String) async -> Int64? {
        switch lock.withLock({ generations[source] }) {
        case .known(let value)?: return value
        case .bumping?: return nil
        case .unknownUntil(let instant)? where ContinuousClock.now < instant: return nil
        case .unknownUntil?, nil: break
        }
        guard let reply = try? await redis.send(["GET", generationKey(source)]) else { return nil }
        let value = reply.string.flatMap { Int64($0) } ?? 0
        return lock.withLock {
            // An invalidation that started meanwhile wins.
            switch generations[source] {
            case .known(let current)?: return current
            case .bumping?: return nil
            case .unknownUntil?, nil:
                generations[source] = .known(value)
                return value
            }
        }
    }

    func get(_ key: String, source: String, generation: Int64) async -> StatementResult? {
        let reply = try? await redis.send(["GET", entryKey(key, source: source, generation: generation)])
        guard let text = reply?.string, let result = Self.decode(text) else {
            misses.increment()
            return nil
        }
        hits.increment()
        return result
    }

    /// Stores without waiting: the response does not wait for Redis.
    func put(_ key: String, source: String, generation: Int64, _ result: StatementResult) {
        let milliseconds = ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000
        let command = ["SET", entryKey(key, source: source, generation: generation), Self.encode(result), "PX", String(max(1, milliseconds))]
        let redis = self.redis
        Task { _ = try? await redis.send(command) }
    }

    /// Every entry of `source` stops being found at once; Redis learns the new generation after.
    func invalidate(source: String) {
        lock.withLock {
            switch generations[source] {
            case .bumping(let inFlight, let highest, let failed)?:
                generations[source] = .bumping(inFlight: inFlight + 1, highest: highest, failed: failed)
            case .known(let value)?: generations[source] = .bumping(inFlight: 1, highest: value, failed: false)
            case .unknownUntil?, nil: generations[source] = .bumping(inFlight: 1, highest: 0, failed: false)
            }
        }
        let redis = self.redis
        let key = generationKey(source)
        Task {
            let answered = try? await redis.send(["INCR", key]).integer
            lock.withLock {
                guard case .bumping(let inFlight, let highest, let earlierFailed)? = generations[source] else { return }
                let newest = max(highest, answered ?? highest)
                let failed = earlierFailed || answered == nil
                if inFlight > 1 {
                    generations[source] = .bumping(inFlight: inFlight - 1, highest: newest, failed: failed)
                } else if failed {
                    generations[source] = .unknownUntil(.now + ttl)
                } else {
                    generations[source] = .known(newest)
                }
            }
        }
    }

    private func generationKey(_ source: String) -> String {
        "\(prefix)cache:gen:\(tenant):\(source)"
    }

    private func entryKey(_ key: String, source: String, generation: Int64) -> String {
        "\(prefix)cache:\(tenant):\(source):\(generation):\(Hex.encode(SHA256.hash(data: Array(key.utf8))))"
    }

    /// `count total` on the first line (`-` for no total), then the body; `!` alone for no body.
    static func encode(_ result: StatementResult) -> String {
        "\(result.count) \(result.total.map(String.init) ?? "-")\n\(result.body.map { "=" + $0 } ?? "!")"
    }

    static func decode(_ text: String) -> StatementResult? {
        guard let newline = text.utf8.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let header = text[..<newline].split(separator: " ")
        let rest = text[text.utf8.index(after: newline)...]
        guard header.count == 2, let count = Int(header[0]) else { return nil }
        let total = header[1] == "-" ? nil : Int(header[1])
        if header[1] != "-" && total == nil { return nil }
        let body: String?
        if rest == "!" {
            body = nil
        } else if rest.first == "=" {
            body = String(rest.dropFirst())
        } else {
            return nil
        }
        return StatementResult(body: body, count: count, total: total)
    }
}

extension TenantSupervisor {
    /// Drops a source's cached reads from both tiers: after a write through mini-baas, or a change
    /// from the source's feed.
    nonisolated func dropCachedReads(of source: String) {
        attachments.get(RestReadCache.self)?.invalidate(source: source)
        attachments.get(SharedReadCache.self)?.invalidate(source: source)
    }
}
