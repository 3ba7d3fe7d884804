import Runtime
import Tenancy

extension Access {
    /// Which image of a row a decision reads: the row as it is (`when`), or the row an action
    /// would leave (`check`; for updates without one, `when` again, as for tables).
    public enum RowImage: Sendable { case existing, new }

    /// For rows that live outside any data source (storage's objects and buckets): whether the
    /// caller's policies let `action` touch `row`. Throws the refusal when no policy names this
    /// entity, role and action at all. `service_role` is always allowed.
    public func permits(_ action: Policy.Action, on entity: Entity, row: JSONObject, image: RowImage) throws(RestError) -> Bool {
        let compiler = PolicyCompiler(model: SchemaModel(entities: [entity]), access: self)
        guard let grant = try compiler.grant(entity, action) else { return true }
        // Unknown (null operands) denies, as a WHERE clause would.
        return ChangeAuthorizer.evaluate(image == .existing ? grant.rows : grant.check, row) == true
    }
}
