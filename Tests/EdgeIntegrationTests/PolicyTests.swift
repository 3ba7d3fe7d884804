import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Runtime
import TestSupport
import XCTest
@testable import Edge
@testable import TenantRuntime

/// Row and column policies compiled into the SQL of every read and write, checked against what the
/// database says each caller should see.
final class PolicyTests: XCTestCase {
    static let policies: JSONValue = [
        "policies": [
            ["entity": "posts", "role": "anon", "action": "read", "columns": ["id", "title", "published"],
             "when": ["published": ["eq": true]]],
            ["entity": "posts", "role": "authenticated", "action": "read",
             "when": ["or": [["author_id": ["eq": ["var": "auth.claims.author_id"]]], ["published": ["eq": true]]]]],
            ["entity": "posts", "role": "authenticated", "action": "create", "columns": ["id", "title", "tags", "published"],
             "set": ["author_id": ["var": "auth.claims.author_id"]], "check": ["published": ["eq": false]]],
            ["entity": "posts", "role": "authenticated", "action": "update", "columns": ["title", "published", "author_id"],
             "when": ["author_id": ["eq": ["var": "auth.claims.author_id"]]]],
            ["entity": "posts", "role": "authenticated", "action": "delete",
             "when": ["and": [["author_id": ["eq": ["var": "auth.claims.author_id"]]], ["published": ["eq": false]]]]],
            ["entity": "Authors", "role": "authenticated", "action": "read", "columns": ["Id", "FullName", "org_id"],
             "when": ["orgs": ["name": ["eq": ["var": "auth.claims.org"]]]]],
            ["entity": "labels", "role": "authenticated", "action": "read"],
            ["entity": "posts", "role": "anon", "action": "update", "columns": ["title"], "when": ["published": ["eq": true]]],
            ["entity": "posts_by", "role": "authenticated", "action": "execute"],
            ["entity": "add_numbers", "role": "anon", "action": "execute"],
        ],
    ]

    struct Setup {
        let node: TestNode
        let database: String
        let service: String
        let anon: String
        let ada: String  // author 1, org Acme
        let grace: String  // author 3, org Globex

        func scalar(_ query: String) async throws -> String? {
            try await TestServices.scalar("SELECT (\(query))::text", database: database)
        }
        func sql(_ query: String) async throws -> JSONValue {
            let text = try await TestServices.scalar("SELECT coalesce(json_agg(o), '[]')::text FROM (\(query)) o", database: database)
            return try JSONValue.parse(Array((text ?? "null").utf8))
        }
        func user(_ token: String) -> HTTPFields { [.apikey: anon, .authorization: "Bearer \(token)"] }
        var anonymous: HTTPFields { [.apikey: anon] }
    }

    static func withPolicies(_ body: @escaping @Sendable (Setup, any TestClientProtocol) async throws -> Void) async throws {
        try await TestNode.withFixtureSource(RestAPITests.fixture, slug: "blog", prefix: "pol") { node, database, keys, client in
            let put = try await client.call(.put, "/admin/v1/tenants/blog/policies", headers: node.adminHeaders, json: policies)
            XCTAssertEqual(put.status, .ok, String(buffer: put.body))
            let ring = try await node.services.directory.keyRing(for: "blog")
            let exp = JSONValue.integer(Int64(Date().timeIntervalSince1970) + 600)
            let ada = ring.sign(["role": "authenticated", "sub": "u-ada", "author_id": 1, "org": "Acme", "exp": exp])
            let grace = ring.sign(["role": "authenticated", "sub": "u-grace", "author_id": 3, "org": "Globex", "exp": exp])
            try await body(Setup(node: node, database: database, service: keys.service, anon: keys.anon, ada: ada, grace: grace), client)
        }
    }

    func testPolicyDocumentsAreValidatedAgainstTheModel() async throws {
        try await Self.withPolicies { setup, client in
            let fetched = try await client.call(.get, "/admin/v1/tenants/blog/policies", headers: setup.node.adminHeaders)
            XCTAssertEqual(fetched.json, Self.policies)
            let bad: [(JSONValue, String)] = [
                (["policies": [["entity": "ghosts", "role": "anon", "action": "read"]]], "$.policies[0].entity"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "columns": ["nope"]]]], "$.policies[0].columns"),
                (["policies": [["entity": "posts", "role": "anon", "action": "peek"]]], "$.policies[0].action"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "when": ["title": ["resembles": "x"]]]]], "$.policies[0].when.title"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "when": ["author_id": ["in": 3]]]]], "$.policies[0].when.author_id.in"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "when": ["owner": ["var": "auth.password"]]]]], "$.policies[0].when.owner"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "check": ["published": ["eq": true]]]]], "$.policies[0].check"),
                (["policies": [["entity": "posts", "role": "anon", "action": "read", "extra": 1]]], "$.policies[0].extra"),
                (["rules": []], "$.rules"),
                (["policies": [["entity": "no_such_fn", "role": "anon", "action": "execute"]]], "$.policies[0].entity"),
                (["policies": [["entity": "posts", "role": "anon", "action": "create", "when": ["published": ["eq": false]]]]], "$.policies[0].when"),
                (["policies": [["entity": "add_numbers", "role": "anon", "action": "execute", "when": ["a": ["eq": 1]]]]], "$.policies[0].when"),
            ]
            for (document, path) in bad {
                let reply = try await client.call(.put, "/admin/v1/tenants/blog/policies", headers: setup.node.adminHeaders, json: document)
                XCTAssertEqual(reply.status, .badRequest, document.jsonString)
                XCTAssertEqual(reply.code, "MB106", document.jsonString)
                XCTAssertTrue(reply.json?["details"]?.stringValue?.hasPrefix(path) ?? false, "\(document.jsonString): \(String(buffer: reply.body))")
            }
            let still = try await client.call(.get, "/admin/v1/tenants/blog/policies", headers: setup.node.adminHeaders)
            XCTAssertEqual(still.json, Self.policies, "a refused PUT changes nothing")
        }
    }

    /// Each caller sees exactly the rows and columns the database says the policy allows.
    func testReadsSeeOnlyAllowedRowsAndColumns() async throws {
        try await Self.withPolicies { setup, client in
            let cases: [(String, HTTPFields, String, String)] = [
                ("anon, published only, allowed columns only", setup.anonymous, "/posts?order=id",
                 "SELECT id, title, published FROM posts WHERE published ORDER BY id"),
                ("ada: own posts and published ones", setup.user(setup.ada), "/posts?select=id,author_id&order=id",
                 "SELECT id, author_id FROM posts WHERE author_id = 1 OR published ORDER BY id"),
                ("grace: own posts and published ones", setup.user(setup.grace), "/posts?select=id&order=id",
                 "SELECT id FROM posts WHERE author_id = 3 OR published ORDER BY id"),
                ("ada: authors of her org, through a relation", setup.user(setup.ada), "/Authors?order=Id",
                 #"SELECT a."Id", a."FullName", a.org_id FROM "Authors" a JOIN orgs o ON o.id = a.org_id WHERE o.name = 'Acme' ORDER BY a."Id""#),
                ("grace: authors of her org", setup.user(setup.grace), "/Authors?select=FullName&order=Id",
                 #"SELECT a."FullName" FROM "Authors" a JOIN orgs o ON o.id = a.org_id WHERE o.name = 'Globex' ORDER BY a."Id""#),
                ("ada: embedded authors filtered by their own policy", setup.user(setup.ada),
                 "/posts?select=id,author:Authors!posts_author_id_fkey(FullName)&order=id",
                 #"SELECT p.id, (SELECT json_build_object('FullName', a."FullName") FROM "Authors" a JOIN orgs o ON o.id = a.org_id WHERE a."Id" = p.author_id AND o.name = 'Acme') AS author FROM posts p WHERE p.author_id = 1 OR p.published ORDER BY p.id"#),
                ("service role bypasses", [.apikey: setup.service, .authorization: "Bearer \(setup.service)"], "/posts?select=id&order=id",
                 "SELECT id FROM posts ORDER BY id"),
            ]
            for (name, headers, path, query) in cases {
                let reply = try await client.call(.get, "/t/blog/rest/v1" + path, headers: headers)
                XCTAssertEqual(reply.status, .ok, "\(name): \(String(buffer: reply.body))")
                let expected = try await setup.sql(query)
                XCTAssertEqual(reply.json.map(RestConformanceTests.normalised), RestConformanceTests.normalised(expected), name)
            }
            // Columns outside the allow-list are refused, not silently dropped.
            for path in ["/posts?select=id,meta", "/posts?score=gt.1", "/posts?order=score", "/posts?select=id&meta->>lang=eq.en"] {
                let reply = try await client.call(.get, "/t/blog/rest/v1" + path, headers: setup.anonymous)
                XCTAssertEqual(reply.status, .unauthorized, path)
                XCTAssertEqual(reply.code, "42501", path)
            }
            let noPolicy = try await client.call(.get, "/t/blog/rest/v1/orgs", headers: setup.user(setup.ada))
            XCTAssertEqual(noPolicy.status, .forbidden, "no policy means deny")
            let junctionWithoutPolicy = try await client.call(.get, "/t/blog/rest/v1/posts?select=id,labels(name)", headers: setup.user(setup.ada))
            XCTAssertEqual(junctionWithoutPolicy.status, .forbidden, "the junction table needs a read policy too")
            XCTAssertTrue(junctionWithoutPolicy.json?["message"]?.stringValue?.contains("post_labels") ?? false)
            let hiddenKey = try await client.call(.get, "/t/blog/rest/v1/posts?select=id,Authors!posts_author_id_fkey(FullName)", headers: setup.anonymous)
            XCTAssertEqual(hiddenKey.status, .unauthorized, "an embed must not join on a column the caller cannot read")
            let rpc = try await client.call(.post, "/t/blog/rest/v1/rpc/add_numbers", headers: setup.user(setup.ada), json: ["a": 1])
            XCTAssertEqual(rpc.status, .forbidden)
        }
    }

    func testWritesObeyWhenCheckAndPresets() async throws {
        try await Self.withPolicies { setup, client in
            let base = "/t/blog/rest/v1/posts"
            let before = try await setup.scalar("SELECT count(*) FROM posts")

            // A forged author_id is overridden by the preset… but author_id is not a writable column.
            let forged = try await client.call(.post, base, headers: setup.user(setup.ada), json: ["title": "Mine", "author_id": 2])
            XCTAssertEqual(forged.status, .forbidden, String(buffer: forged.body))
            let created = try await client.call(
                .post, base + "?select=title,author_id,published", headers: setup.user(setup.ada).merging([.prefer: "return=representation"]),
                json: ["title": "Draft by Ada"])
            XCTAssertEqual(created.status, .created, String(buffer: created.body))
            XCTAssertEqual(created.json, [["title": "Draft by Ada", "author_id": 1, "published": false]])
            // The check: a new post must not be published.
            let published = try await client.call(.post, base, headers: setup.user(setup.ada), json: ["title": "Loud", "published": true])
            XCTAssertEqual(published.status, .forbidden)
            XCTAssertEqual(published.code, "42501")
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts WHERE title = 'Loud'"), "0", "a refused insert leaves nothing")
            let anonInsert = try await client.call(.post, base, headers: setup.anonymous, json: ["title": "x"])
            XCTAssertEqual(anonInsert.status, .unauthorized)

            // Updates reach only the caller's rows, and cannot move a row out of reach.
            let others = try await client.call(.patch, base + "?id=eq.3", headers: setup.user(setup.ada), json: ["title": "Hijacked"])
            XCTAssertEqual(others.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 3"), "Computing Machinery")
            let own = try await client.call(.patch, base + "?id=eq.1", headers: setup.user(setup.ada), json: ["title": "Notes, revised"])
            XCTAssertEqual(own.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 1"), "Notes, revised")
            let giveAway = try await client.call(.patch, base + "?id=eq.1", headers: setup.user(setup.ada), json: ["author_id": 2])
            XCTAssertEqual(giveAway.status, .forbidden, "the update would move the row out of the user's reach")
            try await assertEqual(try await setup.scalar("SELECT author_id FROM posts WHERE id = 1"), "1")
            let hidden = try await client.call(.patch, base + "?id=eq.1", headers: setup.user(setup.ada), json: ["score": 1])
            XCTAssertEqual(hidden.status, .forbidden, "score is not an updatable column")

            // Filters on PATCH/DELETE reveal values: they need readable columns.
            let probe = try await client.call(.patch, base + "?score=gt.1", headers: setup.anonymous.merging([.prefer: "tx=rollback"]), json: ["title": "x"])
            XCTAssertEqual(probe.status, .unauthorized, String(buffer: probe.body))
            let anonEdit = try await client.call(.patch, base + "?id=eq.3", headers: setup.anonymous, json: ["title": "Edited by anon"])
            XCTAssertEqual(anonEdit.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 3"), "Edited by anon")
            // Deletes: only own, unpublished rows.
            let publishedDelete = try await client.call(.delete, base + "?id=eq.1", headers: setup.user(setup.ada))
            XCTAssertEqual(publishedDelete.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts WHERE id = 1"), "1", "published rows stay")
            let draftDelete = try await client.call(.delete, base + "?id=eq.2", headers: setup.user(setup.ada))
            XCTAssertEqual(draftDelete.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts WHERE id = 2"), "0")
            let graceDelete = try await client.call(.delete, base + "?title=eq.Draft%20by%20Ada", headers: setup.user(setup.grace))
            XCTAssertEqual(graceDelete.status, .noContent)
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts WHERE title = 'Draft by Ada'"), "1", "not grace's to delete")
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts"), before, "one created, one deleted")
        }
    }

    func testUpsertsUpdateOnlyUnderTheUpdatePolicy() async throws {
        try await Self.withPolicies { setup, client in
            let base = "/t/blog/rest/v1/posts"
            let merge = setup.user(setup.ada).merging([.prefer: "resolution=merge-duplicates,return=representation"])
            // Ada's own draft: updated.
            let own = try await client.call(.post, base + "?select=id,title", headers: merge, json: [["id": 2, "title": "Poetical Science, 2nd ed."]])
            XCTAssertEqual(own.status, .created, String(buffer: own.body))
            XCTAssertEqual(own.json, [["id": 2, "title": "Poetical Science, 2nd ed."]])
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 2"), "Poetical Science, 2nd ed.")
            // Alan's post: the conflicting row is not Ada's to update, so it stays as it is.
            let others = try await client.call(.post, base + "?select=id", headers: merge, json: [["id": 3, "title": "Hijacked"]])
            XCTAssertEqual(others.json, [])
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 3"), "Computing Machinery")
            // Each row meets its own check: an updated row the update check, a new row the create check.
            let published = try await client.call(.post, base + "?select=id", headers: merge, json: [["id": 1, "title": "Notes, again", "published": true]])
            XCTAssertEqual(published.status, .created, String(buffer: published.body))
            let loud = try await client.call(.post, base, headers: merge, json: [["id": 100, "title": "Loud", "published": true]])
            XCTAssertEqual(loud.status, .forbidden)
            try await assertEqual(try await setup.scalar("SELECT count(*) FROM posts WHERE id = 100"), "0")
            let mixed = try await client.call(.post, base, headers: merge, json: [["id": 2, "title": "fine", "published": false], ["id": 101, "title": "Loud", "published": true]])
            XCTAssertEqual(mixed.status, .forbidden, "one bad row undoes the whole upsert")
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 2"), "Poetical Science, 2nd ed.")
            // tags may be set on create but not updated.
            let tags = try await client.call(.post, base, headers: merge, json: [["id": 2, "title": "t", "tags": ["x"]]])
            XCTAssertEqual(tags.status, .forbidden)
            XCTAssertTrue(String(buffer: tags.body).contains("tags"))
            // PUT is an upsert of one row, under the same rules.
            let put = try await client.call(.put, base + "?id=eq.2", headers: setup.user(setup.ada), json: ["id": 2, "title": "Put by Ada"])
            XCTAssertEqual(put.status, .noContent, String(buffer: put.body))
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 2"), "Put by Ada")
            _ = try await client.call(.put, base + "?id=eq.4", headers: setup.user(setup.ada), json: ["id": 4, "title": "Put over Grace"])
            try await assertEqual(try await setup.scalar("SELECT title FROM posts WHERE id = 4"), "Compilers")
            // Without an update policy, an upsert that may update is refused outright.
            let anon = try await client.call(
                .post, "/t/blog/rest/v1/labels", headers: setup.user(setup.grace).merging([.prefer: "resolution=merge-duplicates"]), json: [["id": 1, "name": "x"]])
            XCTAssertEqual(anon.status, .forbidden)
        }
    }

    func testFunctionsNeedAnExecutePolicyAndTheirRowsTheReadPolicy() async throws {
        try await Self.withPolicies { setup, client in
            let sum = try await client.call(.get, "/t/blog/rest/v1/rpc/add_numbers?a=2&b=3", headers: setup.anonymous)
            XCTAssertEqual(sum.status, .ok, String(buffer: sum.body))
            XCTAssertEqual(sum.json, 5)
            let tags = try await client.call(.get, "/t/blog/rest/v1/rpc/tag_list", headers: setup.anonymous)
            XCTAssertEqual(tags.status, .unauthorized)
            XCTAssertEqual(tags.code, "42501")
            let touch = try await client.call(.post, "/t/blog/rest/v1/rpc/touch_post", headers: setup.user(setup.ada), json: ["post": 1])
            XCTAssertEqual(touch.status, .forbidden)
            try await assertEqual(try await setup.scalar("SELECT score FROM posts WHERE id = 1"), "9.50", "a refused call runs nothing")
            // Grace may call posts_by, but sees Ada's posts only as her read policy allows: not the draft.
            let ada = try await client.call(.get, "/t/blog/rest/v1/rpc/posts_by?author=1&select=id", headers: setup.user(setup.grace))
            XCTAssertEqual(ada.status, .ok, String(buffer: ada.body))
            let visible = try await setup.sql("SELECT id FROM posts WHERE author_id = 1 AND (author_id = 3 OR published) ORDER BY id")
            XCTAssertEqual(ada.json, visible)
            let own = try await client.call(.get, "/t/blog/rest/v1/rpc/posts_by?author=1&select=id", headers: setup.user(setup.ada))
            XCTAssertEqual(own.json, [["id": 1], ["id": 2]])
        }
    }
}


extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}