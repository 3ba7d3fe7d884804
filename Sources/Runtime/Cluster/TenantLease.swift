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

    /// Whether a request may be served under this lease now. `lenient` is set while the
    /// coordination backend is unreachable: nobody can take a lease then, so the owner keeps
    /// serving what it holds rather than the whole cluster going dark.
    func isServable(at now: ContinuousClock.Instant, lenient: Bool) -> Bool {
        lock.withLock { !lost && !handingOver && (now < validUntil || lenient) }
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
