import Runtime
import Tenancy

/// What a generated schema (GraphQL, per role) may show of an entity for one action.
public struct EntityGrant: Sendable {
    /// nil: every column.
    public var columns: Set<String>?
    /// Whether the policies' `when` can hide rows (then a to-one field to it may be null).
    public var restrictsRows: Bool

    public func allows(_ column: String) -> Bool { columns?.contains(column) ?? true }
}

extension Access {
    /// The caller's grant for `action` on `entity`, or nil when no policy allows it at all.
    public func grant(_ action: Policy.Action, on entity: Entity, in model: SchemaModel) -> EntityGrant? {
        let compiler = PolicyCompiler(model: model, access: self)
        let grant: PolicyCompiler.Grant??
        do { grant = .some(try compiler.grant(entity, action)) } catch { grant = .none }
        guard let found = grant else { return nil }
        guard let compiled = found else { return EntityGrant(columns: nil, restrictsRows: false) }
        return EntityGrant(columns: compiled.columns, restrictsRows: !compiled.rows.isAlwaysTrue)
    }
}

extension Access {
    /// Whether the caller may call the function `operation` (an `execute` policy, or the service role).
    public func mayExecute(_ operation: String) -> Bool {
        bypass || !policies(for: operation, .execute).isEmpty
    }
}

extension RowRule {
    var isAlwaysTrue: Bool {
        switch self {
        case .always(let value): value
        case .and(let parts): parts.allSatisfy(\.isAlwaysTrue)
        case .or(let parts): parts.contains(where: \.isAlwaysTrue)
        case .compare, .related, .not: false
        }
    }
}
