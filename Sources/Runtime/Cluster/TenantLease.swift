/// This node's lease on one tenant, read by every request of that tenant without an actor hop.
public final class TenantLease: @unchecked Sendable {
    public let slug: String
    public let node: String
    public let incarnation: String
    private let lock = Lock()
    private var currentToken: Int64
    private var validUntil: ContinuousClock.Instant
    private var handingOver = false
    private var lost = false

    init(slug: String, node: String, incarnation: String, token: Int64, validUntil: ContinuousClock.Instant) {
        self.slug = slug
        self.node = node
        self.incarnation = incarnation
        self.currentToken = token
        self.validUntil = validUntil
    }

    /// The fencing token: every write served under this lease carries it, and a later owner's
    /// tokens are always larger.
    public var token: Int64 { lock.withLock { currentToken } }

    var holder: LeaseHolder { lock.withLock { LeaseHolder(node: node, incarnation: incarnation, token: currentToken) } }

    /// Whether a request may be served under this lease now. While the coordination backend is
    /// unreachable (`outage`), a lease that was valid when the outage began stays servable for
    /// the outage grace: nobody can take a lease from an unreachable Redis, so the owner keeps
    /// serving rather than the whole cluster going dark.
    func isServable(at now: ContinuousClock.Instant, outage: Outage?) -> Bool {
        lock.withLock { !lost && !handingOver && Self.valid(now, validUntil, outage) }
    }

    /// Like `isServable`, but a lease being handed over still serves the requests it admitted.
    func stillValid(at now: ContinuousClock.Instant, outage: Outage?) -> Bool {
        lock.withLock { !lost && Self.valid(now, validUntil, outage) }
    }

    private static func valid(_ now: ContinuousClock.Instant, _ validUntil: ContinuousClock.Instant, _ outage: Outage?) -> Bool {
        if now < validUntil { return true }
        guard let outage else { return false }
        return validUntil > outage.since && now < outage.since + outage.grace
    }

    var isHandingOver: Bool { lock.withLock { handingOver } }
    var isLost: Bool { lock.withLock { lost } }

    /// Seconds left on the lease as this node counts them (for the supervisor view).
    var remaining: Duration { lock.withLock { validUntil - .now } }

    func renewed(token: Int64, until: ContinuousClock.Instant) {
        lock.withLock {
            currentToken = token
            validUntil = until
        }
    }

    func beginHandOver() { lock.withLock { handingOver = true } }
    func markLost() { lock.withLock { lost = true } }
}

/// A coordination outage as this node sees it: since when, and how long leases held at its start
/// keep serving.
struct Outage: Sendable {
    var since: ContinuousClock.Instant
    var grace: Duration
}
