import Foundation

/// Membership, leases and tenant events in Redis.
///
/// Keys (under a prefix, `minibaas:` by default): `member:{id}` — the heartbeat, JSON, expiring,
/// indexed in the sorted set `members`; `lease:{slug}` — `node incarnation token`, expiring;
/// `fence:{slug}` — the last token granted; `epoch` — when this Redis's data began. Leases change
/// only inside Lua scripts, so "take it if free" and "extend it if still mine" are atomic.
///
/// Tokens are at least Redis's clock in microseconds, so they keep increasing even when a Redis
/// without persistence restarts and forgets `fence:*`. Such a restart also forgets `epoch`: the
/// first lease request after it starts a quiet period of one lease TTL in which only previous
/// holders (through `renew`) take leases back, so a node that did not notice the restart cannot
/// take a tenant that another node is still serving.
public struct RedisCoordinationBackend: CoordinationBackend {
    let redis: RedisClient
    let prefix: String
    /// `fence:*` keys outlive any lease by far, yet do not pile up for names never used again.
    static let fenceTTLMilliseconds = "2592000000"

    public init(redis: RedisClient, prefix: String = "minibaas:") {
        self.redis = redis
        self.prefix = prefix
    }

    // Shared by the scripts: `now` in µs, and `token`, the next token for KEYS[2].
    private static let nextToken = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local token = string.format('%d', math.max(last + 1, now))
        redis.call('SET', KEYS[2], token, 'PX', \(fenceTTLMilliseconds))
        """

    /// KEYS: lease, fence, epoch. ARGV: "node incarnation", ttl ms.
    private static let acquireScript = """
        local current = redis.call('GET', KEYS[1])
        if current then return {'held', current, tostring(redis.call('PTTL', KEYS[1]))} end
        local t = redis.call('TIME')
        local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local epoch = redis.call('GET', KEYS[3])
        if not epoch then
          redis.call('SET', KEYS[3], string.format('%d', nowms))
          return {'settling', ARGV[2]}
        end
        local settled = tonumber(epoch) + tonumber(ARGV[2])
        if nowms < settled then return {'settling', string.format('%d', settled - nowms)} end
        \(nextToken)
        redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'NX', 'PX', ARGV[2])
        return {'granted', token}
        """

    /// KEYS: lease, fence. ARGV: "node incarnation", token, ttl ms. A lease still ours (under
    /// any token: a renewal may cross a re-take) is extended; a lapsed one is taken back only if
    /// nobody was granted it since (the fence still shows our token) or Redis forgot everything.
    private static let renewScript = """
        local current = redis.call('GET', KEYS[1])
        local mine = ARGV[1] .. ' '
        if current then
          if string.sub(current, 1, string.len(mine)) == mine then
            redis.call('PEXPIRE', KEYS[1], ARGV[3])
            return string.sub(current, string.len(mine) + 1)
          end
          return false
        end
        local fence = redis.call('GET', KEYS[2])
        if fence and fence ~= ARGV[2] then return false end
        \(nextToken)
        redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[3])
        return token
        """

    /// KEYS: lease, fence. ARGV: "node incarnation token". Releasing moves the fence on, so a
    /// renewal still in flight cannot take the lease back afterwards.
    private static let releaseScript = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        \(nextToken)
        return 1
        """

    public func announce(_ member: ClusterMember, ttl: Duration) async throws {
        let milliseconds = Self.milliseconds(ttl)
        let expires = String(Int64(Date().timeIntervalSince1970 * 1000) + Int64(milliseconds)!)
        let stale = String(Int64(Date().timeIntervalSince1970 * 1000) - 60_000)
        for reply in try await redis.pipeline([
            ["SET", prefix + "member:" + member.id, member.encoded(), "PX", milliseconds],
            ["ZADD", prefix + "members", expires, member.id],
            // The index only points at heartbeat keys; entries are dropped a minute after their
            // beat would have expired, which tolerates clock skew between nodes.
            ["ZREMRANGEBYSCORE", prefix + "members", "-inf", stale],
        ]) {
            try check(reply)
        }
    }

    public func withdraw(_ member: ClusterMember) async throws {
        for reply in try await redis.pipeline([["DEL", prefix + "member:" + member.id], ["ZREM", prefix + "members", member.id]]) {
            try check(reply)
        }
    }

    public func members() async throws -> [ClusterMember] {
        let ids = try check(await redis.send(["ZRANGE", prefix + "members", "0", "-1"])).array?.compactMap(\.string) ?? []
        guard !ids.isEmpty else { return [] }
        let values = try check(await redis.send(["MGET"] + ids.map { prefix + "member:" + $0 })).array ?? []
        return values.compactMap { $0.string.flatMap(ClusterMember.decode) }.sorted { $0.id < $1.id }
    }

    public func acquire(_ slug: String, node: String, incarnation: String, ttl: Duration) async throws -> LeaseGrant {
        let reply = try check(await redis.send([
            "EVAL", Self.acquireScript, "3", leaseKey(slug), fenceKey(slug), prefix + "epoch", "\(node) \(incarnation)",
            Self.milliseconds(ttl),
        ]))
        guard let items = reply.array, let kind = items.first?.string else { throw RedisError.protocolError("unexpected lease reply") }
        if kind == "granted", items.count == 2, let token = items[1].string.flatMap(Int64.init) {
            return .granted(token: token)
        }
        if kind == "settling", items.count == 2, let remaining = items[1].string.flatMap(Int64.init) {
            return .settling(remaining: .milliseconds(max(remaining, 0)))
        }
        guard items.count == 3, let holder = items[1].string.flatMap(LeaseHolder.init(encoded:)),
            let remaining = items[2].string.flatMap(Int64.init)
        else { throw RedisError.protocolError("unexpected lease reply") }
        return .held(by: holder, remaining: .milliseconds(max(remaining, 0)))
    }

    public func renew(_ slug: String, holder: LeaseHolder, ttl: Duration) async throws -> Int64? {
        let reply = try check(await redis.send([
            "EVAL", Self.renewScript, "2", leaseKey(slug), fenceKey(slug),
            "\(holder.node) \(holder.incarnation)", String(holder.token), Self.milliseconds(ttl),
        ]))
        if case .null = reply { return nil }
        guard let token = reply.string.flatMap(Int64.init) else { throw RedisError.protocolError("unexpected renew reply") }
        return token
    }

    public func renewAll(_ leases: [(slug: String, holder: LeaseHolder)], ttl: Duration) async throws -> [Int64?] {
        guard !leases.isEmpty else { return [] }
        let replies = try await redis.pipeline(leases.map { lease in
            [
                "EVAL", Self.renewScript, "2", leaseKey(lease.slug), fenceKey(lease.slug),
                "\(lease.holder.node) \(lease.holder.incarnation)", String(lease.holder.token), Self.milliseconds(ttl),
            ]
        })
        return try replies.map { reply in
            if case .null = try check(reply) { return nil }
            guard let token = reply.string.flatMap(Int64.init) else { throw RedisError.protocolError("unexpected renew reply") }
            return token
        }
    }

    public func release(_ slug: String, holder: LeaseHolder) async throws {
        try check(await redis.send(["EVAL", Self.releaseScript, "2", leaseKey(slug), fenceKey(slug), holder.encoded]))
    }

    public func holder(of slug: String) async throws -> LeaseHolder? {
        try check(await redis.send(["GET", leaseKey(slug)])).string.flatMap(LeaseHolder.init(encoded:))
    }

    public func leases() async throws -> [String: LeaseHolder] {
        let start = (prefix + "lease:").count
        var result: [String: LeaseHolder] = [:]
        for (key, value) in try await scanValues(prefix + "lease:*") {
            guard let holder = LeaseHolder(encoded: value) else { continue }
            result[String(key.dropFirst(start))] = holder
        }
        return result
    }

    public func publish(_ event: ClusterEvent) async throws {
        let payload = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        try check(await redis.send(["PUBLISH", prefix + "events", payload]))
    }

    public func events() async throws -> AsyncStream<ClusterEvent> {
        let (connection, messages) = try await redis.subscribe([prefix + "events"])
        let (stream, continuation) = AsyncStream<ClusterEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let pump = Task {
            for await message in messages {
                if let event = try? JSONDecoder().decode(ClusterEvent.self, from: Data(message.payload.utf8)) {
                    continuation.yield(event)
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            pump.cancel()
            Task { await connection.close() }
        }
        return stream
    }

    // MARK: -

    private func leaseKey(_ slug: String) -> String { prefix + "lease:" + slug }
    private func fenceKey(_ slug: String) -> String { prefix + "fence:" + slug }

    /// Every key matching `pattern` with its value (keys that expire between SCAN and MGET are
    /// left out).
    private func scanValues(_ pattern: String) async throws -> [(String, String)] {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try check(await redis.send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]))
            guard let items = reply.array, items.count == 2, let next = items[0].string, let batch = items[1].array else {
                throw RedisError.protocolError("unexpected SCAN reply")
            }
            cursor = next
            keys.append(contentsOf: batch.compactMap(\.string))
        } while cursor != "0"
        guard !keys.isEmpty else { return [] }
        var result: [(String, String)] = []
        for chunk in stride(from: 0, to: keys.count, by: 500) {
            let slice = Array(keys[chunk..<min(chunk + 500, keys.count)])
            let values = try check(await redis.send(["MGET"] + slice)).array ?? []
            for (key, value) in zip(slice, values) {
                if let text = value.string { result.append((key, text)) }
            }
        }
        return result
    }

    @discardableResult
    private func check(_ reply: RedisReply) throws -> RedisReply {
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(max(seconds * 1000 + attoseconds / 1_000_000_000_000_000, 1))
    }
}
