import Foundation

/// One node as the cluster sees it: what it announced in its last heartbeat.
public struct ClusterMember: Sendable, Equatable, Codable {
    public var id: String
    /// Differs on every start, so a restarted node with the same id is a different holder.
    public var incarnation: String
    /// Where other nodes reach this one (`http://10.0.0.5:8080`).
    public var address: String
    public var startedAt: Date
    public var lastHeartbeat: Date
    /// Requests in flight on the node at its last heartbeat.
    public var load: Int

    public init(id: String, incarnation: String, address: String, startedAt: Date, lastHeartbeat: Date, load: Int) {
        self.id = id
        self.incarnation = incarnation
        self.address = address
        self.startedAt = startedAt
        self.lastHeartbeat = lastHeartbeat
        self.load = load
    }

    func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    static func decode(_ text: String) -> ClusterMember? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try? decoder.decode(ClusterMember.self, from: Data(text.utf8))
    }
}

/// Who holds a tenant's lease, and the fencing token it was granted with.
public struct LeaseHolder: Sendable, Equatable {
    public var node: String
    public var incarnation: String
    public var token: Int64

    public init(node: String, incarnation: String, token: Int64) {
        self.node = node
        self.incarnation = incarnation
        self.token = token
    }

    /// `node incarnation token`: node ids and incarnations hold no spaces.
    var encoded: String { "\(node) \(incarnation) \(token)" }

    init?(encoded text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 3, let token = Int64(parts[2]) else { return nil }
        self.init(node: String(parts[0]), incarnation: String(parts[1]), token: token)
    }
}

/// The answer to asking for a lease.
public enum LeaseGrant: Sendable, Equatable {
    case granted(token: Int64)
    /// Someone else holds it, for about `remaining` more.
    case held(by: LeaseHolder, remaining: Duration)
    /// The backend lost its data (a Redis restart without persistence) moments ago: for
    /// `remaining` more, only the previous holders may take their leases back.
    case settling(remaining: Duration)
}

/// What nodes tell each other outside heartbeats and leases.
public struct ClusterEvent: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable {
        /// A tenant's record, keys, sources or policies changed: drop whatever is cached of it.
        case tenantChanged
        case tenantDeleted
        /// Someone joined or left: look at the membership now rather than at the next scan.
        case membershipChanged
    }
    public var kind: Kind
    public var slug: String?
    /// The node that published it (which has already acted on it).
    public var origin: String

    public init(kind: Kind, slug: String? = nil, origin: String) {
        self.kind = kind
        self.slug = slug
        self.origin = origin
    }
}
