import Foundation
import Hummingbird
import Runtime
import Tenancy

/// The node's own endpoints: supervisor tree, cluster view, health, readiness, metrics.
struct NodeAdminAPI {
    let node: NodeServices
    let metrics: NodeMetrics

    func registerAdmin(on group: RouterGroup<EdgeContext>) {
        group.get("supervisor", use: supervisor)
        group.get("cluster", use: cluster)
    }

    func registerPublic(on router: Router<EdgeContext>) {
        router.get("healthz") { _, _ in try jsonResponse(["status": "ok"]) }
        router.get("readyz", use: ready)
        router.get("metrics") { [metrics] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
    }

    @Sendable func supervisor(_ request: Request, context: EdgeContext) async throws -> Response {
        var tenants: [JSONValue] = []
        for tree in await node.directory.active() {
            let snapshot = await tree.snapshot()
            tenants.append(Self.json(snapshot, owner: node.configuration.nodeID))
        }
        let uptime = Date().timeIntervalSince(node.startedAt)
        let body: JSONValue = [
            "node": [
                "id": .string(node.configuration.nodeID), "mode": .string(node.configuration.mode.rawValue),
                "startedAt": .string(ISO8601DateFormatter().string(from: node.startedAt)),
                "uptimeSeconds": .number((uptime * 10).rounded() / 10), "draining": .bool(node.lifecycle.isDraining),
            ],
            "activeTenants": .integer(Int64(tenants.count)),
            "tenants": .array(tenants),
        ]
        return try jsonResponse(body)
    }

    @Sendable func cluster(_ request: Request, context: EdgeContext) async throws -> Response {
        var placements = JSONObject()
        for tree in await node.directory.active() { placements[tree.slug] = .string(node.configuration.nodeID) }
        let member: JSONValue = [
            "id": .string(node.configuration.nodeID), "address": .string(node.baseURL),
            "lastHeartbeat": .string(ISO8601DateFormatter().string(from: Date())),
        ]
        return try jsonResponse(["self": .string(node.configuration.nodeID), "members": [member], "placements": .object(placements)])
    }

    @Sendable func ready(_ request: Request, context: EdgeContext) async throws -> Response {
        if node.lifecycle.isDraining { throw APIError.shuttingDown }
        do {
            try await withTimeout(.seconds(2)) { [store = node.store] in try await store.ping() }
        } catch {
            context.logger.warning("readiness: control plane unreachable", metadata: ["error": .string("\(error)")])
            throw APIError.controlPlaneUnavailable()
        }
        return try jsonResponse(["status": "ready"])
    }

    static func json(_ snapshot: TenantSnapshot, owner: String) -> JSONValue {
        [
            "slug": .string(snapshot.slug), "owner": .string(owner), "status": .string(snapshot.status),
            "degradedReason": snapshot.degradedReason.map(JSONValue.string) ?? .null,
            "startedAt": .string(ISO8601DateFormatter().string(from: snapshot.startedAt)),
            "inFlight": .integer(Int64(snapshot.inFlight)), "queued": .integer(Int64(snapshot.queued)),
            "limits": TenantAdminAPI.limitsJSON(snapshot.limits),
            "children": .array(snapshot.children.map { child in
                [
                    "name": .string(child.name), "state": .string(child.state.rawValue),
                    "restarts": .integer(Int64(child.restarts)), "lastError": child.lastError.map(JSONValue.string) ?? .null,
                    "backoffMs": child.backoffMs.map { .integer(Int64($0)) } ?? .null,
                ]
            }),
        ]
    }
}
