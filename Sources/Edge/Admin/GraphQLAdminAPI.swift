import Foundation
import Hummingbird
import Runtime
import Tenancy

/// `GET|PUT /admin/v1/tenants/{slug}/graphql`: the tenant's GraphQL settings
/// `{introspection, maxRows, maxDepth, maxCost, inflectNames}`; fields a PUT omits keep their
/// defaults (contract ../shared/contracts/graphql.md).
struct GraphQLAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/graphql", use: get)
        group.put("tenants/:slug/graphql", use: put)
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try jsonResponse(Self.view(tenant.limits.graphql))
    }

    @Sendable func put(_ request: Request, context: EdgeContext) async throws -> Response {
        var tenant = try await node.existingTenant(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(["introspection", "maxRows", "maxDepth", "maxCost", "inflectNames"])
        let base = GraphQLSettings.default
        let settings = GraphQLSettings(
            introspection: try body.bool("introspection") ?? base.introspection, maxRows: try body.int("maxRows") ?? base.maxRows,
            maxDepth: try body.int("maxDepth") ?? base.maxDepth, maxCost: try body.int("maxCost") ?? base.maxCost,
            inflectNames: try body.bool("inflectNames") ?? base.inflectNames)
        let problems = settings.problems()
        if !problems.isEmpty { throw APIError.invalidField("graphql", problems.joined(separator: "; ")) }
        tenant.limits.graphql = settings
        let audit = AuditEntry(at: Date(), actor: "admin", action: "tenant.graphql", tenant: tenant.slug, requestID: context.requestID, detail: body.object)
        guard try await node.store.updateTenant(tenant, audit: audit) else { throw APIError.tenantNotFound(tenant.slug) }
        try await node.directory.refresh(tenant.slug)
        await node.cluster.publish(.tenantChanged, slug: tenant.slug)
        return try jsonResponse(Self.view(settings))
    }

    static func view(_ settings: GraphQLSettings) -> JSONValue {
        [
            "introspection": .bool(settings.introspection), "maxRows": .integer(Int64(settings.maxRows)),
            "maxDepth": .integer(Int64(settings.maxDepth)), "maxCost": .integer(Int64(settings.maxCost)),
            "inflectNames": .bool(settings.inflectNames),
        ]
    }
}
