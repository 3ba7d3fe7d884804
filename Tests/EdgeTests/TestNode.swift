import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Runtime
import Tenancy
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

/// A node assembled in process over a real store, for driving the edge through HummingbirdTesting.
struct TestNode {
    let services: NodeServices
    let adminToken = "test-admin-token-0123456789"

    static func make(
        store given: (any ControlPlaneStore)? = nil, environment: [String: String] = [:],
        directory configure: (inout TenantDirectory.Configuration) -> Void = { _ in }
    ) async throws -> TestNode {
        var environment = environment
        if environment["MINIBAAS_DATA_DIR"] == nil {
            // Never the working directory's ./.minibaas: SQLite-hosted tables land in the data dir.
            environment["MINIBAAS_DATA_DIR"] = FileManager.default.temporaryDirectory.appendingPathComponent("testnode-\(UUID().uuidString)").path
        }
        let configuration = try NodeConfiguration.resolve(host: "127.0.0.1", port: 0, dataDir: nil, environment: environment)
        let store: any ControlPlaneStore
        if let given {
            store = given
        } else {
            let sqlite = try await SQLiteControlPlaneStore.inMemory()
            try await sqlite.migrate()
            store = sqlite
        }
        let masterKey = SymmetricKey(size: .bits256)
        var directoryConfiguration = TenantDirectory.Configuration()
        directoryConfiguration.backoff = Backoff(base: .milliseconds(5), cap: .milliseconds(20))
        configure(&directoryConfiguration)
        // Alone, as an embedded node is: leases in memory, long enough that no renewal is needed.
        var clusterConfiguration = ClusterCoordinator.Configuration()
        clusterConfiguration.leaseTTL = .seconds(3600)
        let cluster = ClusterCoordinator(
            nodeID: configuration.nodeID, backend: LocalCoordinationBackend(), configuration: clusterConfiguration, logger: Logger(label: "test"))
        await cluster.join(address: "http://127.0.0.1:1")
        let services = await NodeServices.assemble(
            configuration: configuration, store: store, secretBox: SecretBox(masterKey: masterKey), masterKey: masterKey,
            adminToken: AdminToken(token: "test-admin-token-0123456789"), cluster: cluster, directory: directoryConfiguration,
            logger: Logger(label: "test"))
        return TestNode(services: services)
    }

    /// The node's application; `extend` may add routes (tests add slow tenant routes to load the gate).
    func application(extend: (Router<EdgeContext>) -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Node.makeRouter(services, metrics: .shared)
        extend(router)
        return Application(
            responder: EdgeResponder(inner: router.buildResponder(), baseDomain: services.configuration.baseDomain),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    var adminHeaders: HTTPFields { [.authorization: "Bearer \(adminToken)", .contentType: "application/json"] }
}

struct Reply {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: ByteBuffer
    var json: JSONValue? { try? JSONValue.parse(body.readableBytesView) }
    var code: String? { json?["code"]?.stringValue }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], json: JSONValue? = nil, raw: String? = nil) async throws -> Reply {
        var headers = headers
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: json.encoded())
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        let response = try await executeRequest(uri: uri, method: method, headers: headers, body: body)
        return Reply(status: response.status, headers: response.headers, body: response.body)
    }

    /// Registers a tenant and returns (anonKey, serviceKey).
    func createTenant(_ node: TestNode, _ slug: String, limits: JSONValue? = nil) async throws -> (anon: String, service: String) {
        var body: JSONObject = ["slug": .string(slug), "name": .string(slug.capitalized)]
        if let limits { body["limits"] = limits }
        let reply = try await call(.post, "/admin/v1/tenants", headers: node.adminHeaders, json: .object(body))
        XCTAssertEqual(reply.status, .created, String(buffer: reply.body))
        return (try XCTUnwrap(reply.json?["anonKey"]?.stringValue), try XCTUnwrap(reply.json?["serviceKey"]?.stringValue))
    }
}

extension TestNode {
    /// A node (driven in router mode) with tenant `slug` whose default source is a fresh database
    /// loaded from `fixture`.
    static func withFixtureSource(
        _ fixture: String, slug: String, prefix: String,
        _ body: @escaping @Sendable (TestNode, _ database: String, _ keys: (anon: String, service: String), any TestClientProtocol) async throws -> Void
    ) async throws {
        let database = try await TestServices.freshDatabase(prefix: prefix)
        try TestServices.runScript(fixture, database: database)
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, slug)
            let registered = try await client.call(
                .post, "/admin/v1/tenants/\(slug)/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "postgres", "url": .string(database)])
            XCTAssertEqual(registered.status, .created, String(buffer: registered.body))
            try await body(node, database, keys, client)
        }
    }
}

/// A JSON Schema with validation keywords and the rows they refuse (code by row): the same on a
/// PostgreSQL-hosted and a SQLite-hosted upload.
enum ValidationFixture {
    static let document: JSONValue = [
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": [
            "Item": [
                "type": "object", "required": ["id", "name"],
                "properties": [
                    "id": ["type": "integer"],
                    "name": ["type": "string", "minLength": 2, "maxLength": 10],
                    "price": ["type": "number", "minimum": 0, "exclusiveMaximum": 1000],
                    "sku": ["type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"],
                    "size": ["type": "string", "enum": ["S", "M", "L"]],
                    "count": ["type": "integer", "multipleOf": 5],
                ],
            ],
        ],
    ]

    static let refusals: [(JSONValue, String)] = [
        (["id": 2, "name": "ok", "price": -1], "23514"), (["id": 3, "name": "ok", "price": 1000], "23514"),
        (["id": 4, "name": "x"], "23514"), (["id": 5, "name": "far too long"], "22001"), (["id": 6, "name": "ok", "size": "XL"], "22P02"),
    ]
}
