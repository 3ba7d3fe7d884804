import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Runtime
import TestSupport
import XCTest
@testable import Edge

/// The shared conformance cases against two copies of the fixture on one embedded node: one in
/// PostgreSQL (a registered database), one hosted in SQLite (the fixture uploaded with
/// `provision: true`, its rows copied through the REST API). Every case must get the same status
/// and the same JSON from both.
final class SQLiteConformanceTests: XCTestCase {
    /// What SQLite-hosted tables cannot serve, by case: the fixture's view and function run
    /// uploaded SQL, which is never executed on SQLite; both are refused with PostgREST's 404.
    static let notHosted: [String: String] = ["/books_in_print": "PGRST205", "/rpc/book_count": "PGRST202"]

    func testConformanceCasesGiveTheSameAnswersOnPostgreSQLAndSQLite() async throws {
        let directory = TestServices.conformanceDirectory()
        let database = try await TestServices.freshDatabase(prefix: "sqlconf")
        try TestServices.runScript(directory + "/fixture.sql", database: database)
        let fixture = try String(contentsOfFile: directory + "/fixture.sql", encoding: .utf8)
        let document = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/rest-cases.json"))))
        let cases = try XCTUnwrap(document["cases"]?.arrayValue)
        let dataDir = try TestServices.temporaryDirectory()

        let node = try await TestNode.make(environment: ["MINIBAAS_DATA_DIR": dataDir])
        try await node.application().test(.router) { client in
            let pg = try await client.createTenant(node, "pglib")
            let lite = try await client.createTenant(node, "litelib")
            let registered = try await client.call(
                .post, "/admin/v1/tenants/pglib/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "postgres", "url": .string(database)])
            XCTAssertEqual(registered.status, .created, String(buffer: registered.body))
            let uploaded = try await client.call(
                .post, "/admin/v1/tenants/litelib/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "schema", "format": "sql", "document": .string(fixture), "provision": true])
            XCTAssertEqual(uploaded.status, .created, String(buffer: uploaded.body))
            XCTAssertEqual(uploaded.json?["changeCapture"]?["mode"]?.stringValue, "rest-writes", "SQLite says it has no change feed")
            XCTAssertTrue(FileManager.default.fileExists(atPath: dataDir + "/tenants/litelib/main.sqlite"))

            // The rows, copied table by table (parents first) through both REST APIs.
            for table in ["publishers", "books", "members", "member_cards", "loans"] {
                let rows = try await client.call(.get, "/t/pglib/rest/v1/\(table)", headers: Self.headers(pg.service))
                XCTAssertEqual(rows.status, .ok)
                let copied = try await client.call(
                    .post, "/t/litelib/rest/v1/\(table)", headers: Self.headers(lite.service), json: try XCTUnwrap(rows.json))
                XCTAssertEqual(copied.status, .created, "\(table): \(String(buffer: copied.body))")
            }

            var compared = 0
            for testCase in cases + Self.moreCases {
                let name = testCase["name"]?.stringValue ?? "?"
                let path = testCase["path"]?.stringValue ?? "/"
                let onPostgres = try await Self.send(testCase, client: client, slug: "pglib", key: pg.service)
                let onSQLite = try await Self.send(testCase, client: client, slug: "litelib", key: lite.service)
                if let code = Self.notHosted.first(where: { path.hasPrefix($0.key) })?.value {
                    XCTAssertEqual(onSQLite.status, .notFound, "\(name): \(String(buffer: onSQLite.body))")
                    XCTAssertEqual(onSQLite.code, code, name)
                    continue
                }
                compared += 1
                XCTAssertEqual(onSQLite.status, onPostgres.status, "\(name): \(String(buffer: onSQLite.body)) vs \(String(buffer: onPostgres.body))")
                if (200..<300).contains(onPostgres.status.code) {
                    if testCase["raw"] == true {
                        XCTAssertEqual(String(buffer: onSQLite.body), String(buffer: onPostgres.body), name)
                    } else {
                        XCTAssertEqual(
                            onSQLite.json.map(RestConformanceTests.normalised), onPostgres.json.map(RestConformanceTests.normalised),
                            "\(name): \(String(buffer: onSQLite.body)) vs \(String(buffer: onPostgres.body))")
                    }
                    if testCase["skipRange"] != true {
                        XCTAssertEqual(onSQLite.headers[.contentRange], onPostgres.headers[.contentRange], name)
                    }
                } else {
                    XCTAssertEqual(onSQLite.code, onPostgres.code, "\(name): \(String(buffer: onSQLite.body))")
                }
            }
            XCTAssertEqual(compared, cases.count + Self.moreCases.count - 2, "every case but the view's and the function's is compared")
            // The copy holds every row: a count over a join table and an embed agree.
            var liteCount = Self.headers(lite.service)
            liteCount[.prefer] = "count=exact"
            var pgCount = Self.headers(pg.service)
            pgCount[.prefer] = "count=exact"
            let loans = try await client.call(.head, "/t/litelib/rest/v1/loans", headers: liteCount)
            let pgLoans = try await client.call(.head, "/t/pglib/rest/v1/loans", headers: pgCount)
            XCTAssertEqual(loans.headers[.contentRange], pgLoans.headers[.contentRange])
            XCTAssertNotEqual(loans.headers[.contentRange], "*/0")
        }
    }

    /// More of the grammar than the shared cases reach, in the same form.
    static let moreCases: [JSONValue] = [
        ["name": "many-to-many embed", "path": "/books?select=id,members(id,full_name)&id=in.(1,8,15)&order=id&members.order=id"],
        ["name": "inner embed", "path": "/books?select=id,publishers!inner(name)&publishers.country=eq.US&order=id&limit=5"],
        ["name": "two-level embed", "path": "/publishers?select=id,books(id,loans(member_id,loaned_on))&id=eq.1&books.order=id&books.limit=2&books.loans.order=member_id"],
        ["name": "like", "path": "/books?select=id,title&title=like.Book 1*&order=id"],
        ["name": "like is case-sensitive", "path": "/books?select=id&title=like.book*"],
        ["name": "ilike any", "path": "/members?select=id&full_name=ilike(any).{*ber 2,*ber 3}&order=id"],
        ["name": "is true", "path": "/books?select=id&in_print=is.false&id=lte.30&order=id"],
        ["name": "not in", "path": "/publishers?select=id&id=not.in.(1,2)&order=id"],
        ["name": "nulls first", "path": "/books?select=id,pages&order=pages.nullsfirst,id&limit=4"],
        ["name": "desc default nulls", "path": "/books?select=id,price&order=price.desc,id&limit=4"],
        ["name": "offset", "path": "/books?select=id&order=id&limit=3&offset=10"],
        ["name": "range header", "path": "/books?select=id&order=id", "headers": ["Range": "5-9"]],
        ["name": "count planned", "path": "/books?select=id&limit=1&order=id", "headers": ["Prefer": "count=planned"], "skipRange": true],
        ["name": "json path text", "path": "/books?select=id,details->>lang&details->>edition=eq.2&order=id&limit=3"],
        ["name": "json path json", "path": "/books?select=id,edition:details->edition&id=in.(2,4)&order=id"],
        ["name": "array contains", "path": "/books?select=id,keywords&keywords=cs.{award}&id=lte.10&order=id"],
        ["name": "array contained", "path": "/books?select=id&keywords=cd.{classic,new}&id=lte.10&order=id"],
        ["name": "boolean and numeric types", "path": "/books?select=id,in_print,price,pages,keywords,details,genre&id=in.(1,2,9,10)&order=id"],
        ["name": "dates", "path": "/loans?select=book_id,loaned_on,returned_on&loaned_on=gte.2026-06-01&order=loaned_on,book_id&limit=4"],
        ["name": "or and nested", "path": "/books?select=id&or=(and(genre.eq.poetry,pages.gt.500),id.eq.1)&order=id"],
        ["name": "cast", "path": "/books?select=id,pages::text&id=eq.3"],
        ["name": "single object", "path": "/members?select=id,email&id=eq.7", "headers": ["Accept": "application/vnd.pgrst.object+json"]],
        ["name": "csv", "path": "/publishers?select=id,name&order=id", "headers": ["Accept": "text/csv"], "raw": true],
        ["name": "bad integer", "path": "/books?id=eq.abc"],
        ["name": "unknown column", "path": "/books?select=nope"],
        ["name": "insert with defaults", "method": "POST", "path": "/books?select=id,in_print,keywords",
         "body": ["id": 500, "title": "New", "genre": "poetry"], "headers": ["Prefer": "return=representation"]],
        ["name": "missing default", "method": "POST", "path": "/books?select=id,in_print,keywords,pages&columns=id,title,genre,pages",
         "body": [["id": 501, "title": "A", "genre": "history"], ["id": 502, "title": "B", "genre": "science", "pages": 9]],
         "headers": ["Prefer": "return=representation,missing=default"]],
        ["name": "bad enum", "method": "POST", "path": "/books", "body": ["id": 503, "title": "X", "genre": "cooking"]],
        ["name": "not null", "method": "POST", "path": "/books", "body": ["id": 504, "genre": "poetry"]],
        ["name": "foreign key", "method": "POST", "path": "/books", "body": ["id": 505, "title": "X", "genre": "poetry", "publisher_id": 77]],
        ["name": "upsert merge", "method": "POST", "path": "/publishers", "body": [["id": 1, "name": "Northwind Press Ltd"], ["id": 9, "name": "Nine"]],
         "headers": ["Prefer": "resolution=merge-duplicates,return=representation"]],
        ["name": "upsert ignore", "method": "POST", "path": "/publishers", "body": [["id": 2, "name": "Ignored"], ["id": 10, "name": "Ten"]],
         "headers": ["Prefer": "resolution=ignore-duplicates,return=representation"]],
        ["name": "put", "method": "PUT", "path": "/publishers?id=eq.11", "body": ["id": 11, "name": "Eleven"], "headers": ["Prefer": "return=representation"]],
        ["name": "rollback", "method": "PATCH", "path": "/books?id=eq.1", "body": ["title": "Gone"], "headers": ["Prefer": "tx=rollback,return=representation"]],
        ["name": "after rollback", "path": "/books?select=title&id=eq.1"],
        ["name": "patch embed return", "method": "PATCH", "path": "/books?id=eq.2&select=id,title,publishers(name)", "body": ["title": "Two"],
         "headers": ["Prefer": "return=representation"]],
        ["name": "singular patch of many", "method": "PATCH", "path": "/books?id=lt.5", "body": ["pages": 1],
         "headers": ["Accept": "application/vnd.pgrst.object+json"]],
        ["name": "delete return", "method": "DELETE", "path": "/loans?member_id=eq.3&select=book_id,member_id", "headers": ["Prefer": "return=representation"]],
        ["name": "timestamps and json write", "method": "PATCH", "path": "/books?id=eq.4&select=id,details", "body": ["details": ["a": [1, true, nil], "b": "x"]],
         "headers": ["Prefer": "return=representation"]],
    ]

    static func headers(_ key: String) -> HTTPFields {
        [.apikey: key, .authorization: "Bearer \(key)"]
    }

    static func send(_ testCase: JSONValue, client: some TestClientProtocol, slug: String, key: String) async throws -> Reply {
        let method = HTTPRequest.Method(testCase["method"]?.stringValue ?? "GET")!
        var headers = headers(key)
        for (header, value) in testCase["headers"]?.objectValue ?? [:] {
            headers[HTTPField.Name(header)!] = value.stringValue
        }
        let raw = testCase["path"]?.stringValue ?? "/"
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "+")
        let path = raw.addingPercentEncoding(withAllowedCharacters: allowed) ?? raw
        return try await client.call(method, "/t/\(slug)/rest/v1" + path, headers: headers, json: testCase["body"])
    }
}
