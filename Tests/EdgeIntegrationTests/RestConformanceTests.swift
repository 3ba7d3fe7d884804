import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Runtime
import TestSupport
import XCTest
@testable import Edge

/// Runs the shared REST conformance cases (`rest-cases.json`) against a node serving the fixture
/// database, checking each answer against what the database itself says.
final class RestConformanceTests: XCTestCase {
    func testSharedConformanceCases() async throws {
        let directory = TestServices.conformanceDirectory()
        let database = try await TestServices.freshDatabase(prefix: "conf")
        try TestServices.runScript(directory + "/fixture.sql", database: database)
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/rest-cases.json"))))
        let cases = try XCTUnwrap(document["cases"]?.arrayValue)
        XCTAssertGreaterThan(cases.count, 20)

        let node = try await TestNode.make()
        try await node.application().test(.live) { client in
            let keys = try await client.createTenant(node, "library")
            let registered = try await client.call(
                .post, "/admin/v1/tenants/library/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "postgres", "url": .string(database)])
            XCTAssertEqual(registered.status, .created, String(buffer: registered.body))
            for testCase in cases {
                try await Self.run(testCase, client: client, key: keys.service, database: database)
            }
        }
    }

    static func run(_ testCase: JSONValue, client: some TestClientProtocol, key: String, database: String) async throws {
        let name = testCase["name"]?.stringValue ?? "?"
        let method = HTTPRequest.Method(testCase["method"]?.stringValue ?? "GET")!
        var headers: HTTPFields = [.apikey: key, .authorization: "Bearer \(key)"]
        for (header, value) in testCase["headers"]?.objectValue ?? [:] {
            headers[HTTPField.Name(header)!] = value.stringValue
        }
        if let sql = testCase["before_sql_nonzero"]?.stringValue {
            let count = try await TestServices.scalar("SELECT (\(sql))::text", database: database)
            XCTAssertNotEqual(count, "0", "\(name): precondition")
        }
        let raw = testCase["path"]?.stringValue ?? "/"
        // The cases are written as people type them; a client sends them percent-encoded.
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "+")
        let path = raw.addingPercentEncoding(withAllowedCharacters: allowed) ?? raw
        let reply = try await client.call(method, "/t/library/rest/v1" + path, headers: headers, json: testCase["body"])
        let body = String(buffer: reply.body)
        let json = try? JSONValue.parse(reply.body.readableBytesView)

        if let status = testCase["expect_status"]?.intValue {
            XCTAssertEqual(Int64(reply.status.code), status, "\(name): \(body)")
        } else {
            XCTAssertTrue((200..<300).contains(reply.status.code), "\(name): \(reply.status) \(body)")
        }
        if let code = testCase["expect_code"]?.stringValue {
            XCTAssertEqual(json?["code"]?.stringValue, code, "\(name): \(body)")
        }
        if let oracle = testCase["oracle"]?.stringValue {
            let expected = try await TestServices.scalar("SELECT coalesce(json_agg(o), '[]')::text FROM (\(oracle)) o", database: database)
            XCTAssertEqual(json, try JSONValue.parse(Array((expected ?? "").utf8)), "\(name): \(body)")
        }
        if let expected = testCase["expect_json"] {
            XCTAssertEqual(json.map(normalised), normalised(expected), "\(name): \(body)")
        }
        if let sql = testCase["expect_content_range_total_sql"]?.stringValue {
            let total = try await TestServices.scalar("SELECT (\(sql))::text", database: database)
            let range = reply.headers[.contentRange] ?? ""
            XCTAssertEqual(range.split(separator: "/").last.map(String.init), total, "\(name): Content-Range \(range)")
        }
        if let sql = testCase["expect_sql_scalar"]?.stringValue {
            let expected = try await TestServices.scalar("SELECT (\(sql))::text", database: database)
            XCTAssertEqual(json?.doubleValue, expected.flatMap(Double.init), "\(name): \(body)")
        }
        if let sql = testCase["then_sql_zero"]?.stringValue {
            let count = try await TestServices.scalar("SELECT (\(sql))::text", database: database)
            XCTAssertEqual(count, "0", "\(name): postcondition")
        }
    }

    /// JSON numbers compare by value: 12 and 12.0 are the same answer.
    static func normalised(_ value: JSONValue) -> JSONValue {
        switch value {
        case .integer(let integer): return .number(Double(integer))
        case .array(let items): return .array(items.map(normalised))
        case .object(let object):
            var result = JSONObject()
            for (key, item) in object { result[key] = normalised(item) }
            return .object(result)
        default: return value
        }
    }
}
