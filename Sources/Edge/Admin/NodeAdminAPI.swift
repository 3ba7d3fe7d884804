import Foundation
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

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

    /// Every active tree, written entry by entry into one buffer: with a thousand active tenants
    /// a whole document of values built first held ~11 MB at once, which the allocator kept.
    @Sendable func supervisor(_ request: Request, context: EdgeContext) async throws -> Response {
        let trees = await node.directory.active()
        let dates = ISO8601DateFormatter()
        let uptime = Date().timeIntervalSince(node.startedAt)
        let about: JSONValue = [
            "id": .string(node.configuration.nodeID), "mode": .string(node.configuration.mode.rawValue),
            "startedAt": .string(dates.string(from: node.startedAt)),
            "uptimeSeconds": .number((uptime * 10).rounded() / 10), "draining": .bool(node.lifecycle.isDraining),
        ]
        var out: [UInt8] = []
        out.reserveCapacity(512 + trees.count * 2_048)
        out.append(contentsOf: #"{"node":"#.utf8)
        about.write(into: &out)
        out.append(contentsOf: #","activeTenants":\#(trees.count),"tenants":["#.utf8)
        for (index, tree) in trees.enumerated() {
            let snapshot = await tree.snapshot()
            var entry = Self.json(snapshot, owner: node.configuration.nodeID, dates: dates)
            if case .object(var fields) = entry {
                if let lease = node.cluster.heldLease(tree.slug) { fields["fencingToken"] = .integer(lease.token) }
                // How each source's changes reach realtime subscribers, once one has subscribed.
                let capture = snapshot.subsystems.first { $0.name == "realtime" }?.details ?? [:]
                var captured = JSONObject()
                for (source, status) in capture.sorted(by: { $0.key < $1.key }) { captured[source] = .string(status) }
                fields["changeCapture"] = .object(captured)
                entry = .object(fields)
            }
            if index > 0 { out.append(UInt8(ascii: ",")) }
            entry.write(into: &out)
        }
        out.append(contentsOf: "]}".utf8)
        return jsonResponse(bytes: out)
    }

    /// DESIGN.md's cluster view, plus what an operator needs beside it: each member's start time and
    /// load, each placement's fencing token, and whether Redis answered.
    @Sendable func cluster(_ request: Request, context: EdgeContext) async throws -> Response {
        let snapshot = await node.cluster.snapshot()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let members: [JSONValue] = snapshot.members.map { member in
            [
                "id": .string(member.id), "address": .string(member.address),
                "lastHeartbeat": .string(formatter.string(from: member.lastHeartbeat)),
                "startedAt": .string(formatter.string(from: member.startedAt)), "load": .integer(Int64(member.load)),
            ]
        }
        var placements = JSONObject()
        var tokens = JSONObject()
        for (slug, owner) in snapshot.placements { placements[slug] = .string(owner) }
        for (slug, token) in snapshot.tokens { tokens[slug] = .integer(token) }
        return try jsonResponse([
            "self": .string(node.configuration.nodeID), "members": .array(members), "placements": .object(placements),
            "fencingTokens": .object(tokens), "coordination": .string(node.configuration.redisURL == nil ? "in-process" : "redis"),
            "coordinationReachable": .bool(snapshot.backendReachable),
        ])
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

    /// One tree's entry. `dates` is shared by the caller: making a formatter per tree was most of
    /// the listing's time.
    static func json(_ snapshot: TenantSnapshot, owner: String, dates: ISO8601DateFormatter) -> JSONValue {
        [
            "slug": .string(snapshot.slug), "owner": .string(owner), "status": .string(snapshot.status),
            "degradedReason": snapshot.degradedReason.map(JSONValue.string) ?? .null,
            "startedAt": .string(dates.string(from: snapshot.startedAt)),
            "inFlight": .integer(Int64(snapshot.inFlight)), "queued": .integer(Int64(snapshot.queued)),
            "limits": TenantAdminAPI.limitsJSON(snapshot.limits),
            "children": .array(snapshot.children.map(json)),
            "subsystems": .array(snapshot.subsystems.map { subsystem in
                [
                    "name": .string(subsystem.name), "status": .string(subsystem.status),
                    "degradedReason": subsystem.degradedReason.map(JSONValue.string) ?? .null,
                    "children": .array(subsystem.children.map(json)),
                ]
            }),
        ]
    }

    static func json(_ child: ChildSnapshot) -> JSONValue {
        [
            "name": .string(child.name), "state": .string(child.state.rawValue),
            "restarts": .integer(Int64(child.restarts)), "lastError": child.lastError.map(JSONValue.string) ?? .null,
            "backoffMs": child.backoffMs.map { .integer(Int64($0)) } ?? .null,
        ]
    }
}
