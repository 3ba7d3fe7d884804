import Connectors
import Foundation
import Hummingbird
import Runtime
import Search
import Tenancy
import TenantRuntime

/// `GET|POST /admin/v1/tenants/{slug}/search/indexes` and `DELETE …/{uid}`: search indexes managed
/// with the admin token, on any node. The definition is checked against the tenant's stored
/// source models and stored; then the tenant's tree restarts wherever it runs and builds the index
/// (the answer names the uid; `GET {apiUrl}/search/v1/indexes/{uid}/stats` shows the build).
struct SearchAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/search/indexes", use: list)
        group.post("tenants/:slug/search/indexes", use: create)
        group.delete("tenants/:slug/search/indexes/:uid", use: delete)
    }

    static func view(_ record: SearchIndexRecord) -> JSONValue {
        ["uid": .string(record.uid), "source": .string(record.source), "entity": .string(record.entity), "primaryKey": .string(record.primaryKey),
         "createdAt": .string(SearchTasks.timestamp(record.createdAt)), "settings": .object(record.settings)]
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try jsonResponse(["indexes": .array(try await node.store.searchIndexes(tenant: tenant.slug).map(Self.view))])
    }

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(["uid", "source", "entity", "primaryKey"])
        guard let uid = try body.string("uid") else { throw APIError.invalidField("uid", "required") }
        do {
            guard SearchSubsystem.validUID(uid) else {
                throw SearchError.badRequest("invalid_index_uid", "`\(uid)` is not a valid index uid: alphanumeric characters, hyphens and underscores, at most 400 bytes")
            }
            let sources = try await node.store.sources(tenant.slug)
            let sourceName = try body.string("source")
            guard let source = sourceName.map({ name in sources.first { $0.name == name } }) ?? sources.first(where: { $0.name == "default" }) ?? sources.first else {
                throw SearchError(status: 404, code: "MB880", message: "source '\(sourceName ?? "default")' does not exist")
            }
            let entityName = try body.string("entity") ?? uid
            guard let entity = SourceCatalog.model(of: source).entity(named: entityName) else {
                throw SearchError(status: 404, code: "MB880", message: "entity '\(entityName)' does not exist in source '\(source.name)'")
            }
            let key = try SearchSubsystem.primaryKey(try body.string("primaryKey"), of: entity)
            let record = SearchIndexRecord(
                tenant: tenant.slug, uid: uid, source: source.name, entity: entity.name, primaryKey: key, settings: IndexSettings().json,
                createdAt: Date(), updatedAt: Date())
            do {
                try await node.store.createSearchIndex(record)
            } catch ControlPlaneError.duplicate {
                throw SearchError.indexExists(uid)
            }
            await node.tenantChanged(tenant.slug)
            return try jsonResponse(Self.view(record), status: .created)
        } catch let error as SearchError {
            throw SearchAPI.apiError(error)
        }
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let uid = context.name("uid") ?? ""
        guard try await node.store.deleteSearchIndex(tenant: tenant.slug, uid: uid) else { throw SearchAPI.apiError(.indexNotFound(uid)) }
        await node.tenantChanged(tenant.slug)
        return Response(status: .noContent)
    }
}
