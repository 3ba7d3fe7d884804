import Connectors
import Crypto
import Foundation
import Metrics
import Runtime
import Tenancy

/// The second tier of a tenant's REST read cache in cluster mode: entries in Redis, shared by the
/// nodes, so a node that takes a tenant over (after a move, a restart or a rolling deploy) answers
/// its hot reads without going to the database first.
///
/// Entries are keyed by the tenant's configuration generation (bumped by every admin change, read
/// when the tree starts) and a per-source generation (bumped with `INCR` by every write through
/// mini-baas and every change from the feed; the write answers only after Redis has). While a bump
/// is in flight the tier is bypassed for that source; a bump Redis refused — or answered with a
/// number that did not grow, because Redis lost the counter — bypasses it for a whole lifetime, so
/// whatever was stored before has expired when it is used again. An entry is stored only if no
/// invalidation happened since its statement started. Redis is given 200 ms per command; a Redis
/// that is away or slow turns the tier off for two seconds at a time, costing misses, not errors.
public final class SharedReadCache: @unchecked Sendable {
    private enum Generation {
        case known(Int64)
        /// `INCR`s in flight; the generation before them; the highest answer so far; whether one
        /// of them failed.
        case bumping(inFlight: Int, before: Int64?, highest: Int64?, failed: Bool)
        /// Bypassed until then; read again after.
        case unknownUntil(ContinuousClock.Instant)
    }

    /// What a read needs to store its answer afterwards.
    public struct Ticket: Sendable {
        let source: String
        let generation: Int64
        let epoch: UInt64
    }

    /// Largest body stored: Redis also holds the cluster's leases, and is single-threaded.
    static let maxEntryBytes = 256 << 10
    /// Stores waiting for Redis at once; beyond, entries are not stored.
    static let maxPendingStores = 64

    private let redis: RedisClient
    private let prefix: String
    private let tenant: String
    private let configuration: Int64
    private let ttl: Duration
    private let lock = Lock()
    private var generations: [String: Generation] = [:]
    /// Local invalidations per source, so an answer that raced one is not installed or stored.
    private var epochs: [String: UInt64] = [:]
    private var pendingStores = 0
    private var offUntil: ContinuousClock.Instant?
    private let hits: Counter
    private let misses: Counter

    /// `configuration`: the tenant's configuration generation, read when its tree started.
    public init(redis: RedisClient, prefix: String, tenant: String, configuration: Int64, ttl: Duration) {
        self.redis = redis
        self.prefix = prefix
        self.tenant = tenant
        self.configuration = configuration
        self.ttl = ttl
        hits = Counter(label: "minibaas_cache_shared_hits_total", dimensions: [("tenant", tenant)])
        misses = Counter(label: "minibaas_cache_shared_misses_total", dimensions: [("tenant", tenant)])
    }

    // MARK: - Tenant configuration generation

    public static func configurationKey(prefix: String, tenant: String) -> String { "\(prefix)cache:config:\(tenant)" }

    /// The tenant's configuration generation, when a tree starts; nil when Redis cannot say (the
    /// tree then runs without this tier).
    public static func configurationGeneration(redis: RedisClient, prefix: String, tenant: String) async -> Int64? {
        guard let reply = try? await redis.send(["GET", configurationKey(prefix: prefix, tenant: tenant)]) else { return nil }
        return counter(reply)
    }

    /// A counter as `GET` answers it: absent is 0; anything but a number (an error reply) is nil.
    private static func counter(_ reply: RedisReply) -> Int64? {
        switch reply {
        case .null: 0
        case .string(let text): Int64(text)
        default: nil
        }
    }

    /// After an admin change (policies, sources, keys): entries made under the old configuration
    /// are never found again. False when Redis did not take it.
    public static func configurationChanged(redis: RedisClient, prefix: String, tenant: String) async -> Bool {
        guard case .integer? = try? await redis.send(["INCR", configurationKey(prefix: prefix, tenant: tenant)]) else { return false }
        return true
    }

    // MARK: - Reads

    /// Where a read may look, taken before its statement runs; nil while the tier is bypassed.
    public func ticket(for source: String) async -> Ticket? {
        let (state, epoch, off) = lock.withLock { (generations[source], epochs[source, default: 0], offUntil) }
        if let off, ContinuousClock.now < off { return nil }
        switch Self.standing(state) {
        case .known(let value): return Ticket(source: source, generation: value, epoch: epoch)
        case .bypassed: return nil
        case .toRead: break
        }
        let reply: RedisReply
        do {
            reply = try await redis.send(["GET", generationKey(source)])
        } catch {
            turnOff()
            return nil
        }
        guard let value = Self.counter(reply) else { return nil }
        return lock.withLock {
            // An invalidation that started meanwhile wins: what was read may predate it.
            guard epochs[source, default: 0] == epoch else { return nil }
            switch Self.standing(generations[source]) {
            case .known(let current): return Ticket(source: source, generation: current, epoch: epoch)
            case .bypassed: return nil
            case .toRead:
                generations[source] = .known(value)
                return Ticket(source: source, generation: value, epoch: epoch)
            }
        }
    }

    private enum Standing { case known(Int64), bypassed, toRead }

    /// What a source's generation state means for a read now.
    private static func standing(_ state: Generation?) -> Standing {
        switch state {
        case .known(let value)?: .known(value)
        case .bumping?: .bypassed
        case .unknownUntil(let instant)? where ContinuousClock.now < instant: .bypassed
        case .unknownUntil?, nil: .toRead
        }
    }

    /// The entry and how long it has left to live.
    public func get(_ key: String, _ ticket: Ticket) async -> (result: StatementResult, remaining: Duration)? {
        let reply: RedisReply
        do {
            reply = try await redis.send(["GET", entryKey(key, ticket)])
        } catch {
            turnOff()
            return nil
        }
        guard case .string(let text) = reply, let (result, expires) = Self.decode(text) else {
            misses.increment()
            return nil
        }
        let remaining = Duration.milliseconds(expires - Self.nowMilliseconds())
        guard remaining > .zero else {
            misses.increment()
            return nil
        }
        hits.increment()
        return (result, remaining)
    }

    /// Stores without the response waiting for Redis — unless an invalidation came since the
    /// ticket was taken, the body is too big, or too many stores are already waiting.
    public func put(_ key: String, _ ticket: Ticket, _ result: StatementResult) {
        guard (result.body?.utf8.count ?? 0) <= Self.maxEntryBytes else { return }
        let admitted = lock.withLock { () -> Bool in
            guard epochs[ticket.source, default: 0] == ticket.epoch, case .known(ticket.generation)? = generations[ticket.source],
                pendingStores < Self.maxPendingStores
            else { return false }
            pendingStores += 1
            return true
        }
        guard admitted else { return }
        let milliseconds = max(1, ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000)
        let command = ["SET", entryKey(key, ticket), Self.encode(result, expires: Self.nowMilliseconds() + milliseconds), "PX", String(milliseconds)]
        let redis = self.redis
        Task {
            _ = try? await redis.send(command)
            lock.withLock { pendingStores -= 1 }
        }
    }

    // MARK: - Invalidation

    /// Every entry of `source` stops being found at once; returns once Redis has the new
    /// generation (or refused it), so a write is answered only after its bump.
    public func invalidate(source: String) async {
        await startInvalidation(of: source).value
    }

    /// The same, for callers that must not wait for Redis (the change feed's dispatch): the
    /// bypass starts now; the returned task moves the generation.
    @discardableResult
    public func startInvalidation(of source: String) -> Task<Void, Never> {
        lock.withLock {
            epochs[source, default: 0] += 1
            switch generations[source] {
            case .bumping(let inFlight, let before, let highest, let failed)?:
                generations[source] = .bumping(inFlight: inFlight + 1, before: before, highest: highest, failed: failed)
            case .known(let value)?: generations[source] = .bumping(inFlight: 1, before: value, highest: nil, failed: false)
            case .unknownUntil?, nil: generations[source] = .bumping(inFlight: 1, before: nil, highest: nil, failed: false)
            }
        }
        return Task { await self.bump(source) }
    }

    private func bump(_ source: String) async {
        var answered: Int64?
        if case .integer(let value)? = try? await redis.send(["INCR", generationKey(source)]) { answered = value }
        lock.withLock {
            guard case .bumping(let inFlight, let before, let highest, let earlierFailed)? = generations[source] else { return }
            let newest = [highest, answered].compactMap { $0 }.max()
            // A counter that did not grow past what this node knew was lost by Redis: entries
            // stored under the old numbers may come back into use.
            let failed = earlierFailed || answered == nil || (before != nil && (answered ?? 0) <= before!)
            if inFlight > 1 {
                generations[source] = .bumping(inFlight: inFlight - 1, before: before, highest: newest, failed: failed)
            } else if failed || newest == nil {
                generations[source] = .unknownUntil(.now + ttl)
            } else {
                generations[source] = .known(newest!)
            }
        }
    }

    private func turnOff() {
        lock.withLock { offUntil = .now + .seconds(2) }
    }

    private func generationKey(_ source: String) -> String {
        "\(prefix)cache:gen:\(tenant):\(source)"
    }

    private func entryKey(_ key: String, _ ticket: Ticket) -> String {
        "\(prefix)cache:\(tenant):\(configuration):\(ticket.source):\(ticket.generation):\(Hex.encode(SHA256.hash(data: Array(key.utf8))))"
    }

    public static func nowMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// `count total expires` on the first line (`-` for no total; expiry in Unix milliseconds, so
    /// a copy taken into a node's own shard lives only what the entry has left), then the body
    /// after `=`, or `!` alone for no body.
    public static func encode(_ result: StatementResult, expires: Int64) -> String {
        "\(result.count) \(result.total.map(String.init) ?? "-") \(expires)\n\(result.body.map { "=" + $0 } ?? "!")"
    }

    public static func decode(_ text: String) -> (StatementResult, expires: Int64)? {
        let bytes = text.utf8
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let header = text.utf8[..<newline].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        let rest = bytes[bytes.index(after: newline)...]
        guard header.count == 3, let count = Int(header[0]), let expires = Int64(header[2]) else { return nil }
        let total = header[1] == "-" ? nil : Int(header[1])
        if header[1] != "-" && total == nil { return nil }
        let body: String?
        if rest.elementsEqual("!".utf8) {
            body = nil
        } else if rest.first == UInt8(ascii: "=") {
            body = String(decoding: rest.dropFirst(), as: UTF8.self)
        } else {
            return nil
        }
        return (StatementResult(body: body, count: count, total: total), expires)
    }
}
