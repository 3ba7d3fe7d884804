import Runtime

/// Who is calling a tenant: the role its key or token gives, with every claim of that token.
public struct Caller: Sendable {
    /// `anon`, `authenticated`, `service_role`, or a role named by the token.
    public var role: String
    public var claims: JSONObject {
        didSet { claimsKey = nil }
    }
    /// The claims spelled out once (`VerifiedClaims.key`) when they came from a verified token:
    /// the read cache keys entries by every claim, and encoding them on every read was ~2 % of a
    /// cached read. Forgotten whenever `claims` changes.
    public private(set) var claimsKey: String?

    public init(role: String, claims: JSONObject, claimsKey: String? = nil) {
        self.role = role
        self.claims = claims
        self.claimsKey = claimsKey
    }

    /// `claimsKey`, or the same text made now.
    public var claimsText: String { claimsKey ?? VerifiedClaims.key(of: claims) }

    public var isServiceRole: Bool { role == "service_role" }
}
