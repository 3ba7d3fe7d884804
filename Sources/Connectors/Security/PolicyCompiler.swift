import Runtime
import Tenancy

/// Turns the policies that apply to one entity, role and action into what the planner needs: the
/// readable or writable columns, the row rule, the check on new rows, and the preset values.
struct PolicyCompiler {
    let model: SchemaModel
    let access: Access

    struct Grant {
        /// nil: every column.
        var columns: Set<String>?
        var rows: RowRule
        var check: RowRule
        var presets: [(String, JSONValue)]
    }

    /// nil when the caller bypasses policies.
    func grant(_ entity: Entity, _ action: Policy.Action) throws(RestError) -> Grant? {
        guard !access.bypass else { return nil }
        let policies = access.policies(for: entity.name, action)
        guard !policies.isEmpty else { throw access.denied(action, entity.name) }
        var columns: Set<String>? = []
        for policy in policies {
            if let list = policy.columns { columns?.formUnion(list) } else { columns = nil }
        }
        let rows = RowRule.or(try policies.map { policy throws(RestError) in try rule(policy.when, entity) })
        let check = RowRule.or(try policies.map { policy throws(RestError) in
            try rule(policy.check ?? (action == .update ? policy.when : nil), entity)
        })
        var presets: [(String, JSONValue)] = []
        for policy in policies {
            for (column, value) in policy.set where !presets.contains(where: { $0.0 == column }) {
                presets.append((column, access.resolve(value)))
            }
        }
        return Grant(columns: columns, rows: rows, check: check, presets: presets)
    }

    func rule(_ expression: PolicyExpression?, _ entity: Entity) throws(RestError) -> RowRule {
        guard let expression else { return .always(true) }
        switch expression {
        case .compare(let name, let op, let value):
            // A policy naming a column the model no longer has denies rather than errs open.
            guard let column = entity.column(named: name) else { return .always(false) }
            return .compare(column: column, op: op, value: access.resolve(value))
        case .related(let name, let inner):
            guard let (relation, target) = model.policyRelation(name, from: entity) else { return .always(false) }
            return .related(relation, target: target, try rule(inner, target))
        case .and(let parts): return .and(try parts.map { part throws(RestError) in try rule(part, entity) })
        case .or(let parts): return .or(try parts.map { part throws(RestError) in try rule(part, entity) })
        case .not(let inner): return .not(try rule(inner, entity))
        }
    }
}

/// Checks a policy document against the models of a tenant's sources, naming what does not exist.
public enum PolicyValidator {
    public static func validate(_ policies: [Policy], models: [SchemaModel]) throws(PolicyError) {
        for (index, policy) in policies.enumerated() {
            let path = "$.policies[\(index)]"
            if policy.action == .execute {
                guard models.contains(where: { model in model.operations.contains { $0.name == policy.entity } }) else {
                    throw PolicyError("\(path).entity", "unknown function '\(policy.entity)'")
                }
                continue
            }
            guard let (model, entity) = models.lazy.compactMap({ model in model.entity(named: policy.entity).map { (model, $0) } }).first else {
                throw PolicyError("\(path).entity", "unknown entity '\(policy.entity)'")
            }
            for column in policy.columns ?? [] where entity.column(named: column) == nil {
                throw PolicyError("\(path).columns", "unknown column '\(column)' of '\(entity.name)'")
            }
            for (column, _) in policy.set where entity.column(named: column) == nil {
                throw PolicyError("\(path).set.\(column)", "unknown column '\(column)' of '\(entity.name)'")
            }
            if let when = policy.when { try check(when, entity: entity, model: model, path: "\(path).when") }
            if let condition = policy.check { try check(condition, entity: entity, model: model, path: "\(path).check") }
        }
    }

    static func check(_ expression: PolicyExpression, entity: Entity, model: SchemaModel, path: String) throws(PolicyError) {
        switch expression {
        case .compare(let column, _, _):
            guard entity.column(named: column) != nil else { throw PolicyError("\(path).\(column)", "unknown column '\(column)' of '\(entity.name)'") }
        case .related(let name, let inner):
            guard let (_, target) = model.policyRelation(name, from: entity) else {
                throw PolicyError("\(path).\(name)", "'\(name)' is neither a column nor a relation of '\(entity.name)'")
            }
            try check(inner, entity: target, model: model, path: "\(path).\(name)")
        case .and(let parts), .or(let parts):
            for part in parts { try check(part, entity: entity, model: model, path: path) }
        case .not(let inner):
            try check(inner, entity: entity, model: model, path: path)
        }
    }
}

extension SchemaModel {
    /// The relation a policy names from `entity` — by target table, foreign-key column or constraint —
    /// and the entity it leads to.
    func policyRelation(_ name: String, from entity: Entity) -> (Relation, Entity)? {
        let relation = relations(from: entity.qualifiedName).first {
            $0.to.name == name || ($0.isToOne && $0.kind != .manyToMany && $0.fromColumns == [name]) || $0.constraint == name
        }
        guard let relation, let target = entities.first(where: { $0.qualifiedName == relation.to }) else { return nil }
        return (relation, target)
    }
}
