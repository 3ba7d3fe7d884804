import Connectors
import Foundation
import Hummingbird
import Runtime
import Tenancy

/// The routes under `{apiUrl}` = `/t/{slug}`, behind the tenant gate. The REST, auth, storage and
/// realtime surfaces hang off this group as they are built.
struct TenantAPI {
    let node: NodeServices

    func register(on router: Router<EdgeContext>) {
        let tenant = router.group("t/:slug").add(middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder))
        tenant.get("rest/v1", use: openAPIDocument)
        // Reached only when the socket was not upgraded here (the upgrade happens before routing).
        tenant.get("realtime/v1/websocket") { _, _ -> Response in
            throw APIError(status: .upgradeRequired, code: "MB800", message: "this endpoint speaks WebSocket only",
                           hint: "connect with a WebSocket client (Upgrade: websocket)", headers: [.upgrade: "websocket"])
        }
        RestAPI(node: node).register(on: tenant)
        UpstreamAPI(node: node).register(on: tenant)
        GraphQLAPI(node: node).register(on: tenant)
        let open = router.group("t/:slug/auth/v1").add(middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, requiresAPIKey: false))
        AuthAPI(node: node).register(keyed: tenant, open: open)
        StorageAPI(node: node).register(on: router)
        S3API(node: node).register(on: router)
        EmailAPI(node: node).register(on: router)
        FunctionsAPI(node: node).register(on: router)
        SearchAPI(node: node).register(on: router)
        VectorAPI(node: node).register(on: router)
    }

    /// `GET /rest/v1/`: the tenant's OpenAPI 3 document, as PostgREST serves it at its root.
    @Sendable func openAPIDocument(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let model = tree.data.sources.defaultDatabase?.model ?? SchemaModel()
        let document = TenantOpenAPIDocument(tenant: tree.tenant, restURL: node.apiURL(for: tree.slug) + "/rest/v1", model: model)
        return try await document.response()
    }
}
