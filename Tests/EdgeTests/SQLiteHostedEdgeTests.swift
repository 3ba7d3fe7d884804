import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Runtime
import TestSupport
import XCTest
@testable import Edge

/// SQLite-hosted tables through the whole edge, with no service running: names that need quoting
/// (percent-decoded path segments), JSON Schema's validation keywords enforced as CHECKs, and
/// what cannot be hosted named in the answer.
final class SQLiteHostedEdgeTests: XCTestCase {
    func withNode(_ body: @escaping @Sendable (TestNode, any TestClientProtocol, _ service: String) async throws -> Void) async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("edge-sqlite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let node = try await TestNode.make(environment: ["MINIBAAS_DATA_DIR": dataDir])
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "lite")
            try await body(node, client, keys.service)
        }
    }

    func testNamesThatNeedQuotingArePercentDecodedOnce() async throws {
        try await withNode { node, client, key in
            let document = #"create table "Mixed Case Things" (id int primary key, "Full Name" text not null, code varchar(3));"#
            let made = try await client.call(
                .post, "/admin/v1/tenants/lite/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "schema", "format": "sql", "document": .string(document), "provision": true])
            XCTAssertEqual(made.status, .created, String(buffer: made.body))
            let headers: HTTPFields = [.apikey: key, .authorization: "Bearer \(key)"]
            let inserted = try await client.call(
                .post, "/t/lite/rest/v1/Mixed%20Case%20Things?select=Full%20Name", headers: headers.with(.prefer, "return=representation"),
                json: ["id": 1, "Full Name": "Ada"])
            XCTAssertEqual(inserted.status, .created, String(buffer: inserted.body))
            XCTAssertEqual(inserted.json, [["Full Name": "Ada"]])
            let read = try await client.call(.get, "/t/lite/rest/v1/Mixed%20Case%20Things?Full%20Name=eq.Ada&select=id", headers: headers)
            XCTAssertEqual(read.json, [["id": 1]])
            let named = try await client.call(.get, "/t/lite/sources/main/rest/v1/Mixed%20Case%20Things?select=id", headers: headers)
            XCTAssertEqual(named.json, [["id": 1]], "source names and table names alike")
            let missing = try await client.call(.get, "/t/lite/rest/v1/No%20Such", headers: headers)
            XCTAssertEqual(missing.status, .notFound)
            XCTAssertEqual(missing.json?["message"]?.stringValue, "Could not find the table 'No Such' in the schema cache")
            let rpc = try await client.call(.post, "/t/lite/rest/v1/rpc/do%20it", headers: headers, json: [:])
            XCTAssertEqual(rpc.status, .notFound)
            XCTAssertTrue(rpc.json?["message"]?.stringValue?.contains("'do it'") ?? false, String(buffer: rpc.body))
            let tooLong = try await client.call(.post, "/t/lite/rest/v1/Mixed%20Case%20Things", headers: headers, json: ["id": 2, "Full Name": "B", "code": "ABCD"])
            XCTAssertEqual(tooLong.status, .badRequest)
            XCTAssertEqual(tooLong.code, "22001", "varchar(3) is enforced as PostgreSQL does")
        }
    }

    func testJSONSchemaValidationKeywordsBecomeChecks() async throws {
        try await withNode { node, client, key in
            let made = try await client.call(
                .post, "/admin/v1/tenants/lite/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "schema", "format": "jsonschema", "document": .string(ValidationFixture.document.jsonString), "provision": true])
            XCTAssertEqual(made.status, .created, String(buffer: made.body))
            let warnings = made.json?["warnings"]?.arrayValue?.compactMap(\.stringValue) ?? []
            XCTAssertTrue(warnings.contains { $0.contains("multipleOf") }, "\(warnings)")
            XCTAssertTrue(warnings.contains { $0.contains("sku") && $0.contains("pattern") }, "\(warnings)")
            let headers: HTTPFields = [.apikey: key, .authorization: "Bearer \(key)"]
            let entity = try XCTUnwrap(made.json?["entities"]?.arrayValue?.first?.stringValue)
            let good = try await client.call(.post, "/t/lite/rest/v1/\(entity)", headers: headers, json: ["id": 1, "name": "ok", "price": 0, "size": "M"])
            XCTAssertEqual(good.status, .created, String(buffer: good.body))
            for (row, code) in ValidationFixture.refusals {
                let refused = try await client.call(.post, "/t/lite/rest/v1/\(entity)", headers: headers, json: row)
                XCTAssertEqual(refused.status, .badRequest, "\(row): \(String(buffer: refused.body))")
                XCTAssertEqual(refused.code, code, "\(row)")
            }
        }
    }

    func testSQLiteSourcesByPathAreRefusedOutsideTheDataDirectory() async throws {
        try await withNode { node, client, _ in
            for path in ["../outside.db", "/etc/hostname", "missing.db"] {
                let refused = try await client.call(
                    .post, "/admin/v1/tenants/lite/sources", headers: node.adminHeaders, json: ["name": "x", "kind": "sqlite", "path": .string(path)])
                XCTAssertEqual(refused.status, .badRequest, path)
                XCTAssertEqual(refused.code, "MB101", path)
            }
        }
    }
}

extension HTTPFields {
    func with(_ name: HTTPField.Name, _ value: String) -> HTTPFields {
        var copy = self
        copy[name] = value
        return copy
    }
}
