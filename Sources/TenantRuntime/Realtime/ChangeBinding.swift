import Connectors
import Runtime
import Tenancy

/// One `postgres_changes` binding of a channel member: which changes it wants (event, schema,
/// table, filter, columns), from which source, and who decides what it may see.
struct ChangeBinding {
    let id: Int
    let event: String
    let schema: String
    let table: String?
    /// The table as the client sent it (`*` included): echoed back, since the client matches
    /// the reply against its own binding.
    let tableText: String?
    let filterText: String?
    let filter: ChangeFilter?
    let select: [String]?
    let source: String
    /// Who decides what this binding sees: role, every claim, and the columns asked for.
    /// Bindings with the same audience share one decision and one payload per change.
    let audience: String
    /// By entity name; built at join for a table, lazily for a whole schema.
    var authorizers: [String: ChangeAuthorizer?]

    /// A binding as the client asked for it, checked against the sources' models and the caller's
    /// policies: a table the caller may not read, or a whole schema asked for by anyone but the
    /// service role, is refused.
    init(parsing spec: JSONValue, id: Int, caller: Caller, databases: [any DatabaseSource], access: Access) throws(RestError) {
        guard case .object(let object) = spec else { throw RestError(status: 400, code: "PGRST100", message: "a binding is an object") }
        let event = (object["event"]?.stringValue ?? "*").uppercased()
        guard ["*", "INSERT", "UPDATE", "DELETE"].contains(event) else {
            throw RestError(status: 400, code: "PGRST100", message: "event must be *, INSERT, UPDATE or DELETE")
        }
        let schema = object["schema"]?.stringValue ?? "public"
        let tableText = object["table"]?.stringValue
        let table = tableText.flatMap { $0 == "*" || $0.isEmpty ? nil : $0 }
        let filterText = object["filter"]?.stringValue
        var filter: ChangeFilter?
        if let filterText {
            do { filter = try ChangeFilter(parsing: filterText) } catch { throw RestError(status: 400, code: "PGRST100", message: error.description) }
        }
        let select = object["select"]?.arrayValue?.compactMap(\.stringValue)
        guard !databases.isEmpty else {
            throw RestError(status: 404, code: "PGRST205", message: "this tenant has no database source")
        }
        let source = databases.first { source in
            source.model.entities.contains { $0.schema == schema && (table == nil || $0.name == table) }
        }
        guard let source else {
            throw RestError(status: 404, code: "PGRST205", message: "no table '\(schema).\(table ?? "*")' in the tenant's sources")
        }
        var authorizers: [String: ChangeAuthorizer?] = [:]
        if let table, let entity = source.model.entities.first(where: { $0.schema == schema && $0.name == table }) {
            authorizers[table] = try ChangeAuthorizer(
                model: source.model, entity: entity, access: access, select: select, filterColumns: filter?.columns ?? [])
        } else if !access.bypass {
            throw RestError(status: 403, code: "42501", message: "only service_role may subscribe to a whole schema; name a table")
        }
        let claims = caller.claimsText
        self.id = id
        self.event = event
        self.schema = schema
        self.table = table
        self.tableText = tableText
        self.filterText = filterText
        self.filter = filter
        self.select = select
        self.source = source.name
        self.audience = "\(caller.role)\u{0}\(claims)\u{0}\(select?.joined(separator: ",") ?? "*")\u{0}\(schema).\(table ?? "*")"
        self.authorizers = authorizers
    }

    /// Whether a change is one this binding asked for (before policies).
    func matches(_ change: ChangeEvent, source: String) -> Bool {
        guard self.source == source, schema == change.schema, table == nil || table == change.table,
            event == "*" || event == change.kind.rawValue
        else { return false }
        if let filter, !filter.matches(change.kind == .delete ? change.oldRecord : change.record) { return false }
        return true
    }

    func json() -> JSONValue {
        var object: JSONObject = ["id": .integer(Int64(id)), "event": .string(event), "schema": .string(schema)]
        if let tableText { object["table"] = .string(tableText) }
        if let filterText { object["filter"] = .string(filterText) }
        if let select { object["select"] = .array(select.map(JSONValue.string)) }
        return .object(object)
    }
}
