import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Runtime
import Tenancy
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

final class AdminAPITests: XCTestCase {
    func testAdminRoutesNeedTheAdminToken() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "Basic \(node.adminToken)"], [.authorization: "Bearer"]] {
                let reply = try await client.call(.get, "/admin/v1/tenants", headers: headers)
                XCTAssertEqual(reply.status, .unauthorized)
                XCTAssertEqual(reply.code, "MB200")
                XCTAssertEqual(Set(reply.json?.objectValue?.keys ?? []), ["code", "message", "details", "hint"])
            }
            let ok = try await client.call(.get, "/admin/v1/tenants", headers: node.adminHeaders)
            XCTAssertEqual(ok.status, .ok)
            XCTAssertEqual(ok.json, [])
        }
    }

    func testCreateReadListDelete() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let created = try await client.call(.post, "/admin/v1/tenants", headers: node.adminHeaders, json: ["slug": "acme", "name": "Acme Inc"])
            XCTAssertEqual(created.status, .created)
            let body = try XCTUnwrap(created.json)
            XCTAssertEqual(body["slug"], "acme")
            XCTAssertEqual(body["name"], "Acme Inc")
            XCTAssertEqual(body["apiUrl"]?.stringValue?.hasSuffix("/t/acme"), true)
            let anon = try XCTUnwrap(body["anonKey"]?.stringValue)
            let service = try XCTUnwrap(body["serviceKey"]?.stringValue)

            let fetched = try await client.call(.get, "/admin/v1/tenants/acme", headers: node.adminHeaders)
            XCTAssertEqual(fetched.json?["anonKey"]?.stringValue, anon, "keys are stable")
            XCTAssertEqual(fetched.json?["serviceKey"]?.stringValue, service)

            let ring = try await node.services.directory.keyRing(for: "acme")
            XCTAssertEqual(try ring.verify(anon)["role"], "anon")
            XCTAssertEqual(try ring.verify(service)["role"], "service_role")

            let list = try await client.call(.get, "/admin/v1/tenants", headers: node.adminHeaders)
            XCTAssertEqual(list.json?.arrayValue?.compactMap { $0["slug"]?.stringValue }, ["acme"])
            XCTAssertNil(list.json?.arrayValue?.first?["serviceKey"], "the list does not spray keys around")

            let tenantCall = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: service])
            XCTAssertEqual(tenantCall.status, .ok)

            let deleted = try await client.call(.delete, "/admin/v1/tenants/acme", headers: node.adminHeaders)
            XCTAssertEqual(deleted.status, .noContent)
            let again = try await client.call(.delete, "/admin/v1/tenants/acme", headers: node.adminHeaders)
            XCTAssertEqual(again.code, "MB300")
            let gone = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: service])
            XCTAssertEqual(gone.status, .notFound)
            XCTAssertEqual(gone.code, "MB300")
            let active = await node.services.directory.activeCount
            XCTAssertEqual(active, 0, "deleting stops the tenant's tree")
            try await assertEqual(try await node.services.store.jwtSecrets("acme").count, 0)
            let audit = try await client.call(.get, "/admin/v1/audit?tenant=acme", headers: node.adminHeaders)
            XCTAssertEqual(audit.json?.arrayValue?.compactMap { $0["action"]?.stringValue }, ["tenant.delete", "tenant.create"])
        }
    }

    func testBadInputGetsAStableCodeAndChangesNothing() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let cases: [(String, String?, String, HTTPResponse.Status)] = [
                ("{\"slug\":", "application/json", "MB100", .badRequest),
                ("[1,2]", "application/json", "MB100", .badRequest),
                ("", "application/json", "MB100", .badRequest),
                ("{\"slug\":\"acme\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"Acme\",\"name\":\"x\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"a\",\"name\":\"x\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"\(String(repeating: "a", count: 41))\",\"name\":\"x\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":42,\"name\":\"x\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"acme\",\"name\":\"\"}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"acme\",\"name\":\"x\",\"owner\":\"me\"}", "application/json", "MB102", .badRequest),
                ("{\"slug\":\"acme\",\"name\":\"x\",\"limits\":{\"burst\":0}}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"acme\",\"name\":\"x\",\"limits\":{\"burst\":\"many\"}}", "application/json", "MB101", .badRequest),
                ("{\"slug\":\"acme\",\"name\":\"x\",\"limits\":{\"speed\":1}}", "application/json", "MB102", .badRequest),
                ("slug=acme", "application/x-www-form-urlencoded", "MB104", .unsupportedMediaType),
                ("{\"slug\":\"acme\",\"name\":\"\(String(repeating: "x", count: 2 << 20))\"}", "application/json", "MB103", .contentTooLarge),
            ]
            for (body, type, code, status) in cases {
                var headers: HTTPFields = [.authorization: "Bearer \(node.adminToken)"]
                if let type { headers[.contentType] = type }
                let reply = try await client.call(.post, "/admin/v1/tenants", headers: headers, raw: body)
                XCTAssertEqual(reply.status, status, body.prefix(60).description)
                XCTAssertEqual(reply.code, code, "\(body.prefix(60)): \(String(buffer: reply.body))")
                XCTAssertNotNil(reply.json?["message"]?.stringValue)
            }
            let list = try await client.call(.get, "/admin/v1/tenants", headers: node.adminHeaders)
            XCTAssertEqual(list.json, [], "nothing was written by any refused request")
        }
    }

    func testDuplicateSlugIsAConflict() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            _ = try await client.createTenant(node, "acme")
            let again = try await client.call(.post, "/admin/v1/tenants", headers: node.adminHeaders, json: ["slug": "acme", "name": "Other"])
            XCTAssertEqual(again.status, .conflict)
            XCTAssertEqual(again.code, "MB301")
            let fetched = try await client.call(.get, "/admin/v1/tenants/acme", headers: node.adminHeaders)
            XCTAssertEqual(fetched.json?["name"], "Acme", "the first tenant is untouched")
        }
    }

    func testUnknownTenantAndRoute() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let missing = try await client.call(.get, "/admin/v1/tenants/ghost", headers: node.adminHeaders)
            XCTAssertEqual(missing.status, .notFound)
            XCTAssertEqual(missing.code, "MB300")
            let badSlug = try await client.call(.get, "/admin/v1/tenants/NOT_A_SLUG", headers: node.adminHeaders)
            XCTAssertEqual(badSlug.code, "MB300")
            let route = try await client.call(.get, "/nowhere")
            XCTAssertEqual(route.status, .notFound)
            XCTAssertEqual(route.code, "MB002")
        }
    }

    func testPatchChangesLimitsAndStatus() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "acme")
            // Start the tree, so the change must reach a running tenant.
            _ = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: keys.anon])
            let patched = try await client.call(
                .patch, "/admin/v1/tenants/acme", headers: node.adminHeaders,
                json: ["limits": ["maxConcurrent": 2, "requestTimeoutMs": 2000], "name": "Acme 2"])
            XCTAssertEqual(patched.status, .ok)
            XCTAssertEqual(patched.json?["limits"]?["maxConcurrent"], 2)
            XCTAssertEqual(patched.json?["limits"]?["burst"], .integer(Int64(TenantLimits.default.burst)), "unnamed limits keep their values")
            let tree = try await XCTUnwrapAsync(try await node.services.directory.tree(for: "acme"))
            XCTAssertEqual(tree.gate.limits.maxConcurrent, 2)
            XCTAssertEqual(tree.tenant.name, "Acme 2")

            let disabled = try await client.call(.patch, "/admin/v1/tenants/acme", headers: node.adminHeaders, json: ["status": "disabled"])
            XCTAssertEqual(disabled.status, .ok)
            let refused = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: keys.anon])
            XCTAssertEqual(refused.status, .forbidden)
            XCTAssertEqual(refused.code, "MB302")
            let bad = try await client.call(.patch, "/admin/v1/tenants/acme", headers: node.adminHeaders, json: ["status": "paused"])
            XCTAssertEqual(bad.code, "MB101")
        }
    }

    func testSupervisorEndpointShowsTreesAndDegradedTenants() async throws {
        let node = try await TestNode.make { $0.intensity = RestartIntensity(maxRestarts: 2, window: .seconds(30)) }
        try await node.application().test(.router) { client in
            let healthy = try await client.createTenant(node, "healthy")
            let broken = try await client.createTenant(node, "broken")
            _ = try await client.call(.get, "/t/healthy/rest/v1/", headers: [.apikey: healthy.anon])
            _ = try await client.call(.get, "/t/broken/rest/v1/", headers: [.apikey: broken.anon])
            let tree = try await XCTUnwrapAsync(try await node.services.directory.tree(for: "broken"))
            await tree.data.supervisor.start(ChildSpec(name: "connector") { throw CocoaError(.fileReadNoPermission) })
            let degraded = await waitUntil { tree.health == .degraded }
            XCTAssertTrue(degraded)
            let reply = try await client.call(.get, "/admin/v1/supervisor", headers: node.adminHeaders)
            let tenants = try XCTUnwrap(reply.json?["tenants"]?.arrayValue)
            XCTAssertEqual(reply.json?["node"]?["id"]?.stringValue, node.services.configuration.nodeID)
            XCTAssertNotNil(reply.json?["node"]?["uptimeSeconds"]?.doubleValue)
            let bySlug = Dictionary(uniqueKeysWithValues: tenants.compactMap { t in t["slug"]?.stringValue.map { ($0, t) } })
            XCTAssertEqual(bySlug["healthy"]?["status"], "running")
            XCTAssertEqual(bySlug["broken"]?["status"], "degraded")
            XCTAssertTrue(bySlug["broken"]?["degradedReason"]?.stringValue?.contains("connector") ?? false)
            let data = bySlug["broken"]?["subsystems"]?.arrayValue?.first { $0["name"] == "data" }
            XCTAssertEqual(data?["status"], "degraded")
            XCTAssertEqual(
                bySlug["broken"]?["subsystems"]?.arrayValue?.first { $0["name"] == "realtime" }?["status"], "running",
                "only the failing subsystem is degraded")
            let connector = data?["children"]?.arrayValue?.first { $0["name"] == "connector" }
            XCTAssertEqual(connector?["state"], "failed")
            XCTAssertEqual(connector?["restarts"], 3)
            XCTAssertNotNil(connector?["lastError"]?.stringValue)

            let restart = try await client.call(.post, "/admin/v1/tenants/healthy/restart", headers: node.adminHeaders)
            XCTAssertEqual(restart.status, .ok)
            let cluster = try await client.call(.get, "/admin/v1/cluster", headers: node.adminHeaders)
            XCTAssertEqual(cluster.json?["self"]?.stringValue, node.services.configuration.nodeID)
            XCTAssertEqual(cluster.json?["members"]?.arrayValue?.count, 1)
            XCTAssertEqual(cluster.json?["placements"]?["broken"]?.stringValue, node.services.configuration.nodeID)
        }
    }

    func testHealthReadinessAndMetrics() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "metered")
            _ = try await client.call(.get, "/t/metered/rest/v1/", headers: [.apikey: keys.anon])
            let health = try await client.call(.get, "/healthz")
            XCTAssertEqual(health.json, ["status": "ok"])
            let ready = try await client.call(.get, "/readyz")
            XCTAssertEqual(ready.status, .ok)
            let metrics = try await client.call(.get, "/metrics")
            let text = String(buffer: metrics.body)
            XCTAssertTrue(text.contains(#"minibaas_http_requests_total{tenant="metered",route="/t/{slug}/rest/v1",method="GET",status="200"}"#), text)
            XCTAssertTrue(text.contains("minibaas_http_request_duration_seconds_bucket"))
            XCTAssertTrue(text.contains("minibaas_active_tenants"))
            node.services.lifecycle.beginDraining()
            let draining = try await client.call(.get, "/readyz")
            XCTAssertEqual(draining.status, .serviceUnavailable)
        }
    }

    func testRequestIDsAreEchoedOrMinted() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let given = try await client.call(.get, "/healthz", headers: [.requestID: "abc-123"])
            XCTAssertEqual(given.headers[.requestID], "abc-123")
            let minted = try await client.call(.get, "/healthz", headers: [.requestID: "bad id\" with quotes"])
            XCTAssertNotEqual(minted.headers[.requestID], "bad id\" with quotes")
            XCTAssertFalse((minted.headers[.requestID] ?? "").isEmpty)
        }
    }
}

func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let resolved = try await value()
    return try XCTUnwrap(resolved, file: file, line: line)
}

extension AdminAPITests {
    func testKeyRotationKeepsOldTokensUntilRevoked() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let old = try await client.createTenant(node, "acme")
            let listed = try await client.call(.get, "/admin/v1/tenants/acme/keys", headers: node.adminHeaders)
            let oldKid = try XCTUnwrap(listed.json?.arrayValue?.first?["kid"]?.stringValue)

            let rotated = try await client.call(.post, "/admin/v1/tenants/acme/keys/rotate", headers: node.adminHeaders)
            XCTAssertEqual(rotated.status, .created)
            let newAnon = try XCTUnwrap(rotated.json?["anonKey"]?.stringValue)
            XCTAssertNotEqual(newAnon, old.anon)
            let fetched = try await client.call(.get, "/admin/v1/tenants/acme", headers: node.adminHeaders)
            XCTAssertEqual(fetched.json?["anonKey"]?.stringValue, newAnon, "new keys are signed with the newest secret")

            for key in [old.anon, newAnon] {
                let reply = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: key])
                XCTAssertEqual(reply.status, .ok, "both secrets verify during rotation")
            }
            let refused = try await client.call(.delete, "/admin/v1/tenants/acme/keys/\(rotated.json?["kid"]?.stringValue ?? "")", headers: node.adminHeaders)
            XCTAssertEqual(refused.status, .noContent, "revoking the new one is allowed while the old is active")
            let back = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: newAnon])
            XCTAssertEqual(back.status, .unauthorized, "a revoked secret no longer verifies")

            let again = try await client.call(.post, "/admin/v1/tenants/acme/keys/rotate", headers: node.adminHeaders)
            let latest = try XCTUnwrap(again.json?["anonKey"]?.stringValue)
            let revokeOld = try await client.call(.delete, "/admin/v1/tenants/acme/keys/\(oldKid)", headers: node.adminHeaders)
            XCTAssertEqual(revokeOld.status, .noContent)
            let oldRefused = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: old.anon])
            XCTAssertEqual(oldRefused.status, .unauthorized)
            XCTAssertEqual(oldRefused.code, "PGRST301")
            let latestOK = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: latest])
            XCTAssertEqual(latestOK.status, .ok)

            let last = try await client.call(.delete, "/admin/v1/tenants/acme/keys/\(again.json?["kid"]?.stringValue ?? "")", headers: node.adminHeaders)
            XCTAssertEqual(last.status, .conflict)
            XCTAssertEqual(last.code, "MB305")
            let unknown = try await client.call(.delete, "/admin/v1/tenants/acme/keys/nope", headers: node.adminHeaders)
            XCTAssertEqual(unknown.code, "MB307")
            let keys = try await client.call(.get, "/admin/v1/tenants/acme/keys", headers: node.adminHeaders)
            XCTAssertEqual(keys.json?.arrayValue?.filter { $0["active"] == true }.count, 1)
            XCTAssertFalse(String(buffer: keys.body).contains("sealed"), "secrets are never listed")
        }
    }
}

extension AdminAPITests {
    /// Sources behind a pooler in transaction mode run statements unnamed by default.
    func testTransactionPoolersAreRecognised() throws {
        let pooled = [
            "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
            "postgresql://u:pw@db.internal:6432/app",
            "postgresql://u:pw@AWS-0-EU.POOLER.SUPABASE.COM:6544/postgres",
        ]
        let direct = [
            "postgresql://postgres:pw@db.ref.supabase.co:5432/postgres",
            "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:5432/postgres",
            "postgresql://u:pw@127.0.0.1:5432/app",
        ]
        for text in pooled { XCTAssertTrue(try PostgresURL(text).isTransactionPooler, text) }
        for text in direct { XCTAssertFalse(try PostgresURL(text).isTransactionPooler, text) }
    }
}
