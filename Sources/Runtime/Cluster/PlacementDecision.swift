/// The placement rules of a tenant that this node holds no valid lease for, as pure functions of
/// what the node knows: the backend's answer, the live view and the request's hops. The
/// coordinator gathers the facts (I/O) and carries out the action; these decide, and are tested
/// without a backend.
public enum PlacementDecision {
    /// What a node knows when it decides where a tenant's request goes.
    public struct Facts: Sendable, Equatable {
        public var nodeID: String
        public var incarnation: String
        /// How often the request was forwarded already, and how often it may be.
        public var hops: Int
        public var maxHops: Int
        /// The rendezvous owner among the live members (this node included), if any.
        public var owner: ClusterMember?
        /// Live members by id, as this node sees them.
        public var view: [String: ClusterMember]
        /// Within one lease lifetime after a coordination outage: previous owners restore first.
        public var recovering: Bool

        public init(
            nodeID: String, incarnation: String, hops: Int, maxHops: Int, owner: ClusterMember?, view: [String: ClusterMember],
            recovering: Bool
        ) {
            self.nodeID = nodeID
            self.incarnation = incarnation
            self.hops = hops
            self.maxHops = maxHops
            self.owner = owner
            self.view = view
            self.recovering = recovering
        }

        var canForward: Bool { hops < maxHops }

        /// The live member that holds a lease, if that incarnation of it is still in the view.
        func liveMember(holding holder: LeaseHolder) -> ClusterMember? {
            guard let member = view[holder.node], member.incarnation == holder.incarnation else { return nil }
            return member
        }
    }

    public enum Action: Sendable, Equatable {
        /// The backend says this node (this incarnation) holds the lease its table lost: take it
        /// back as expired, so the next look renews it before serving.
        case adopt(token: Int64)
        /// Send the request to `member`; `remember` when it is both holder and owner, so the next
        /// requests skip the backend for a while.
        case forward(ClusterMember, isHolder: Bool, remember: Bool)
        /// Ask the backend for the lease.
        case acquire
        /// Look again after a pause, for the reason given.
        case wait(Duration, String)
    }

    static let poll = Duration.milliseconds(100)

    /// After the backend said who holds the lease (`holder`, nil when nobody does).
    public static func afterLookup(holder: LeaseHolder?, facts: Facts) -> Action {
        if let holder, holder.node == facts.nodeID, holder.incarnation == facts.incarnation {
            return .adopt(token: holder.token)
        }
        if let holder {
            guard let member = facts.liveMember(holding: holder) else {
                return .wait(poll, "the tenant's previous owner is gone; waiting for its lease to lapse")
            }
            if facts.hops == 0 || (facts.owner?.id != facts.nodeID && facts.canForward) {
                return .forward(member, isHolder: true, remember: facts.owner?.id == member.id)
            }
            // This node is the rightful owner and the request came through the holder (or went
            // round): the holder is handing over. Wait for its release.
            return .wait(poll, "tenant is moving between nodes")
        }
        guard let owner = facts.owner else { return .wait(poll, "this node has not joined the cluster yet") }
        if owner.id != facts.nodeID {
            return facts.canForward ? .forward(owner, isHolder: false, remember: false) : .wait(poll, "waiting for the tenant's owner to take it")
        }
        if facts.recovering { return .wait(poll, "the cluster is re-forming after a coordination outage") }
        return .acquire
    }

    /// After an acquisition the backend refused because `other` holds the lease for `remaining`.
    public static func afterRefusal(held other: LeaseHolder, remaining: Duration, facts: Facts) -> Action {
        if other.node == facts.nodeID && other.incarnation == facts.incarnation { return .wait(.zero, "raced another request of this node") }
        if let member = facts.liveMember(holding: other), facts.canForward {
            return .forward(member, isHolder: true, remember: false)
        }
        return .wait(min(max(remaining, .milliseconds(20)), poll), "waiting for the tenant's lease to lapse")
    }
}
