import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Runtime
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

/// The REST surface over a real PostgreSQL fixture with every relation kind, checked against what
/// SQL run directly on the database says.
final class RestAPITests: XCTestCase {
    struct Setup {
        let node: TestNode
        let database: String
        let service: String
        let anon: String

        func headers(_ extra: HTTPFields = [:]) -> HTTPFields {
            var headers: HTTPFields = [.apikey: service, .authorization: "Bearer \(service)"]
            for field in extra { headers[field.name] = field.value }
            return headers
        }

        func sql(_ query: String) async throws -> JSONValue {
            let text = try await TestServices.scalar("SELECT coalesce(json_agg(o), '[]')::text FROM (\(query)) o", database: database)
            return try JSONValue.parse(Array((text ?? "null").utf8))
        }

        func scalar(_ query: String) async throws -> String? {
            try await TestServices.scalar("SELECT (\(query))::text", database: database)
        }
    }

    static var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/rest-fixture.sql").path
    }

    static func withSource(_ body: @escaping @Sendable (Setup, any TestClientProtocol) async throws -> Void) async throws {
        try await TestNode.withFixtureSource(fixture, slug: "blog", prefix: "rest") { node, database, keys, client in
            try await body(Setup(node: node, database: database, service: keys.service, anon: keys.anon), client)
        }
    }

    // MARK: - Registration

    func testRegistrationFindsTheModel() async throws {
        try await Self.withSource { setup, client in
            let list = try await client.call(.get, "/admin/v1/tenants/blog/sources", headers: setup.node.adminHeaders)
            XCTAssertEqual(list.json?.arrayValue?.first?["name"], "main")
            XCTAssertNil(list.json?.arrayValue?.first?["url"], "credentials are never returned")
            XCTAssertFalse(String(buffer: list.body).contains("postgresql://"))

            let schema = try await client.call(.get, "/admin/v1/tenants/blog/schema", headers: setup.node.adminHeaders)
            let model = try XCTUnwrap(schema.json?["sources"]?.arrayValue?.first?["model"])
            let entities = try XCTUnwrap(model["entities"]?.arrayValue)
            XCTAssertEqual(Set(entities.compactMap { $0["name"]?.stringValue }),
                           ["orgs", "Authors", "profiles", "posts", "labels", "post_labels", "published_posts", "author_stats"])
            let authors = try XCTUnwrap(entities.first { $0["name"] == "Authors" })
            XCTAssertEqual(authors["comment"], "People who write")
            XCTAssertEqual(authors["primaryKey"], ["Id"])
            let id = authors["columns"]?.arrayValue?.first { $0["name"] == "Id" }
            XCTAssertEqual(id?["isIdentity"], true)
            let mood = authors["columns"]?.arrayValue?.first { $0["name"] == "mood" }
            XCTAssertEqual(mood?["type"], "enumeration")
            XCTAssertEqual(mood?["enumValues"], ["happy", "sad", "meh"])
            let posts = try XCTUnwrap(entities.first { $0["name"] == "posts" })
            let tags = posts["columns"]?.arrayValue?.first { $0["name"] == "tags" }
            XCTAssertEqual(tags?["type"], "array")
            XCTAssertEqual(tags?["elementType"], "string")
            XCTAssertEqual(posts["columns"]?.arrayValue?.first { $0["name"] == "slug" }?["isGenerated"], true)
            XCTAssertEqual(posts["columns"]?.arrayValue?.first { $0["name"] == "score" }?["nativeType"], "numeric(5,2)")
            XCTAssertEqual(entities.first { $0["name"] == "published_posts" }?["kind"], "view")

            let relations = try XCTUnwrap(model["relations"]?.arrayValue)
            func kind(_ from: String, _ to: String) -> [String] {
                relations.filter { $0["from"]?["name"]?.stringValue == from && $0["to"]?["name"]?.stringValue == to }.compactMap { $0["kind"]?.stringValue }
            }
            XCTAssertEqual(kind("profiles", "Authors"), ["oneToOne"])
            XCTAssertEqual(kind("Authors", "profiles"), ["oneToOne"])
            XCTAssertEqual(kind("posts", "labels"), ["manyToMany"])
            XCTAssertEqual(kind("labels", "posts"), ["manyToMany"])
            XCTAssertEqual(kind("posts", "Authors").sorted(), ["manyToOne", "manyToOne"], "author and editor")
            XCTAssertEqual(kind("orgs", "Authors"), ["oneToMany"])
            let functions = try XCTUnwrap(model["operations"]?.arrayValue).compactMap { $0["name"]?.stringValue }
            XCTAssertEqual(Set(functions), ["add_numbers", "posts_by", "tag_list", "touch_post", "author_card", "sum_array", "slow"])

        }
    }

    func testRefreshSeesNewColumns() async throws {
        try await Self.withSource { setup, client in
            let before = try await client.call(.get, "/t/blog/rest/v1/orgs?select=city", headers: setup.headers())
            XCTAssertEqual(before.code, "PGRST204")
            try await TestServices.withClient(try .init(setup.database)) { db in
                try await db.query("ALTER TABLE orgs ADD COLUMN city text DEFAULT 'Springfield'")
            }
            let refreshed = try await client.call(.post, "/admin/v1/tenants/blog/sources/main/refresh", headers: setup.node.adminHeaders)
            XCTAssertEqual(refreshed.status, .ok, String(buffer: refreshed.body))
            let after = try await client.call(.get, "/t/blog/rest/v1/orgs?select=city&id=eq.1", headers: setup.headers())
            XCTAssertEqual(after.json, [["city": "Springfield"]])
        }
    }

    func testBadRegistrationsAnswerClearlyAndStoreNothing() async throws {
        let database = try await TestServices.freshDatabase(prefix: "reg")
        let admin = try PostgresURLParts(database)
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            _ = try await client.createTenant(node, "acme")
            let cases: [(JSONValue, HTTPResponse.Status, String)] = [
                (["name": "a", "kind": "postgres", "url": "mysql://x/y"], .badRequest, "MB101"),
                (["name": "a", "kind": "postgres"], .badRequest, "MB101"),
                (["name": "Bad Name", "kind": "postgres", "url": .string(database)], .badRequest, "MB101"),
                (["name": "a", "kind": "postgres", "url": .string(database), "password": "x"], .badRequest, "MB102"),
                (["name": "a", "kind": "postgres", "url": .string(database), "schemas": []], .badRequest, "MB101"),
                (["name": "a", "kind": "postgres", "url": .string(database), "maxConnections": 0], .badRequest, "MB101"),
                (["name": "a", "kind": "cassandra", "url": .string(database)], .badRequest, "MB101"),
                (["name": "a", "kind": "mongodb", "url": "mongodb://x", "database": "d"], .unprocessableContent, "MB331"),
                (["name": "a", "kind": "mongodb", "url": "postgresql://x", "database": "d"], .badRequest, "MB330"),
                (["name": "a", "kind": "postgres", "url": "postgresql://postgres@127.0.0.1:1/x?sslmode=disable"], .unprocessableContent, "MB310"),
                (["name": "a", "kind": "postgres", "url": .string(database), "schemas": ["public", "nope"]], .unprocessableContent, "MB312"),
                (["name": "a", "kind": "postgres", "url": .string(admin.withDatabase("missing_db_x"))], .unprocessableContent, "MB313"),
                (["name": "a", "kind": "postgres", "url": .string(admin.withUser("mb_password_user:wrong-password", database: "postgres"))],
                 .unprocessableContent, "MB311"),
                // Without dbUrl the project is reached through its REST endpoint; this one answers nothing.
                (["name": "a", "kind": "supabase", "url": "http://127.0.0.1:1", "serviceKey": "k"], .unprocessableContent, "MB327"),
            ]
            for (body, status, code) in cases {
                let reply = try await client.call(.post, "/admin/v1/tenants/acme/sources", headers: node.adminHeaders, json: body)
                XCTAssertEqual(reply.status, status, "\(body.jsonString): \(String(buffer: reply.body))")
                XCTAssertEqual(reply.code, code, "\(body.jsonString): \(String(buffer: reply.body))")
                XCTAssertFalse(String(buffer: reply.body).contains("postgres@"), "no credentials in errors")
            }
            let list = try await client.call(.get, "/admin/v1/tenants/acme/sources", headers: node.adminHeaders)
            XCTAssertEqual(list.json, [], "nothing half-stored")
            let ok = try await client.call(
                .post, "/admin/v1/tenants/acme/sources", headers: node.adminHeaders,
                json: ["name": "db", "kind": "supabase", "url": "https://x.supabase.co", "serviceKey": "k", "dbUrl": .string(database)])
            XCTAssertEqual(ok.status, .created, String(buffer: ok.body))
            let again = try await client.call(
                .post, "/admin/v1/tenants/acme/sources", headers: node.adminHeaders, json: ["name": "db", "kind": "postgres", "url": .string(database)])
            XCTAssertEqual(again.code, "MB304")
            let unknownTenant = try await client.call(
                .post, "/admin/v1/tenants/ghost/sources", headers: node.adminHeaders, json: ["name": "db", "kind": "postgres", "url": .string(database)])
            XCTAssertEqual(unknownTenant.code, "MB300")
        }
    }

    // MARK: - Reads

    func testReadsMatchTheDatabase() async throws {
        try await Self.withSource { setup, client in
            let cases: [(String, String)] = [
                ("/Authors?select=Id,FullName&order=Id", #"SELECT "Id", "FullName" FROM "Authors" ORDER BY "Id""#),
                ("/Authors?select=FullName,mood&mood=eq.happy&order=FullName.desc", #"SELECT "FullName", mood FROM "Authors" WHERE mood = 'happy' ORDER BY "FullName" DESC"#),
                ("/posts?select=id&tags=cs.{math}&order=id", "SELECT id FROM posts WHERE tags @> '{math}' ORDER BY id"),
                ("/posts?select=id,lang:meta->>lang&meta->>lang=eq.en&order=id", "SELECT id, meta->>'lang' AS lang FROM posts WHERE meta->>'lang' = 'en' ORDER BY id"),
                ("/posts?select=id,score&order=score.asc.nullsfirst,id", "SELECT id, score FROM posts ORDER BY score ASC NULLS FIRST, id"),
                ("/posts?select=id&title=fts.Computing&order=id", "SELECT id FROM posts WHERE to_tsvector(title) @@ to_tsquery('Computing') ORDER BY id"),
                ("/posts?select=id&title=match.^C&order=id", "SELECT id FROM posts WHERE title ~ '^C' ORDER BY id"),
                ("/posts?select=id&or=(score.gte.9,and(published.is.false,title.ilike.*poet*))&order=id", "SELECT id FROM posts WHERE score >= 9 OR (published IS FALSE AND title ILIKE '%poet%') ORDER BY id"),
                ("/posts?select=id&id=not.in.(1,2)&editor_id=not.is.null&order=id", "SELECT id FROM posts WHERE id NOT IN (1,2) AND editor_id IS NOT NULL ORDER BY id"),
                ("/posts?select=id&score=isdistinct.7&order=id", "SELECT id FROM posts WHERE score IS DISTINCT FROM 7 ORDER BY id"),
                ("/posts?select=id&title=like(any).{*Engine*,*Numbers}&order=id", "SELECT id FROM posts WHERE title LIKE ANY('{%Engine%,%Numbers}') ORDER BY id"),
                ("/published_posts?select=id,title&order=id", "SELECT id, title FROM published_posts ORDER BY id"),
                ("/posts?select=id,created_at::text&id=eq.1", "SELECT id, created_at::text FROM posts WHERE id = 1"),
                ("/posts?select=title,author:Authors!posts_author_id_fkey(FullName)&order=id&limit=2",
                 #"SELECT p.title, json_build_object('FullName', a."FullName") AS author FROM posts p JOIN "Authors" a ON a."Id" = p.author_id ORDER BY p.id LIMIT 2"#),
                ("/Authors?select=FullName,profiles(bio)&order=Id",
                 #"SELECT a."FullName", (SELECT json_build_object('bio', bio) FROM profiles WHERE author_id = a."Id") AS profiles FROM "Authors" a ORDER BY a."Id""#),
                ("/posts?select=id,labels(name)&order=id&labels.order=name",
                 "SELECT p.id, (SELECT coalesce(json_agg(json_build_object('name', l.name) ORDER BY l.name), '[]') FROM labels l JOIN post_labels pl ON pl.label_id = l.id WHERE pl.post_id = p.id) AS labels FROM posts p ORDER BY p.id"),
                ("/orgs?select=name,Authors!inner(FullName)&Authors.mood=eq.sad",
                 #"SELECT o.name, (SELECT json_agg(json_build_object('FullName', a."FullName")) FROM "Authors" a WHERE a.org_id = o.id AND a.mood = 'sad') AS "Authors" FROM orgs o WHERE EXISTS (SELECT 1 FROM "Authors" a WHERE a.org_id = o.id AND a.mood = 'sad')"#),
            ]
            for (path, query) in cases {
                let reply = try await client.call(.get, "/t/blog/rest/v1" + path, headers: setup.headers())
                XCTAssertEqual(reply.status, .ok, "\(path): \(String(buffer: reply.body))")
                let expected = try await setup.sql(query)
                XCTAssertEqual(reply.json.map(RestConformanceTests.normalised), RestConformanceTests.normalised(expected), path)
            }
            let ambiguous = try await client.call(.get, "/t/blog/rest/v1/posts?select=title,Authors(FullName)", headers: setup.headers())
            XCTAssertEqual(ambiguous.status, .multipleChoices)
            XCTAssertEqual(ambiguous.code, "PGRST201")
            let otherSchema = try await client.call(.get, "/t/blog/rest/v1/Notes", headers: setup.headers())
            XCTAssertEqual(otherSchema.code, "PGRST205", "only the registered schemas are exposed")
        }
    }

    func testRangesCountsMediaTypesAndHead() async throws {
        try await Self.withSource { setup, client in
            let ranged = try await client.call(.get, "/t/blog/rest/v1/posts?select=id&order=id", headers: setup.headers([.range: "1-2", .prefer: "count=exact"]))
            XCTAssertEqual(ranged.status, .partialContent)
            XCTAssertEqual(ranged.headers[.contentRange], "1-2/5")
            XCTAssertEqual(ranged.headers[.preferenceApplied], "count=exact")
            XCTAssertEqual(ranged.json, [["id": 2], ["id": 3]])
            let head = try await client.call(.head, "/t/blog/rest/v1/posts?published=is.true", headers: setup.headers([.prefer: "count=exact"]))
            XCTAssertEqual(head.headers[.contentRange], "0-3/4")
            XCTAssertEqual(head.body.readableBytes, 0)
            let estimated = try await client.call(.get, "/t/blog/rest/v1/posts?select=id&limit=1", headers: setup.headers([.prefer: "count=estimated"]))
            XCTAssertEqual(estimated.headers[.contentRange], "0-0/5", "a small table is counted exactly")
            let planned = try await client.call(.get, "/t/blog/rest/v1/posts?select=id&limit=1", headers: setup.headers([.prefer: "count=planned"]))
            XCTAssertEqual(planned.headers[.preferenceApplied], "count=planned")
            let plannedTotal = planned.headers[.contentRange]?.split(separator: "/").last.flatMap { Int($0) }
            XCTAssertNotNil(plannedTotal, "the planner's estimate: \(planned.headers[.contentRange] ?? "")")
            let empty = try await client.call(.get, "/t/blog/rest/v1/posts?id=eq.999", headers: setup.headers())
            XCTAssertEqual(empty.headers[.contentRange], "*/*")
            XCTAssertEqual(empty.json, [])

            let csv = try await client.call(.get, "/t/blog/rest/v1/orgs?order=id", headers: setup.headers([.accept: "text/csv"]))
            XCTAssertEqual(csv.headers[.contentType], "text/csv; charset=utf-8")
            XCTAssertEqual(String(buffer: csv.body), "id,name\n1,Acme\n2,Globex\n")
            let one = try await client.call(.get, "/t/blog/rest/v1/orgs?id=eq.2", headers: setup.headers([.accept: "application/vnd.pgrst.object+json"]))
            XCTAssertEqual(one.json, ["id": 2, "name": "Globex"])
            let many = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: setup.headers([.accept: "application/vnd.pgrst.object+json"]))
            XCTAssertEqual(many.status, .notAcceptable)
            XCTAssertEqual(many.code, "PGRST116")
            let xml = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: setup.headers([.accept: "application/xml"]))
            XCTAssertEqual(xml.status, .notAcceptable)
            let badRange = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: setup.headers([.range: "5-1"]))
            XCTAssertEqual(badRange.status, .rangeNotSatisfiable)
            let hugeRange = try await client.call(.get, "/t/blog/rest/v1/orgs?select=id", headers: setup.headers([.range: "0-9223372036854775807"]))
            XCTAssertEqual(hugeRange.status, .ok, "an enormous range is just the whole table")
            let keyInQuery = try await client.call(.get, "/t/blog/rest/v1/orgs?select=id&order=id&apikey=\(setup.service)", headers: [.authorization: "Bearer \(setup.service)"])
            XCTAssertEqual(keyInQuery.json, [["id": 1], ["id": 2]], "apikey in the query string is a credential, not a filter")
        }
    }

    // MARK: - Writes

    func testWritesAndTheirStatuses() async throws {
        try await Self.withSource { setup, client in
            let base = "/t/blog/rest/v1"
            let bulk = try await client.call(
                .post, base + "/labels?select=id,name", headers: setup.headers([.prefer: "return=representation"]),
                json: [["id": 10, "name": "ten"], ["id": 11, "name": "eleven"]])
            XCTAssertEqual(bulk.status, .created)
            XCTAssertEqual(bulk.json, [["id": 10, "name": "ten"], ["id": 11, "name": "eleven"]])
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM labels WHERE id >= 10"), "2")

            let minimal = try await client.call(.post, base + "/labels", headers: setup.headers(), json: ["id": 12, "name": "twelve"])
            XCTAssertEqual(minimal.status, .created)
            XCTAssertEqual(minimal.body.readableBytes, 0)
            let located = try await client.call(.post, base + "/labels", headers: setup.headers([.prefer: "return=headers-only"]), json: ["id": 13, "name": "x"])
            XCTAssertEqual(located.headers[.location], "/labels?id=eq.13")

            let upsert = try await client.call(
                .post, base + "/labels", headers: setup.headers([.prefer: "return=representation,resolution=merge-duplicates"]),
                json: [["id": 10, "name": "TEN"], ["id": 14, "name": "fourteen"]])
            XCTAssertEqual(upsert.status, .created, String(buffer: upsert.body))
            XCTAssertEqual(upsert.headers[.preferenceApplied]?.contains("resolution=merge-duplicates"), true)
            try await assertEqual(try await setup.scalar("SELECT name FROM labels WHERE id = 10"), "TEN")
            let ignore = try await client.call(
                .post, base + "/labels", headers: setup.headers([.prefer: "resolution=ignore-duplicates"]), json: ["id": 10, "name": "ignored"])
            XCTAssertEqual(ignore.status, .created)
            try await assertEqual(try await setup.scalar("SELECT name FROM labels WHERE id = 10"), "TEN")

            let put = try await client.call(.put, base + "/labels?id=eq.20", headers: setup.headers([.prefer: "return=representation"]), json: ["id": 20, "name": "twenty"])
            XCTAssertEqual(put.status, .ok, String(buffer: put.body))
            let putMismatch = try await client.call(.put, base + "/labels?id=eq.21", headers: setup.headers(), json: ["id": 22, "name": "x"])
            XCTAssertEqual(putMismatch.code, "PGRST115")

            let patch = try await client.call(
                .patch, base + "/posts?author_id=eq.1&select=id,published", headers: setup.headers([.prefer: "return=representation"]),
                json: ["published": true])
            XCTAssertEqual(patch.status, .ok)
            XCTAssertEqual(Set(patch.json?.arrayValue ?? []), [["id": 1, "published": true], ["id": 2, "published": true]])
            let patchMinimal = try await client.call(.patch, base + "/posts?id=eq.5", headers: setup.headers(), json: ["score": 1.5])
            XCTAssertEqual(patchMinimal.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT score FROM posts WHERE id = 5"), "1.50")

            let deleted = try await client.call(.delete, base + "/labels?id=gte.10&select=id", headers: setup.headers([.prefer: "return=representation"]))
            XCTAssertEqual(deleted.status, .ok)
            XCTAssertEqual(deleted.json?.arrayValue?.count, 6)
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM labels WHERE id >= 10"), "0")

            let defaults = try await client.call(
                .post, base + "/posts?select=title,published,tags", headers: setup.headers([.prefer: "return=representation,missing=default"]),
                json: [["author_id": 1, "title": "With defaults"], ["author_id": 2, "title": "Explicit", "published": true, "tags": ["x", "y"]]])
            XCTAssertEqual(defaults.status, .created, String(buffer: defaults.body))
            XCTAssertEqual(defaults.json, [
                ["title": "With defaults", "published": false, "tags": []],
                ["title": "Explicit", "published": true, "tags": ["x", "y"]],
            ])
            XCTAssertEqual(defaults.headers[.preferenceApplied]?.contains("missing=default"), true)
            let rolledBack = try await client.call(
                .post, base + "/labels", headers: setup.headers([.prefer: "tx=rollback,return=representation"]), json: ["id": 30, "name": "ghost"])
            XCTAssertEqual(rolledBack.status, .created)
            XCTAssertEqual(rolledBack.json, [["id": 30, "name": "ghost"]])
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM labels WHERE id = 30"), "0", "tx=rollback leaves nothing")

            // Database errors keep their SQLSTATE and get PostgREST's status.
            let errors: [(HTTPRequest.Method, String, JSONValue, HTTPResponse.Status, String)] = [
                (.post, "/labels", ["id": 1, "name": "dup"], .conflict, "23505"),
                (.post, "/posts", ["author_id": 999, "title": "x"], .conflict, "23503"),
                (.post, "/labels", ["id": 40], .badRequest, "23502"),
                (.post, "/posts", ["author_id": 1, "title": ""], .badRequest, "23514"),
                (.post, "/posts", ["author_id": "abc", "title": "x"], .badRequest, "22P02"),
                (.post, "/Authors", ["Id": 99, "FullName": "x"], .badRequest, "428C9"),
                (.post, "/labels", ["id": 41, "nope": "x"], .badRequest, "PGRST204"),
                (.post, "/labels", [["id": 42, "name": "a"], ["id": 43]], .badRequest, "PGRST102"),
                (.post, "/labels", "not an object", .badRequest, "MB100"),
                (.patch, "/labels?id=eq.1", ["ghost": 1], .badRequest, "PGRST204"),
            ]
            for (method, path, body, status, code) in errors {
                let reply = try await client.call(method, base + path, headers: setup.headers(), json: body)
                XCTAssertEqual(reply.status, status, "\(path) \(body.jsonString): \(String(buffer: reply.body))")
                XCTAssertEqual(reply.code, code, "\(path) \(body.jsonString): \(String(buffer: reply.body))")
            }
            let twoAsOne = try await client.call(
                .post, base + "/labels", headers: setup.headers([.accept: "application/vnd.pgrst.object+json", .prefer: "return=representation"]),
                json: [["id": 70, "name": "a"], ["id": 71, "name": "b"]])
            XCTAssertEqual(twoAsOne.status, .notAcceptable)
            XCTAssertEqual(twoAsOne.code, "PGRST116")
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM labels WHERE id IN (70, 71)"), "0", "rolled back")
            let oneAsOne = try await client.call(
                .post, base + "/labels", headers: setup.headers([.accept: "application/vnd.pgrst.object+json", .prefer: "return=representation"]),
                json: ["id": 72, "name": "c"])
            XCTAssertEqual(oneAsOne.json, ["id": 72, "name": "c"])
            _ = try await client.call(.delete, base + "/labels?id=eq.72", headers: setup.headers())
            let widening = try await client.call(.delete, base + "/labels?limit=1&order=id", headers: setup.headers())
            XCTAssertEqual(widening.code, "PGRST100", "limit on DELETE is refused, not ignored")
            let emptyPatch = try await client.call(.patch, base + "/labels?id=eq.1", headers: setup.headers(), json: [:])
            XCTAssertEqual(emptyPatch.code, "PGRST100")
            let broken = try await client.call(.post, base + "/labels", headers: setup.headers(), raw: "{\"id\": 1,")
            XCTAssertEqual(broken.code, "MB100")
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM labels"), "3", "no failed write left anything behind")
        }
    }

    // MARK: - Functions

    func testFunctions() async throws {
        try await Self.withSource { setup, client in
            let base = "/t/blog/rest/v1/rpc"
            let posted = try await client.call(.post, base + "/add_numbers", headers: setup.headers(), json: ["a": 1, "b": 2])
            XCTAssertEqual(posted.json, 3)
            let defaulted = try await client.call(.get, base + "/add_numbers?a=5", headers: setup.headers())
            XCTAssertEqual(defaulted.json, 15)
            let setOf = try await client.call(.post, base + "/posts_by?select=id,title&order=id.desc&limit=1", headers: setup.headers(), json: ["author": 1])
            XCTAssertEqual(setOf.json, [["id": 2, "title": "Poetical Science"]])
            let filtered = try await client.call(.get, base + "/posts_by?author=2&select=id&score=gt.9", headers: setup.headers())
            XCTAssertEqual(filtered.json, [["id": 5]])
            let scalars = try await client.call(.get, base + "/tag_list", headers: setup.headers())
            let tags = try await setup.sql("SELECT * FROM tag_list() t")
            XCTAssertEqual(scalars.json, .array(tags.arrayValue?.compactMap { $0["t"] } ?? []))
            let card = try await client.call(.post, base + "/author_card?select=FullName", headers: setup.headers(), json: ["author": 3])
            XCTAssertEqual(card.json, ["FullName": "Grace Hopper"])
            let array = try await client.call(.post, base + "/sum_array", headers: setup.headers(), json: ["xs": [1, 2, 3]])
            XCTAssertEqual(array.json, 6)
            let void = try await client.call(.post, base + "/touch_post", headers: setup.headers(), json: ["post": 2])
            XCTAssertEqual(void.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT score FROM posts WHERE id = 2"), "1.00")
            let volatileByGet = try await client.call(.get, base + "/touch_post?post=2", headers: setup.headers())
            XCTAssertEqual(volatileByGet.status, .methodNotAllowed)
            let unknown = try await client.call(.post, base + "/nope", headers: setup.headers(), json: [:])
            XCTAssertEqual(unknown.code, "PGRST202")
            let wrongArgs = try await client.call(.post, base + "/add_numbers", headers: setup.headers(), json: ["z": 1])
            XCTAssertEqual(wrongArgs.code, "PGRST202")
        }
    }

    // MARK: - Access

    func testOnlyTheServiceRoleReachesDataAndOnlyItsOwnTenant() async throws {
        try await Self.withSource { setup, client in
            let anon = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: [.apikey: setup.anon])
            XCTAssertEqual(anon.status, .unauthorized)
            XCTAssertEqual(anon.code, "42501")
            let user = try await setup.node.services.directory.keyRing(for: "blog").sign(["role": "authenticated", "sub": "u1"])
            let authenticated = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: [.apikey: setup.anon, .authorization: "Bearer \(user)"])
            XCTAssertEqual(authenticated.status, .forbidden)

            let named = try await client.call(.get, "/t/blog/sources/main/rest/v1/orgs?select=name&order=id", headers: setup.headers())
            XCTAssertEqual(named.json, [["name": "Acme"], ["name": "Globex"]])
            let missing = try await client.call(.get, "/t/blog/sources/other/rest/v1/orgs", headers: setup.headers())
            XCTAssertEqual(missing.code, "MB303")

            let other = try await client.createTenant(setup.node, "other")
            let noSource = try await client.call(.get, "/t/other/rest/v1/orgs", headers: [.apikey: other.service, .authorization: "Bearer \(other.service)"])
            XCTAssertEqual(noSource.code, "MB303", "another tenant never reaches this tenant's source")
            let crossKey = try await client.call(.get, "/t/other/rest/v1/orgs", headers: setup.headers())
            XCTAssertEqual(crossKey.status, .unauthorized)

            let document = try await client.call(.get, "/t/blog/rest/v1/", headers: setup.headers())
            XCTAssertNotNil(document.json?["paths"]?["/posts"]?["get"])
            XCTAssertNotNil(document.json?["paths"]?["/rpc/add_numbers"]?["post"])
            XCTAssertNotNil(document.json?["paths"]?["/published_posts"]?["delete"], "a simple view is auto-updatable")
            XCTAssertNotNil(document.json?["paths"]?["/author_stats"]?["get"])
            XCTAssertNil(document.json?["paths"]?["/author_stats"]?["delete"], "an aggregate view offers no writes")
            XCTAssertNil(document.json?["paths"]?["/author_stats"]?["post"])
            let refused = try await client.call(.delete, "/t/blog/rest/v1/author_stats?author_id=eq.1", headers: setup.headers())
            XCTAssertEqual(refused.status, .methodNotAllowed)
            XCTAssertEqual(document.json?["components"]?["schemas"]?["Authors"]?["properties"]?["mood"]?["enum"], ["happy", "sad", "meh"])
        }
    }
}

/// Builds sibling database URLs from a test database URL.
struct PostgresURLParts {
    let base: String
    init(_ url: String) throws {
        guard let slash = url.range(of: "/", options: .backwards, range: url.range(of: "@")!.upperBound..<url.endIndex) else {
            throw URLError(.badURL)
        }
        base = String(url[..<slash.lowerBound])
    }
    func withDatabase(_ name: String) -> String { "\(base)/\(name)?sslmode=disable" }
    func withUser(_ credentials: String, database: String) -> String {
        let host = base[base.range(of: "@")!.upperBound...]
        return "postgresql://\(credentials)@\(host)/\(database)?sslmode=disable"
    }
}

extension RestAPITests {
    /// A full pool answers 503 after the acquisition timeout instead of hanging, and a statement
    /// past the tenant's deadline is cancelled by the database and answered 504.
    func testPoolExhaustionAndStatementTimeout() async throws {
        let database = try await TestServices.freshDatabase(prefix: "pool")
        try TestServices.runScript(Self.fixture, database: database)
        let node = try await TestNode.make()
        try await node.application().test(.router) { client in
            let keys = try await client.createTenant(node, "pool", limits: ["requestTimeoutMs": 2000])
            let registered = try await client.call(
                .post, "/admin/v1/tenants/pool/sources", headers: node.adminHeaders,
                json: ["name": "main", "kind": "postgres", "url": .string(database), "maxConnections": 1, "acquireTimeoutMs": 200])
            XCTAssertEqual(registered.status, .created, String(buffer: registered.body))
            let headers: HTTPFields = [.apikey: keys.service, .authorization: "Bearer \(keys.service)"]
            async let holder = client.call(.post, "/t/pool/rest/v1/rpc/slow", headers: headers, json: ["ms": 1000])
            try await Task.sleep(for: .milliseconds(300))
            let waiting = try await client.call(.get, "/t/pool/rest/v1/orgs", headers: headers)
            XCTAssertEqual(waiting.status, .serviceUnavailable, String(buffer: waiting.body))
            XCTAssertEqual(waiting.code, "MB600")
            let held = try await holder
            XCTAssertEqual(held.json, 1000)
            let free = try await client.call(.get, "/t/pool/rest/v1/orgs?select=id&order=id", headers: headers)
            XCTAssertEqual(free.json, [["id": 1], ["id": 2]], "the pool recovers once the connection is back")

            let tooSlow = try await client.call(.post, "/t/pool/rest/v1/rpc/slow", headers: headers, json: ["ms": 5000])
            XCTAssertEqual(tooSlow.status, .gatewayTimeout, String(buffer: tooSlow.body))
            let after = try await client.call(.get, "/t/pool/rest/v1/orgs?select=id&order=id", headers: headers)
            XCTAssertEqual(after.status, .ok, "the cancelled statement gave its connection back")
        }
    }
}

extension RestAPITests {
    /// Junk in the URL is a 4xx with the error shape, never a 5xx, a hang or a crash.
    func testHostileURLsAreClientErrors() async throws {
        try await Self.withSource { setup, client in
            let deep = String(repeating: "and(", count: 5_000) + "id.eq.1" + String(repeating: ")", count: 5_000)
            let paths = [
                "/orgs?name=eq.%FF%FE", "/orgs?id=eq.%00", "/orgs?or=(id.eq.1", "/orgs?or=\(deep)", "/orgs?select=(((", "/orgs?id=in.(1,2",
                "/orgs?id=eq.notanumber", "/orgs?id=gt", "/orgs?order=id.up", "/orgs?limit=-5", "/orgs?select=name::text;drop",
                "/orgs?%22id%22=eq.1", "/orgs?id->x=eq.1", "/posts?meta->>=eq.x", "/orgs?select=nope(*)", "/orgs?ghost.name=eq.1",
            ]
            for path in paths {
                let reply = try await client.call(.get, "/t/blog/rest/v1" + path, headers: setup.headers())
                XCTAssertTrue((200..<500).contains(reply.status.code), "\(path.prefix(60)): \(reply.status) \(String(buffer: reply.body).prefix(200))")
                if reply.status.code >= 400 {
                    XCTAssertNotNil(reply.code, "\(path.prefix(60)) answers the error shape")
                }
            }
            let huge = "/orgs?id=in.(" + (1...20_000).map(String.init).joined(separator: ",") + ")&select=id&order=id"
            let many = try await client.call(.get, "/t/blog/rest/v1" + huge, headers: setup.headers())
            XCTAssertEqual(many.json, [["id": 1], ["id": 2]])
        }
    }

    /// When the database drops the source's connections, the pool reconnects by itself.
    func testSourceRecoversWhenItsConnectionsAreKilled() async throws {
        try await Self.withSource { setup, client in
            let first = try await client.call(.get, "/t/blog/rest/v1/orgs?select=id&order=id", headers: setup.headers())
            XCTAssertEqual(first.status, .ok)
            let name = try XCTUnwrap(setup.database.split(separator: "/").last?.split(separator: "?").first).description
            _ = try await TestServices.scalar(
                "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE datname = '\(name)' AND pid <> pg_backend_pid()",
                database: setup.database)
            let recovered = try await waitUntil(timeout: .seconds(10)) {
                try await client.call(.get, "/t/blog/rest/v1/orgs?select=id&order=id", headers: setup.headers()).status == .ok
            }
            XCTAssertTrue(recovered)
        }
    }
}

extension RestAPITests {
    /// Statements run prepared, once per connection (visible in the connection's own
    /// `pg_prepared_statements`), and `preparedStatements: false` runs them unnamed. A statement
    /// whose first use failed — preparing against a model the database no longer matches, or
    /// cut by statement_timeout while waiting for a lock — works on the same connection once the
    /// database is back.
    func testPreparedStatementsAndFailedFirstUses() async throws {
        for prepared in [true, false] {
            let database = try await TestServices.freshDatabase(prefix: "prep")
            try TestServices.runScript(Self.fixture, database: database)
            try await TestServices.withClient(try .init(database)) { db in
                _ = try await db.query("CREATE FUNCTION prepared_here() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM pg_prepared_statements'")
            }
            let node = try await TestNode.make()
            try await node.application().test(.router) { client in
                let keys = try await client.createTenant(node, "prep", limits: ["requestTimeoutMs": 2000])
                let registered = try await client.call(
                    .post, "/admin/v1/tenants/prep/sources", headers: node.adminHeaders,
                    json: ["name": "main", "kind": "postgres", "url": .string(database), "maxConnections": 1, "preparedStatements": .bool(prepared)])
                XCTAssertEqual(registered.status, .created, String(buffer: registered.body))
                let headers: HTTPFields = [.apikey: keys.service, .authorization: "Bearer \(keys.service)"]
                let first = try await client.call(.get, "/t/prep/rest/v1/orgs?select=id&order=id", headers: headers)
                XCTAssertEqual(first.json, [["id": 1], ["id": 2]])
                let held = try await client.call(.post, "/t/prep/rest/v1/rpc/prepared_here", headers: headers, json: [:])
                let count = held.json?.intValue ?? -1
                if prepared { XCTAssertGreaterThanOrEqual(count, 2, "the read and this call are prepared on the connection") } else { XCTAssertEqual(count, 0) }

                try await TestServices.withClient(try .init(database)) { db in
                    _ = try await db.query("ALTER TABLE orgs RENAME COLUMN name TO title")
                }
                // A statement never used before, naming a column that is gone: fails to prepare.
                let broken = try await client.call(.get, "/t/prep/rest/v1/orgs?select=id,name&order=id", headers: headers)
                XCTAssertEqual(broken.status, .badRequest, String(buffer: broken.body))
                XCTAssertEqual(broken.code, "42703")
                try await TestServices.withClient(try .init(database)) { db in
                    _ = try await db.query("ALTER TABLE orgs RENAME COLUMN title TO name")
                }
                let same = try await client.call(.get, "/t/prep/rest/v1/orgs?select=id,name&order=id", headers: headers)
                XCTAssertEqual(same.status, .ok, "prepared=\(prepared): works again once the database matches: \(String(buffer: same.body))")

                // A migration holds the table: a new statement waits for the lock until
                // statement_timeout (90 % of the tenant's 2 s deadline) cuts it.
                try await TestServices.withClient(try .init(database)) { db in
                    try await db.withConnection { connection in
                        _ = try await connection.query("BEGIN", logger: Logger(label: "test"))
                        _ = try await connection.query("LOCK TABLE orgs IN ACCESS EXCLUSIVE MODE", logger: Logger(label: "test"))
                        let waited = try await client.call(.get, "/t/prep/rest/v1/orgs?select=id,name&id=eq.1", headers: headers)
                        XCTAssertEqual(waited.status, .gatewayTimeout, String(buffer: waited.body))
                        _ = try await connection.query("ROLLBACK", logger: Logger(label: "test"))
                    }
                }
                let released = try await client.call(.get, "/t/prep/rest/v1/orgs?select=id,name&id=eq.1", headers: headers)
                XCTAssertEqual(released.status, .ok, "prepared=\(prepared): the lock is gone: \(String(buffer: released.body))")

                let bad = try await client.call(
                    .post, "/admin/v1/tenants/prep/sources", headers: node.adminHeaders,
                    json: ["name": "other", "kind": "postgres", "url": .string(database), "preparedStatements": "yes"])
                XCTAssertEqual(bad.status, .badRequest)
            }
        }
    }
}
