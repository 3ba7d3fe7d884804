/// Where nodes meet: Redis in a cluster, memory on a single node. Both give the same guarantees to
/// the coordinator — exclusive leases with increasing fencing tokens, expiring heartbeats, and a
/// broadcast channel — so the node runs one code path in both modes.
public protocol CoordinationBackend: Sendable {
    /// Writes the member's heartbeat, expiring after `ttl` unless written again.
    func announce(_ member: ClusterMember, ttl: Duration) async throws
    /// Removes the member at once (graceful shutdown).
    func withdraw(_ member: ClusterMember) async throws
    /// Members whose heartbeat has not expired.
    func members() async throws -> [ClusterMember]

    /// Takes the tenant's lease if nobody holds it, with a new fencing token larger than any
    /// granted before for that tenant.
    func acquire(_ slug: String, node: String, incarnation: String, ttl: Duration) async throws -> LeaseGrant
    /// Extends a lease this holder still has; if the lease has lapsed and nobody took it, takes it
    /// again with a new token. Nil when someone else holds it now.
    func renew(_ slug: String, holder: LeaseHolder, ttl: Duration) async throws -> Int64?
    /// `renew` for many leases in one round trip where the backend can.
    func renewAll(_ leases: [(slug: String, holder: LeaseHolder)], ttl: Duration) async throws -> [Int64?]
    /// Gives the lease up if this holder still has it.
    func release(_ slug: String, holder: LeaseHolder) async throws
    func holder(of slug: String) async throws -> LeaseHolder?
    /// Every live lease, for the cluster view.
    func leases() async throws -> [String: LeaseHolder]

    func publish(_ event: ClusterEvent) async throws
    /// Events published by any node (this one included), until the stream ends because the
    /// backend went away; the caller subscribes again.
    func events() async throws -> AsyncStream<ClusterEvent>
}

extension CoordinationBackend {
    public func renewAll(_ leases: [(slug: String, holder: LeaseHolder)], ttl: Duration) async throws -> [Int64?] {
        var tokens: [Int64?] = []
        for lease in leases { tokens.append(try await renew(lease.slug, holder: lease.holder, ttl: ttl)) }
        return tokens
    }
}
