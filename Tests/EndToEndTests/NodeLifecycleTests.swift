import Foundation
import HTTPTypes
import Runtime
import TestSupport
import XCTest

/// Starts the real executable, in both modes, and drives it over HTTP.
final class NodeLifecycleTests: XCTestCase {
    func testEmbeddedFirstRunRestartAndGracefulStop() async throws {
        let dataDir = try TestServices.temporaryDirectory() + "/data"
        let first = try await NodeProcess.serve(dataDir: dataDir)
        let token = try XCTUnwrap(first.matches(#"mbadm_[A-Za-z0-9_-]+"#), first.output)
        let demoKey = try XCTUnwrap(first.matches(#"anon key: +[A-Za-z0-9_.-]+"#), first.output)
            .replacingOccurrences(of: #"anon key: +"#, with: "", options: .regularExpression)
        let admin: HTTPFields = [.authorization: "Bearer \(token)"]

        let (demoStatus, demoDoc) = try await first.call(.get, "/t/demo/rest/v1/", headers: [.apikey: demoKey])
        XCTAssertEqual(demoStatus, .ok)
        XCTAssertEqual(demoDoc?["openapi"], "3.0.3")
        let (todosStatus, todos) = try await first.call(.get, "/t/demo/rest/v1/todos?select=title&order=id", headers: [.apikey: demoKey])
        XCTAssertEqual(todosStatus, .ok, "the README's first curl answers rows with no services running")
        XCTAssertEqual(todos?.arrayValue?.first?["title"]?.stringValue, "Read the README")
        let (created, tenant) = try await first.call(.post, "/admin/v1/tenants", headers: admin, json: ["slug": "acme", "name": "Acme"])
        XCTAssertEqual(created, .created)
        let serviceKey = try XCTUnwrap(tenant?["serviceKey"]?.stringValue)
        XCTAssertEqual(tenant?["apiUrl"]?.stringValue, "http://127.0.0.1:\(first.port)/t/acme", "apiUrl names the port really bound")
        let (ready, _) = try await first.call(.get, "/readyz")
        XCTAssertEqual(ready, .ok)

        let mode = try FileManager.default.attributesOfItem(atPath: dataDir + "/master.key")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        try await assertEqual(await first.stop(signal: SIGTERM), 0, "SIGTERM is a clean stop: \(first.errors)")

        let second = try await NodeProcess.serve(dataDir: dataDir)
        XCTAssertNil(second.matches("mbadm_"), "the admin token is shown only on first run")
        XCTAssertNil(second.matches("demo tenant"))
        let (list, tenants) = try await second.call(.get, "/admin/v1/tenants", headers: admin)
        XCTAssertEqual(list, .ok, "the hashed admin token still admits")
        XCTAssertEqual(tenants?.arrayValue?.compactMap { $0["slug"]?.stringValue }, ["acme", "demo"])
        let (_, again) = try await second.call(.get, "/admin/v1/tenants/acme", headers: admin)
        XCTAssertEqual(again?["serviceKey"]?.stringValue, serviceKey, "keys survive a restart")
        let (served, _) = try await second.call(.get, "/t/acme/rest/v1/", headers: [.apikey: serviceKey])
        XCTAssertEqual(served, .ok)
        try await assertEqual(await second.stop(signal: SIGINT), 0, "SIGINT is a clean stop too")
    }

    func testAdminTokenFromTheEnvironmentOverridesTheStoredOne() async throws {
        let dataDir = try TestServices.temporaryDirectory()
        let node = try await NodeProcess.serve(dataDir: dataDir, environment: ["MINIBAAS_ADMIN_TOKEN": "override-token-1234567890"])
        defer { node.process.terminate() }
        XCTAssertNil(node.matches("mbadm_"), "no token is generated when one is given")
        let (ok, _) = try await node.call(.get, "/admin/v1/tenants", headers: [.authorization: "Bearer override-token-1234567890"])
        XCTAssertEqual(ok, .ok)
        let (refused, error) = try await node.call(.get, "/admin/v1/tenants", headers: [.authorization: "Bearer nope"])
        XCTAssertEqual(refused, .unauthorized)
        XCTAssertEqual(error?["code"], "MB200")
        await node.stop()
    }

    func testClusterNodesShareOnePostgresControlPlane() async throws {
        let database = try await TestServices.freshDatabase(prefix: "e2e")
        let environment = [
            "DATABASE_URL": database,
            "MINIBAAS_MASTER_KEY": String(repeating: "ab", count: 32),
            "MINIBAAS_ADMIN_TOKEN": "cluster-admin-token-123456",
        ]
        let admin: HTTPFields = [.authorization: "Bearer cluster-admin-token-123456"]
        var nodeA = environment
        nodeA["MINIBAAS_NODE_ID"] = "node-a"
        var nodeB = environment
        nodeB["MINIBAAS_NODE_ID"] = "node-b"
        async let startA = NodeProcess.serve(dataDir: nil, environment: nodeA)
        async let startB = NodeProcess.serve(dataDir: nil, environment: nodeB)
        let (a, b) = try await (startA, startB)
        XCTAssertTrue(a.output.contains("node-a (cluster mode)"), a.output)

        let (created, tenant) = try await a.call(.post, "/admin/v1/tenants", headers: admin, json: ["slug": "shared", "name": "Shared"])
        XCTAssertEqual(created, .created)
        let anon = try XCTUnwrap(tenant?["anonKey"]?.stringValue)
        let (_, seenByB) = try await b.call(.get, "/admin/v1/tenants/shared", headers: admin)
        XCTAssertEqual(seenByB?["anonKey"]?.stringValue, anon, "both nodes open the same sealed secret")
        let (servedByA, _) = try await a.call(.get, "/t/shared/rest/v1/", headers: [.apikey: anon])
        let (servedByB, _) = try await b.call(.get, "/t/shared/rest/v1/", headers: [.apikey: anon])
        XCTAssertEqual(servedByA, .ok)
        XCTAssertEqual(servedByB, .ok)

        let (deleted, _) = try await b.call(.delete, "/admin/v1/tenants/shared", headers: admin)
        XCTAssertEqual(deleted, .noContent)
        // Node A learns of the deletion through its tenant's config watcher.
        let goneOnA = try await waitUntil(timeout: .seconds(15)) {
            try await a.call(.get, "/t/shared/rest/v1/", headers: [.apikey: anon]).0 == .notFound
        }
        XCTAssertTrue(goneOnA)
        let (supervisor, tree) = try await a.call(.get, "/admin/v1/supervisor", headers: admin)
        XCTAssertEqual(supervisor, .ok)
        XCTAssertEqual(tree?["node"]?["mode"], "cluster")
        XCTAssertEqual(tree?["tenants"], [])

        try await assertEqual(await a.stop(), 0)
        try await assertEqual(await b.stop(), 0)

        // The same control plane refuses a node with another master key.
        var wrongKey = environment
        wrongKey["MINIBAAS_MASTER_KEY"] = String(repeating: "cd", count: 32)
        let refused = try NodeProcess(arguments: ["serve", "--port", "0"], environment: wrongKey)
        try await assertEqual(await refused.waitForExit(), 1)
        XCTAssertTrue(refused.errors.contains("master key does not match"), refused.errors)
    }

    func testBadConfigurationStopsStartUpWithOneClearLine() async throws {
        let cases: [([String], [String: String], String)] = [
            (["serve", "--port", "70000"], [:], "--port"),
            (["serve", "--port", "0"], ["DATABASE_URL": "mysql://nope"], "DATABASE_URL"),
            (["serve", "--port", "0"], ["DATABASE_URL": "postgres://h/db"], "MINIBAAS_MASTER_KEY is required"),
            (["serve", "--port", "0"], ["MINIBAAS_MASTER_KEY": "short"], "MINIBAAS_MASTER_KEY"),
            (["serve", "--port", "0"], ["MINIBAAS_ADMIN_TOKEN": "short"], "MINIBAAS_ADMIN_TOKEN"),
            (["serve", "--port", "0"], ["REDIS_URL": "http://x"], "REDIS_URL"),
            (["serve", "--port", "0"], ["MINIBAAS_LOG_LEVEL": "loud"], "MINIBAAS_LOG_LEVEL"),
            (["serve", "--port", "0"], ["MINIBAAS_PUBLIC_URL": "ftp://x"], "MINIBAAS_PUBLIC_URL"),
            (["serve", "--port", "0"], ["MINIBAAS_BASE_DOMAIN": "bad domain!"], "MINIBAAS_BASE_DOMAIN"),
        ]
        for (arguments, environment, mention) in cases {
            let process = try NodeProcess(arguments: arguments, environment: environment)
            let status = await process.waitForExit()
            XCTAssertEqual(status, 2, "\(arguments) \(environment): \(process.errors)")
            let lines = process.errors.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, process.errors)
            XCTAssertTrue(process.errors.contains(mention), process.errors)
            XCTAssertFalse(process.errors.contains("Fatal error"), process.errors)
        }
    }

    func testUnreachableDatabaseFailsStartUpClearly() async throws {
        let process = try NodeProcess(arguments: ["serve", "--port", "0"], environment: [
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none?sslmode=disable",
            "MINIBAAS_MASTER_KEY": String(repeating: "ab", count: 32),
        ])
        let status = await process.waitForExit(timeout: .seconds(60))
        XCTAssertEqual(status, 1)
        XCTAssertTrue(process.errors.contains("cannot prepare the control plane"), process.errors)
        XCTAssertFalse(process.errors.contains("Fatal error"))
    }

    func testVersionAndHelp() async throws {
        let version = try NodeProcess(arguments: ["version"])
        try await assertEqual(await version.waitForExit(), 0)
        try await Task.sleep(for: .milliseconds(50))
        XCTAssertEqual(version.output.trimmingCharacters(in: .whitespacesAndNewlines), "minibaas 0.1.0")
        let help = try NodeProcess(arguments: ["--help"])
        try await assertEqual(await help.waitForExit(), 0)
        try await Task.sleep(for: .milliseconds(50))
        XCTAssertTrue(help.output.contains("serve"), help.output)
    }
}
