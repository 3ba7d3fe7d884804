import Hummingbird
import Runtime

/// `/admin/v1/stacks/{name}`: what `minibaas apply` last applied from one stack file — the tenants
/// and sources it manages, with digests of their specs (never the specs: they hold secrets). Like
/// Terraform's state, it is how `--prune` destroys only what this stack created and how a changed
/// secret is noticed without the node ever returning it. Bookkeeping, not configuration: writing
/// it changes nothing a tenant serves, so it leaves no audit entry.
struct StackAdminAPI {
    let node: NodeServices

    static let maxBytes = 1 << 20

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("stacks/:name", use: get)
        group.put("stacks/:name", use: put)
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let name = try Self.name(context)
        guard let stored = try await node.store.setting(Self.key(name)), let state = try? JSONValue.parse(Array(stored.utf8)) else {
            return try jsonResponse(["name": .string(name), "state": ["tenants": [:]]])
        }
        return try jsonResponse(["name": .string(name), "state": state])
    }

    @Sendable func put(_ request: Request, context: EdgeContext) async throws -> Response {
        let name = try Self.name(context)
        let body = try await JSONBody.read(request, maxBytes: Self.maxBytes)
        try body.allowOnly(["state"])
        guard let state = try body.object("state"), case .object? = state["tenants"] else {
            throw APIError.invalidField("state", "expected an object with a 'tenants' object")
        }
        try await node.store.setSetting(Self.key(name), to: JSONValue.object(state).jsonString)
        return try jsonResponse(["name": .string(name), "state": .object(state)])
    }

    private static func key(_ name: String) -> String { "stack:" + name }

    private static func name(_ context: EdgeContext) throws -> String {
        let name = context.parameters.get("name") ?? ""
        guard name.wholeMatch(of: /^[a-z0-9][a-z0-9_-]{0,62}$/) != nil else {
            throw APIError.invalidField("name", "a stack name is 1-63 characters of a-z, 0-9, '_' and '-'")
        }
        return name
    }
}
