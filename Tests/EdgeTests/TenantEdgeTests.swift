import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Runtime
import Tenancy
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

/// The tenant door: resolution, keys and tokens, and the per-tenant limits.
final class TenantEdgeTests: XCTestCase {
    /// Adds tenant routes that report the caller and that take a while, behind the real gate.
    static func probes(_ node: TestNode) -> (Router<EdgeContext>) -> Void {
        { router in
            let tenant = router.group("t/:slug/probe").add(middleware: TenantGateMiddleware(admission: node.services.admission, forwarder: node.services.forwarder))
            tenant.get("whoami") { _, context in
                try jsonResponse(["role": .string(context.caller?.role ?? ""), "sub": context.caller?.claims["sub"] ?? .null])
            }
            tenant.get("slow") { request, _ in
                let ms = Int(request.uri.queryParameters.get("ms") ?? "200") ?? 200
                try await Task.sleep(for: .milliseconds(ms))
                return try jsonResponse(["slept": .integer(Int64(ms))])
            }
            tenant.post("echo") { request, _ in
                let body = try await request.body.collect(upTo: .max)
                return try jsonResponse(["bytes": .integer(Int64(body.readableBytes))])
            }
        }
    }

    static func userToken(_ node: TestNode, slug: String, claims: JSONObject) async throws -> String {
        try await node.services.directory.keyRing(for: slug).sign(claims)
    }

    func testAPIKeyAndBearerDecideTheRole() async throws {
        let node = try await TestNode.make()
        try await node.application(extend: Self.probes(node)).test(.router) { client in
            let acme = try await client.createTenant(node, "acme")
            let other = try await client.createTenant(node, "other")

            let missing = try await client.call(.get, "/t/acme/probe/whoami")
            XCTAssertEqual(missing.status, .unauthorized)
            XCTAssertEqual(missing.code, "MB201")

            let anon = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon])
            XCTAssertEqual(anon.json?["role"], "anon")
            let service = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.service])
            XCTAssertEqual(service.json?["role"], "service_role")
            let viaQuery = try await client.call(.get, "/t/acme/probe/whoami?apikey=\(acme.anon)")
            XCTAssertEqual(viaQuery.json?["role"], "anon", "websocket clients send the key as a query parameter")

            let foreign = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: other.service])
            XCTAssertEqual(foreign.status, .unauthorized)
            XCTAssertEqual(foreign.code, "PGRST301")
            let junk = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: "not-a-jwt"])
            XCTAssertEqual(junk.code, "PGRST301")

            let now = Int64(Date().timeIntervalSince1970)
            let user = try await Self.userToken(node, slug: "acme", claims: ["role": "authenticated", "sub": "u-1", "exp": .integer(now + 600)])
            let authed = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Bearer \(user)"])
            XCTAssertEqual(authed.json?["role"], "authenticated")
            XCTAssertEqual(authed.json?["sub"], "u-1")

            let userAsKey = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: user])
            XCTAssertEqual(userAsKey.code, "PGRST301", "an end-user token is not an API key")

            let expired = try await Self.userToken(node, slug: "acme", claims: ["role": "authenticated", "exp": .integer(now - 120)])
            let expiredReply = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Bearer \(expired)"])
            XCTAssertEqual(expiredReply.status, .unauthorized)
            XCTAssertEqual(expiredReply.code, "PGRST303")

            let early = try await Self.userToken(node, slug: "acme", claims: ["role": "authenticated", "nbf": .integer(now + 600)])
            let earlyReply = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Bearer \(early)"])
            XCTAssertEqual(earlyReply.code, "PGRST303")

            let otherUser = try await Self.userToken(node, slug: "other", claims: ["role": "service_role"])
            let crossTenant = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Bearer \(otherUser)"])
            XCTAssertEqual(crossTenant.code, "PGRST301")

            let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            let payload = Data(#"{"role":"service_role","ref":"acme"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            let none = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Bearer \(header).\(payload)."])
            XCTAssertEqual(none.code, "PGRST301")
            let basic = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: acme.anon, .authorization: "Basic eDp5"])
            XCTAssertEqual(basic.code, "PGRST301")

            let unknown = try await client.call(.get, "/t/ghost/probe/whoami", headers: [.apikey: acme.anon])
            XCTAssertEqual(unknown.status, .notFound)
            XCTAssertEqual(unknown.code, "MB300")
        }
    }

    func testHostNamesResolveTenantsUnderTheBaseDomain() async throws {
        let node = try await TestNode.make(environment: ["MINIBAAS_BASE_DOMAIN": "example.test"])
        try await node.application(extend: Self.probes(node)).test(.live) { client in
            let acme = try await client.createTenant(node, "acme")
            let port = try XCTUnwrap(client.port)
            try await TestClient.withClient(host: "127.0.0.1", port: port) { direct in
                let byHost = try await direct.execute(.init("/probe/whoami", method: .get, authority: "acme.example.test:\(port)", headers: [.apikey: acme.anon]))
                XCTAssertEqual(byHost.status, .ok)
                let doc = try await direct.execute(.init("/rest/v1/", method: .get, authority: "acme.example.test", headers: [.apikey: acme.anon]))
                XCTAssertEqual(doc.status, .ok)
                let json = try JSONValue.parse((doc.body ?? ByteBuffer()).readableBytesView)
                XCTAssertEqual(json["openapi"], "3.0.3")
                let ghost = try await direct.execute(.init("/probe/whoami", method: .get, authority: "ghost.example.test", headers: [.apikey: acme.anon]))
                XCTAssertEqual(ghost.status, .notFound)
                let elsewhere = try await direct.execute(.init("/healthz", method: .get, authority: "other.domain", headers: [:]))
                XCTAssertEqual(elsewhere.status, .ok, "other hosts reach the node's own routes")
            }
        }
    }

    func testOpenAPIDocumentDescribesTheTenant() async throws {
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "acme")
            let reply = try await client.call(.get, "/t/acme/rest/v1/", headers: [.apikey: keys.anon])
            XCTAssertEqual(reply.status, .ok)
            XCTAssertEqual(reply.headers[.contentType]?.hasPrefix("application/openapi+json"), true)
            XCTAssertEqual(reply.json?["openapi"], "3.0.3")
            XCTAssertEqual(reply.json?["paths"], [:])
            XCTAssertEqual(reply.json?["servers"]?.arrayValue?.first?["url"]?.stringValue?.hasSuffix("/t/acme/rest/v1"), true)
            XCTAssertNotNil(reply.json?["components"]?["securitySchemes"]?["apikey"])
        }
    }

    func testRateLimitAnswers429WithRetryAfter() async throws {
        let node = try await TestNode.make()
        try await node.application(extend: Self.probes(node)).test(.router) { client in
            let keys = try await client.createTenant(node, "acme", limits: ["requestsPerSecond": 0.5, "burst": 3])
            var statuses: [HTTPResponse.Status] = []
            var retryAfter: String?
            for _ in 0..<5 {
                let reply = try await client.call(.get, "/t/acme/probe/whoami", headers: [.apikey: keys.anon])
                statuses.append(reply.status)
                if reply.status == .tooManyRequests {
                    retryAfter = reply.headers[.retryAfter]
                    XCTAssertEqual(reply.code, "MB400")
                }
            }
            XCTAssertEqual(statuses, [.ok, .ok, .ok, .tooManyRequests, .tooManyRequests])
            XCTAssertEqual(retryAfter, "2")
        }
    }

    func testConcurrencyCapQueuesThenRefuses() async throws {
        let node = try await TestNode.make()
        try await node.application(extend: Self.probes(node)).test(.router) { client in
            let keys = try await client.createTenant(node, "acme", limits: ["maxConcurrent": 1, "maxQueued": 1])
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for index in 0..<5 {
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(index * 20))
                        let reply = try await client.call(.get, "/t/acme/probe/slow?ms=300", headers: [.apikey: keys.anon])
                        return (reply.status, reply.code)
                    }
                }
                return try await group.reduce(into: [(HTTPResponse.Status, String?)]()) { $0.append($1) }
            }
            XCTAssertEqual(statuses.filter { $0.0 == .ok }.count, 2, "one runs and one waits")
            XCTAssertEqual(statuses.filter { $0.0 == .serviceUnavailable && $0.1 == "MB401" }.count, 3)
        }
    }

    func testDeadlineAnswers504AndBodyLimit413() async throws {
        let node = try await TestNode.make()
        try await node.application(extend: Self.probes(node)).test(.router) { client in
            let keys = try await client.createTenant(node, "acme", limits: ["requestTimeoutMs": 100, "maxBodyBytes": 64])
            let slow = try await client.call(.get, "/t/acme/probe/slow?ms=2000", headers: [.apikey: keys.anon])
            XCTAssertEqual(slow.status, .gatewayTimeout)
            XCTAssertEqual(slow.code, "MB402")
            XCTAssertEqual(slow.headers[.connection], "close", "the deadline ended the connection's task")
            let tree = try await XCTUnwrapAsync(try await node.services.directory.tree(for: "acme"))
            XCTAssertEqual(tree.gate.activeCount, 0, "the timed-out request gave its slot back")

            let small = try await client.call(.post, "/t/acme/probe/echo", headers: [.apikey: keys.anon], raw: String(repeating: "x", count: 64))
            XCTAssertEqual(small.json?["bytes"], 64)
            let large = try await client.call(.post, "/t/acme/probe/echo", headers: [.apikey: keys.anon], raw: String(repeating: "x", count: 65))
            XCTAssertEqual(large.status, .contentTooLarge)
            XCTAssertEqual(large.code, "MB103")
        }
    }

    /// One tenant is flooded far past its limits over real sockets; another tenant's requests, sent
    /// at the same time, all succeed.
    func testAFloodedTenantDoesNotStarveAnother() async throws {
        let node = try await TestNode.make()
        try await node.application(extend: Self.probes(node)).test(.live) { client in
            let flooded = try await client.createTenant(
                node, "flooded", limits: ["requestsPerSecond": 20, "burst": 10, "maxConcurrent": 2, "maxQueued": 2])
            let calm = try await client.createTenant(node, "calm")
            let port = try XCTUnwrap(client.port)

            async let flood: [HTTPResponse.Status] = withThrowingTaskGroup(of: [HTTPResponse.Status].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await TestClient.withClient(host: "127.0.0.1", port: port) { connection in
                            var seen: [HTTPResponse.Status] = []
                            for _ in 0..<25 {
                                let reply = try await connection.execute(.init(
                                    "/t/flooded/probe/slow?ms=50", method: .get, authority: "localhost", headers: [.apikey: flooded.anon]))
                                seen.append(reply.status)
                            }
                            return seen
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let calmStatuses = try await TestClient.withClient(host: "127.0.0.1", port: port) { connection in
                var seen: [HTTPResponse.Status] = []
                for _ in 0..<40 {
                    let reply = try await connection.execute(.init(
                        "/t/calm/probe/slow?ms=5", method: .get, authority: "localhost", headers: [.apikey: calm.anon]))
                    seen.append(reply.status)
                }
                return seen
            }
            let floodStatuses = try await flood
            XCTAssertEqual(calmStatuses.count, 40)
            XCTAssertTrue(calmStatuses.allSatisfy { $0 == .ok }, "calm tenant saw \(Set(calmStatuses))")
            XCTAssertEqual(floodStatuses.count, 200)
            let refused = floodStatuses.filter { $0 == .tooManyRequests || $0 == .serviceUnavailable }.count
            XCTAssertGreaterThan(refused, 100, "the flooded tenant is held to its own limits")
            XCTAssertTrue(floodStatuses.allSatisfy { [.ok, .tooManyRequests, .serviceUnavailable].contains($0) })
        }
    }
}

extension TestNode {
    static func make(environment: [String: String]) async throws -> TestNode {
        try await make(store: nil, environment: environment)
    }
}
