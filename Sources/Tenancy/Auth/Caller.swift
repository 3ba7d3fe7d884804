import Runtime

/// Who is calling a tenant: the role its key or token gives, with every claim of that token.
public struct Caller: Sendable {
    /// `anon`, `authenticated`, `service_role`, or a role named by the token.
    public var role: String
    public var claims: JSONObject

    public init(role: String, claims: JSONObject) {
        self.role = role
        self.claims = claims
    }

    public var isServiceRole: Bool { role == "service_role" }
}
