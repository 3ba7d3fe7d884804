import Foundation

/// The in-process backend of a node that runs alone: the same lease and fencing rules as Redis,
/// kept in memory.
public actor LocalCoordinationBackend: CoordinationBackend {
    private struct Lease {
        var holder: LeaseHolder
        var expires: ContinuousClock.Instant
    }

    private var heartbeats: [String: (member: ClusterMember, expires: ContinuousClock.Instant)] = [:]
    private var leaseTable: [String: Lease] = [:]
    private var lastToken: [String: Int64] = [:]
    private var subscribers: [UInt64: AsyncStream<ClusterEvent>.Continuation] = [:]
    private var nextSubscriber: UInt64 = 0

    public init() {}

    public func announce(_ member: ClusterMember, ttl: Duration) {
        heartbeats[member.id] = (member, .now + ttl)
    }

    public func withdraw(_ member: ClusterMember) {
        if heartbeats[member.id]?.member.incarnation == member.incarnation { heartbeats[member.id] = nil }
    }

    public func members() -> [ClusterMember] {
        let now = ContinuousClock.now
        return heartbeats.values.filter { $0.expires > now }.map(\.member).sorted { $0.id < $1.id }
    }

    public func acquire(_ slug: String, node: String, incarnation: String, ttl: Duration) -> LeaseGrant {
        let now = ContinuousClock.now
        if let lease = leaseTable[slug], lease.expires > now {
            return .held(by: lease.holder, remaining: lease.expires - now)
        }
        let token = nextToken(slug)
        leaseTable[slug] = Lease(holder: LeaseHolder(node: node, incarnation: incarnation, token: token), expires: now + ttl)
        return .granted(token: token)
    }

    public func renew(_ slug: String, holder: LeaseHolder, ttl: Duration) -> Int64? {
        let now = ContinuousClock.now
        if let lease = leaseTable[slug], lease.expires > now {
            guard lease.holder.node == holder.node, lease.holder.incarnation == holder.incarnation else { return nil }
            leaseTable[slug]?.expires = now + ttl
            return lease.holder.token
        }
        // Lapsed: taken back only if nobody was granted it since.
        guard lastToken[slug] == nil || lastToken[slug] == holder.token else { return nil }
        let token = nextToken(slug)
        leaseTable[slug] = Lease(holder: LeaseHolder(node: holder.node, incarnation: holder.incarnation, token: token), expires: now + ttl)
        return token
    }

    public func release(_ slug: String, holder: LeaseHolder) {
        guard let lease = leaseTable[slug], lease.expires > .now, lease.holder == holder else { return }
        leaseTable[slug] = nil
        _ = nextToken(slug)
    }

    public func holder(of slug: String) -> LeaseHolder? {
        guard let lease = leaseTable[slug], lease.expires > .now else { return nil }
        return lease.holder
    }

    public func leases() -> [String: LeaseHolder] {
        let now = ContinuousClock.now
        return leaseTable.filter { $0.value.expires > now }.mapValues(\.holder)
    }

    public func publish(_ event: ClusterEvent) {
        for continuation in subscribers.values { continuation.yield(event) }
    }

    public func events() -> AsyncStream<ClusterEvent> {
        let (stream, continuation) = AsyncStream<ClusterEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = nextSubscriber
        nextSubscriber += 1
        subscribers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unsubscribe(id) }
        }
        return stream
    }

    private func unsubscribe(_ id: UInt64) {
        subscribers[id] = nil
    }

    /// At least the wall clock in microseconds, as Redis's are: a node restarted on the same data
    /// directory grants larger tokens than before, so claims its previous run left are older.
    private func nextToken(_ slug: String) -> Int64 {
        let token = max((lastToken[slug] ?? 0) + 1, Int64(Date().timeIntervalSince1970 * 1_000_000))
        lastToken[slug] = token
        return token
    }
}
