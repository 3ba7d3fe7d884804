import Connectors
import Foundation
import Storage
import Hummingbird
import Runtime
import Tenancy

/// `GET|PUT /admin/v1/tenants/{slug}/policies`: a PUT replaces the whole set at once, after checking
/// it against the tenant's model; the tenant's tree restarts to apply it.
struct PolicyAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/policies", use: get)
        group.put("tenants/:slug/policies", use: put)
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let document = try await node.store.policies(slug)
        let value = document.flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? ["policies": []]
        return try jsonResponse(value)
    }

    @Sendable func put(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let body = try await JSONBody.read(request, maxBytes: 4 << 20)
        let document = JSONValue.object(body.object)
        let policies: [Policy]
        do {
            policies = try PolicyParser.parse(document: document)
            // Vector indexes are policy entities too (`vectors:{name}`), without columns.
            let vectors = SchemaModel(entities: try await node.store.vectorIndexes(tenant: slug).map {
                Entity(schema: "vectors", name: "vectors:\($0.name)", kind: .collection, columns: [])
            })
            try PolicyValidator.validate(policies, models: try await node.store.sources(slug).map(SourceCatalog.model(of:)) + [StorageEntities.model, vectors])
        } catch let error as PolicyError {
            throw APIError(status: .badRequest, code: "MB106", message: "invalid policy: \(error.message)", details: error.path)
        }
        let audit = AuditEntry(
            at: Date(), actor: "admin", action: "policies.replace", tenant: slug, requestID: context.requestID,
            detail: ["count": .integer(Int64(policies.count))])
        guard try await node.store.setPolicies(slug, document: document.jsonString, audit: audit) else { throw APIError.tenantNotFound(slug) }
        await node.tenantChanged(slug)
        return try jsonResponse(document)
    }
}
