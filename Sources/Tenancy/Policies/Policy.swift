import Runtime

/// One permission (DESIGN.md §3 "Policies"): for an entity, a role and an action, which columns,
/// which rows (`when`), what new rows must satisfy (`check`), and values forced from the session
/// (`set`). Several policies for the same entity, role and action are OR-ed; no policy means deny.
public struct Policy: Sendable, Equatable {
    /// `execute` names a function (RPC) instead of an entity; it takes no columns or conditions.
    public enum Action: String, Sendable, CaseIterable { case read, create, update, delete, execute }

    public var entity: String
    public var role: String
    public var action: Action
    /// nil: every column.
    public var columns: [String]?
    public var when: PolicyExpression?
    public var check: PolicyExpression?
    public var set: [(column: String, value: PolicyValue)]

    public static func == (lhs: Policy, rhs: Policy) -> Bool {
        lhs.entity == rhs.entity && lhs.role == rhs.role && lhs.action == rhs.action && lhs.columns == rhs.columns
            && lhs.when == rhs.when && lhs.check == rhs.check && lhs.set.map(\.column) == rhs.set.map(\.column)
            && lhs.set.map(\.value) == rhs.set.map(\.value)
    }
}

/// A JSON literal, or a value of the caller's session.
public enum PolicyValue: Sendable, Equatable {
    case literal(JSONValue)
    /// `auth.uid`, `auth.role`, `auth.email` or `auth.claims.<path>`.
    case variable(String)
}

public enum PolicyOperator: String, Sendable, CaseIterable {
    case eq, neq, gt, gte, lt, lte, `in`, nin, like, ilike, contains
    case isNull = "is_null"
}

public indirect enum PolicyExpression: Sendable, Equatable {
    case compare(column: String, op: PolicyOperator, value: PolicyValue)
    /// A condition on the related entity reached through `relation`.
    case related(relation: String, PolicyExpression)
    case and([PolicyExpression])
    case or([PolicyExpression])
    case not(PolicyExpression)
}

/// Why a policy document was refused, with the JSON path of the offending part.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
}

/// Reads policy documents strictly: unknown fields, operators and shapes are refused by path.
public enum PolicyParser {
    public static let maxDepth = 16
    public static let maxPolicies = 10_000

    public static func parse(document: JSONValue) throws(PolicyError) -> [Policy] {
        guard let object = document.objectValue else { throw PolicyError("$", "expected an object with a 'policies' array") }
        for key in object.keys where key != "policies" { throw PolicyError("$.\(key)", "unknown field") }
        guard let list = object["policies"]?.arrayValue else { throw PolicyError("$.policies", "expected an array") }
        guard list.count <= maxPolicies else { throw PolicyError("$.policies", "more than \(maxPolicies) policies") }
        var policies: [Policy] = []
        for (index, item) in list.enumerated() {
            policies.append(try parse(policy: item, path: "$.policies[\(index)]"))
        }
        return policies
    }

    static func parse(policy value: JSONValue, path: String) throws(PolicyError) -> Policy {
        guard let object = value.objectValue else { throw PolicyError(path, "expected an object") }
        let allowed = ["entity", "role", "action", "columns", "when", "check", "set"]
        for key in object.keys where !allowed.contains(key) { throw PolicyError("\(path).\(key)", "unknown field") }
        guard let entity = object["entity"]?.stringValue, !entity.isEmpty else { throw PolicyError("\(path).entity", "expected a name") }
        guard let role = object["role"]?.stringValue, !role.isEmpty, role.utf8.count <= 63 else {
            throw PolicyError("\(path).role", "expected a role name")
        }
        guard let actionText = object["action"]?.stringValue, let action = Policy.Action(rawValue: actionText) else {
            throw PolicyError("\(path).action", "expected one of read, create, update, delete, execute")
        }
        if action == .execute {
            for key in ["columns", "when", "check", "set"] where object[key] != nil && object[key] != .null {
                throw PolicyError("\(path).\(key)", "an execute policy names a function and a role only")
            }
        }
        var columns: [String]?
        if let value = object["columns"], value != .null {
            guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw PolicyError("\(path).columns", "expected an array of column names")
            }
            columns = list.compactMap(\.stringValue)
        }
        var when: PolicyExpression?
        if let value = object["when"], value != .null {
            // A new row has no "before": accepting `when` here and ignoring it would allow every row.
            guard action != .create else { throw PolicyError("\(path).when", "create policies restrict new rows with check, not when") }
            when = try expression(value, path: "\(path).when", depth: 0)
        }
        var check: PolicyExpression?
        if let value = object["check"], value != .null {
            guard action == .create || action == .update else { throw PolicyError("\(path).check", "only create and update policies have a check") }
            check = try expression(value, path: "\(path).check", depth: 0)
        }
        var set: [(String, PolicyValue)] = []
        if let value = object["set"], value != .null {
            guard action == .create || action == .update else { throw PolicyError("\(path).set", "only create and update policies set values") }
            guard let presets = value.objectValue else { throw PolicyError("\(path).set", "expected an object of column: value") }
            for (column, preset) in presets { set.append((column, try self.value(preset, path: "\(path).set.\(column)"))) }
        }
        return Policy(entity: entity, role: role, action: action, columns: columns, when: when, check: check, set: set)
    }

    static func expression(_ value: JSONValue, path: String, depth: Int) throws(PolicyError) -> PolicyExpression {
        guard depth < maxDepth else { throw PolicyError(path, "nested deeper than \(maxDepth) levels") }
        guard let object = value.objectValue, !object.isEmpty else { throw PolicyError(path, "expected a non-empty object") }
        var parts: [PolicyExpression] = []
        for (key, inner) in object {
            let here = "\(path).\(key)"
            switch key {
            case "and", "or":
                guard let list = inner.arrayValue, !list.isEmpty else { throw PolicyError(here, "expected a non-empty array") }
                var children: [PolicyExpression] = []
                for (index, child) in list.enumerated() { children.append(try expression(child, path: "\(here)[\(index)]", depth: depth + 1)) }
                parts.append(key == "and" ? .and(children) : .or(children))
            case "not":
                parts.append(.not(try expression(inner, path: here, depth: depth + 1)))
            default:
                guard let operators = inner.objectValue, !operators.isEmpty else { throw PolicyError(here, "expected {\"op\": value}") }
                // `{"author": {"org_id": {...}}}`: a relation when the inner keys are not operators.
                if operators.keys.contains(where: { PolicyOperator(rawValue: $0) == nil }) {
                    parts.append(.related(relation: key, try expression(inner, path: here, depth: depth + 1)))
                    continue
                }
                for (opText, operand) in operators {
                    let op = PolicyOperator(rawValue: opText)!
                    let operandValue = try self.value(operand, path: "\(here).\(opText)")
                    if op == .in || op == .nin, case .literal(let literal) = operandValue, literal.arrayValue == nil {
                        throw PolicyError("\(here).\(opText)", "expected an array")
                    }
                    if op == .isNull, case .literal(let literal) = operandValue, literal.boolValue == nil {
                        throw PolicyError("\(here).\(opText)", "expected true or false")
                    }
                    parts.append(.compare(column: key, op: op, value: operandValue))
                }
            }
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    static func value(_ value: JSONValue, path: String) throws(PolicyError) -> PolicyValue {
        if let object = value.objectValue, object.keys == ["var"] {
            guard let name = object["var"]?.stringValue,
                ["auth.uid", "auth.role", "auth.email"].contains(name) || (name.hasPrefix("auth.claims.") && name.count > 12)
            else { throw PolicyError("\(path).var", "expected auth.uid, auth.role, auth.email or auth.claims.<path>") }
            return .variable(name)
        }
        return .literal(value)
    }
}
