import Foundation
import Runtime
import Tenancy
import XCTest
@testable import Connectors

/// The pieces of realtime that need no socket: wal2json output, `postgres_changes` filters, and
/// per-subscriber policy decisions.
final class RealtimeTests: XCTestCase {
    func testWal2JSONChangesBecomeEvents() throws {
        let insert = try Wal2JSONDecoder.decode(
            #"{"action":"I","timestamp":"2026-11-28 21:47:51.007303+00","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1},{"name":"j","type":"jsonb","value":"{\"k\": [1, 2]}"},{"name":"n","type":"text","value":null}]}"#,
            commitTimestamp: nil)
        XCTAssertEqual(insert?.kind, .insert)
        XCTAssertEqual(insert?.record["id"], .integer(1))
        XCTAssertEqual(insert?.record["j"], ["k": [1, 2]], "jsonb arrives as text and is sent as the document")
        XCTAssertEqual(insert?.record["n"], .null)
        XCTAssertEqual(insert?.commitTimestamp, "2026-11-28T21:47:51.007303+00:00")
        XCTAssertEqual(insert?.columns.map(\.type), ["integer", "jsonb", "text"])
        let delete = try Wal2JSONDecoder.decode(
            #"{"action":"D","schema":"s","table":"t","identity":[{"name":"id","type":"bigint","value":7}]}"#, commitTimestamp: "2026-01-01 00:00:00+00")
        XCTAssertEqual(delete?.kind, .delete)
        XCTAssertEqual(delete?.record, [:])
        XCTAssertEqual(delete?.oldRecord, ["id": 7])
        XCTAssertEqual(delete?.columns.map(\.name), ["id"])
        XCTAssertNil(try Wal2JSONDecoder.decode(#"{"action":"B"}"#, commitTimestamp: nil))
        XCTAssertThrowsError(try Wal2JSONDecoder.decode("not json", commitTimestamp: nil))
        XCTAssertThrowsError(try Wal2JSONDecoder.decode(#"{"action":"I"}"#, commitTimestamp: nil))
    }

    func testFiltersEvaluateLikeTheColumnTypes() throws {
        let row: JSONObject = ["id": 12, "name": "Globex Corp", "score": 4.5, "active": true, "gone": .null]
        let cases: [(String, Bool)] = [
            ("id=eq.12", true), ("id=eq.12.0", true), ("id=neq.12", false), ("id=gt.9", true), ("id=lt.9", false),
            ("id=gte.12", true), ("id=lte.11", false), ("id=in.(1,12,30)", true), ("id=in.(1,2)", false),
            ("name=like.Glo*", true), ("name=like.%corp", false), ("name=ilike.%corp", true), ("name=match.^G.*p$", true),
            ("name=imatch.^glob", true), ("gone=is.null", true), ("active=is.true", true), ("active=is.false", false),
            ("gone=isdistinct.null", false), ("id=isdistinct.13", true), ("id=not.eq.12", false), ("name=not.like.A*", true),
            ("id=gte.10,name=ilike.%corp", true), ("id=gte.10,name=eq.Other", false), ("name=in.(\"Globex Corp\",x)", true),
            ("missing=eq.1", false), ("gone=eq.1", false), ("gone=neq.1", false), ("score=gt.4", true),
        ]
        for (text, expected) in cases {
            let filter = try ChangeFilter(parsing: text)
            XCTAssertEqual(filter.matches(row), expected, text)
        }
        for bad in ["", "id", "id=between.1", "id=in.1,2", "id=is.maybe", "=eq.1", "name=match.(unclosed"] {
            XCTAssertThrowsError(try ChangeFilter(parsing: bad), bad)
        }
    }

    func testPolicyDecisionsPerSubscriber() throws {
        let notes = Entity(schema: "public", name: "notes", kind: .table, columns: [
            Column(name: "id", type: .integer, nativeType: "integer"),
            Column(name: "owner", type: .uuid, nativeType: "uuid"),
            Column(name: "body", type: .string, nativeType: "text"),
            Column(name: "secret", type: .string, nativeType: "text"),
        ], primaryKey: ["id"])
        let model = SchemaModel(entities: [notes])
        let policies = try PolicyParser.parse(document: try JSONValue.parse(Array(#"""
            {"policies": [
              {"entity": "notes", "role": "authenticated", "action": "read", "columns": ["id", "owner", "body"],
               "when": {"owner": {"eq": {"var": "auth.uid"}}}},
              {"entity": "notes", "role": "anon", "action": "read", "columns": ["id"], "when": {"id": {"gt": 100}}}
            ]}
            """#.utf8)))
        let ann = Access(role: "authenticated", claims: ["sub": "ann"], policies: policies)
        let change = ChangeEvent(
            schema: "public", table: "notes", kind: .insert, commitTimestamp: "t", record: ["id": 7, "owner": "ann", "body": "b", "secret": "s"],
            oldRecord: [:], columns: [])
        let annView = try ChangeAuthorizer(model: model, entity: notes, access: ann, select: nil, filterColumns: [])
        XCTAssertEqual(annView.verdict(for: change), .deliver(record: ["id": 7, "owner": "ann", "body": "b"], oldRecord: [:]))
        let bob = Access(role: "authenticated", claims: ["sub": "bob"], policies: policies)
        XCTAssertEqual(try ChangeAuthorizer(model: model, entity: notes, access: bob, select: nil, filterColumns: []).verdict(for: change), .withhold)
        let narrowed = try ChangeAuthorizer(model: model, entity: notes, access: ann, select: ["body"], filterColumns: ["id"])
        XCTAssertEqual(narrowed.verdict(for: change), .deliver(record: ["body": "b"], oldRecord: [:]))
        XCTAssertThrowsError(try ChangeAuthorizer(model: model, entity: notes, access: ann, select: ["secret"], filterColumns: []))
        XCTAssertThrowsError(try ChangeAuthorizer(model: model, entity: notes, access: ann, select: nil, filterColumns: ["secret"]))
        XCTAssertThrowsError(try ChangeAuthorizer(model: model, entity: notes, access: ann, select: ["nope"], filterColumns: []))
        let stranger = Access(role: "editor", claims: [:], policies: policies)
        XCTAssertThrowsError(try ChangeAuthorizer(model: model, entity: notes, access: stranger, select: nil, filterColumns: []))
        // Deletes: decided on the full old row when there is one, else only the key is told.
        let anon = try ChangeAuthorizer(model: model, entity: notes, access: Access(role: "anon", claims: [:], policies: policies), select: nil, filterColumns: [])
        var delete = change
        delete.kind = .delete
        delete.record = [:]
        delete.oldRecord = ["id": 7, "owner": "ann", "body": "b", "secret": "s"]
        XCTAssertEqual(anon.verdict(for: delete), .withhold)
        delete.oldRecord = ["id": 7]
        XCTAssertEqual(anon.verdict(for: delete), .deliver(record: [:], oldRecord: ["id": 7]))
        let service = try ChangeAuthorizer(model: model, entity: notes, access: .service, select: nil, filterColumns: [])
        XCTAssertEqual(service.verdict(for: change), .deliver(record: change.record, oldRecord: [:]))
    }

    /// SQL's three-valued logic and the column's type, as the REST API's WHERE clause would apply.
    func testPolicyEvaluationFollowsSQL() throws {
        let posts = Entity(schema: "public", name: "posts", kind: .table, columns: [
            Column(name: "id", type: .integer, nativeType: "integer"),
            Column(name: "status", type: .string, nativeType: "text"),
            Column(name: "body", type: .string, nativeType: "text"),
            Column(name: "visible_from", type: .datetime, nativeType: "timestamp with time zone"),
            Column(name: "pinned", type: .boolean, nativeType: "boolean"),
        ], primaryKey: ["id"])
        let model = SchemaModel(entities: [posts])
        func authorizer(_ when: String) throws -> ChangeAuthorizer {
            let policies = try PolicyParser.parse(document: try JSONValue.parse(Array(
                #"{"policies": [{"entity": "posts", "role": "anon", "action": "read", "when": \#(when)}]}"#.utf8)))
            return try ChangeAuthorizer(model: model, entity: posts, access: Access(role: "anon", claims: [:], policies: policies), select: nil, filterColumns: [])
        }
        func insert(_ row: JSONObject) -> ChangeEvent {
            ChangeEvent(schema: "public", table: "posts", kind: .insert, commitTimestamp: "t", record: row, oldRecord: [:], columns: [])
        }
        // NOT (status = 'archived') hides a null status, as SQL does.
        let notArchived = try authorizer(#"{"not": {"status": {"eq": "archived"}}}"#)
        XCTAssertEqual(notArchived.verdict(for: insert(["id": 1, "status": .null])), .withhold)
        XCTAssertNotEqual(notArchived.verdict(for: insert(["id": 1, "status": "live"])), .withhold)
        // Timestamps compare as instants, whatever their spelling.
        let embargo = try authorizer(#"{"visible_from": {"lt": "2025-01-01T03:00:00Z"}}"#)
        XCTAssertEqual(embargo.verdict(for: insert(["id": 2, "visible_from": "2025-01-01 05:00:00+00"])), .withhold)
        XCTAssertNotEqual(embargo.verdict(for: insert(["id": 2, "visible_from": "2025-01-01 01:00:00+00"])), .withhold)
        XCTAssertNotEqual(embargo.verdict(for: insert(["id": 2, "visible_from": "2025-01-01 04:00:00+02"])), .withhold)
        // A boolean column against a literal spelled as text.
        let pinned = try authorizer(#"{"pinned": {"neq": "true"}}"#)
        XCTAssertEqual(pinned.verdict(for: insert(["id": 3, "pinned": true])), .withhold)
        XCTAssertNotEqual(pinned.verdict(for: insert(["id": 3, "pinned": false])), .withhold)
        // An update that publishes a draft does not reveal the draft.
        let published = try authorizer(#"{"status": {"eq": "published"}}"#)
        let update = ChangeEvent(
            schema: "public", table: "posts", kind: .update, commitTimestamp: "t", record: ["id": 4, "status": "published", "body": "final"],
            oldRecord: ["id": 4, "status": "draft", "body": "secret draft"], columns: [])
        XCTAssertEqual(published.verdict(for: update), .deliver(record: ["id": 4, "status": "published", "body": "final"], oldRecord: ["id": 4]))
    }

    func testSlotNamesAreValidAndDistinct() {
        XCTAssertTrue(PostgresChangeFeed.slotName(tenant: "acme-co", source: "main").hasPrefix("mb_acme_co_main_"))
        XCTAssertNotEqual(PostgresChangeFeed.slotName(tenant: "acme-x", source: "a"), PostgresChangeFeed.slotName(tenant: "acme", source: "x_a"))
        let long = PostgresChangeFeed.slotName(tenant: String(repeating: "a", count: 40), source: String(repeating: "b", count: 40))
        XCTAssertLessThanOrEqual(long.utf8.count, 63)
        XCTAssertNotEqual(long, PostgresChangeFeed.slotName(tenant: String(repeating: "a", count: 40), source: String(repeating: "b", count: 39) + "c"))
        XCTAssertTrue(long.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" })
    }
}
