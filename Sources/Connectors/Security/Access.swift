import Runtime
import Tenancy

/// Who is asking and what the tenant's policies let them do. `service_role` bypasses policies;
/// every other role is denied whatever no policy allows.
public struct Access: Sendable {
    public let role: String
    public let claims: JSONObject
    public let policies: [Policy]

    public init(role: String, claims: JSONObject, policies: [Policy]) {
        self.role = role
        self.claims = claims
        self.policies = policies
    }

    public static let service = Access(role: "service_role", claims: [:], policies: [])

    public var bypass: Bool { role == "service_role" }

    func policies(for entity: String, _ action: Policy.Action) -> [Policy] {
        policies.filter { $0.entity == entity && $0.role == role && $0.action == action }
    }

    /// A session value: `auth.uid` (the `sub` claim), `auth.role`, `auth.email`, `auth.claims.<path>`.
    /// A value the session does not have is null, which matches nothing.
    func resolve(_ value: PolicyValue) -> JSONValue {
        switch value {
        case .literal(let literal): return literal
        case .variable(let name):
            switch name {
            case "auth.uid": return claims["sub"] ?? .null
            case "auth.role": return .string(role)
            case "auth.email": return claims["email"] ?? .null
            default:
                var current: JSONValue = .object(claims)
                for key in name.dropFirst("auth.claims.".count).split(separator: ".") {
                    guard let next = current[String(key)] else { return .null }
                    current = next
                }
                return current
            }
        }
    }

    /// The refusal for an action no policy allows: 401 for anonymous callers, 403 otherwise.
    func denied(_ action: Policy.Action, _ entity: String) -> RestError {
        RestError(
            status: role == "anon" ? 401 : 403, code: "42501", message: "permission denied: no \(action.rawValue) policy on '\(entity)' for role \(role)")
    }

    func deniedColumn(_ column: String, _ entity: String, _ action: Policy.Action) -> RestError {
        RestError(
            status: role == "anon" ? 401 : 403, code: "42501",
            message: "permission denied: column '\(column)' of '\(entity)' is not allowed to \(action.rawValue) for role \(role)")
    }
}

/// A policy condition resolved against the model and the session: columns are the entity's,
/// relations are resolved, variables are values.
public indirect enum RowRule: Sendable {
    case always(Bool)
    case compare(column: Column, op: PolicyOperator, value: JSONValue)
    case related(Relation, target: Entity, RowRule)
    case and([RowRule])
    case or([RowRule])
    case not(RowRule)
}
