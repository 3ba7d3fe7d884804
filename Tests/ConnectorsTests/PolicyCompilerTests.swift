import PostgresNIO
import Runtime
import Tenancy
import XCTest
@testable import Connectors

/// The policy compiler: policy documents become row rules whose session values are binds, never
/// SQL text; several policies OR; no policy denies; `service_role` bypasses.
final class PolicyCompilerTests: XCTestCase {
    /// books →(many-to-one, books.author_id) authors.
    let model: SchemaModel = {
        let books = EntityName(schema: "public", name: "books")
        let authors = EntityName(schema: "public", name: "authors")
        return SchemaModel(
            entities: [
                Entity(schema: "public", name: "books", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "title", type: .string, nativeType: "text"),
                    Column(name: "owner_id", type: .uuid, nativeType: "uuid"),
                    Column(name: "published", type: .boolean, nativeType: "boolean"),
                    Column(name: "author_id", type: .integer, nativeType: "integer"),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "authors", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "org_id", type: .integer, nativeType: "integer"),
                ], primaryKey: ["id"]),
            ],
            relations: [
                Relation(constraint: "books_author_id_fkey", kind: .manyToOne, from: books, fromColumns: ["author_id"], to: authors, toColumns: ["id"])
            ])
    }()

    /// Policies from the JSON text of a `policies` array, through the strict parser.
    func policies(_ json: String) throws -> [Policy] {
        try PolicyParser.parse(document: try JSONValue.parse(Array(#"{"policies": "#.utf8) + Array(json.utf8) + Array("}".utf8)))
    }

    func access(_ role: String, _ claims: JSONObject, _ json: String) throws -> Access {
        Access(role: role, claims: claims, policies: try policies(json))
    }

    var books: Entity { model.entity(named: "books")! }

    /// The row rule of a grant, rendered at alias `t0` as the renderer puts it in a WHERE.
    func rowSQL(_ access: Access, _ action: Policy.Action = .read) throws -> SQLStatement {
        let grant = try XCTUnwrap(try PolicyCompiler(model: model, access: access).grant(books, action))
        var statement = SQLStatement()
        let sql = SQLRenderer().rule(grant.rows, alias: "t0", into: &statement)
        statement.sql = sql
        return statement
    }

    func readSQL(_ access: Access, _ items: [(String, String)]) throws -> SQLStatement {
        let plan = try RestPlanner(model: model, access: access).read("books", try RestQueryParser.parse(items))
        return SQLRenderer().read(plan, count: false)
    }

    func streamed(_ inner: String) -> String {
        #"SELECT row_to_json("_row")::text AS row FROM ("# + inner + #") AS "_row""#
    }

    let ownRows = #"[{"entity": "books", "role": "authenticated", "action": "read", "when": {"owner_id": {"eq": {"var": "auth.uid"}}}}]"#

    // MARK: - Session values

    func testReadPolicyClaimBecomesABindNotSQLText() throws {
        let statement = try readSQL(try access("authenticated", ["sub": "user-1"], ownRows), [("select", "id,title")])
        XCTAssertEqual(
            statement.sql,
            streamed(#"SELECT "t0"."id" AS "id", "t0"."title" AS "title" FROM "public"."books" AS "t0" WHERE ("t0"."owner_id" = CAST($1 AS uuid))"#))
        XCTAssertFalse(statement.sql.contains("user-1"), statement.sql)
        assertBinds(statement, [.s("user-1")])
    }

    func testHostileClaimValueStaysABind() throws {
        let hostile = "'; drop table x; --"
        let statement = try readSQL(try access("authenticated", ["sub": .string(hostile)], ownRows), [("select", "id")])
        XCTAssertEqual(
            statement.sql,
            streamed(#"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE ("t0"."owner_id" = CAST($1 AS uuid))"#))
        XCTAssertFalse(statement.sql.lowercased().contains("drop"), statement.sql)
        XCTAssertFalse(statement.sql.contains("'; "), statement.sql)
        assertBinds(statement, [.s(hostile)])
    }

    func testMissingClaimComparesWithNullAndMatchesNothing() throws {
        let statement = try rowSQL(try access("anon", [:], #"[{"entity": "books", "role": "anon", "action": "read", "when": {"owner_id": {"eq": {"var": "auth.uid"}}}}]"#))
        XCTAssertEqual(statement.sql, #"("t0"."owner_id" = CAST(NULL AS uuid))"#)
        assertBinds(statement, [])
    }

    // MARK: - Combining policies

    func testSeveralPoliciesForSameEntityRoleAndActionAreOred() throws {
        let json = #"""
            [
              {"entity": "books", "role": "authenticated", "action": "read", "when": {"owner_id": {"eq": {"var": "auth.uid"}}}},
              {"entity": "books", "role": "authenticated", "action": "read", "when": {"published": {"eq": true}}},
              {"entity": "books", "role": "anon", "action": "read", "when": {"id": {"eq": 99}}},
              {"entity": "books", "role": "authenticated", "action": "update", "when": {"id": {"eq": 98}}},
              {"entity": "authors", "role": "authenticated", "action": "read", "when": {"id": {"eq": 97}}}
            ]
            """#
        let statement = try rowSQL(try access("authenticated", ["sub": "user-1"], json))
        // Only the two read policies of `authenticated` on books, in document order.
        XCTAssertEqual(statement.sql, #"("t0"."owner_id" = CAST($1 AS uuid) OR "t0"."published" = CAST($2 AS boolean))"#)
        assertBinds(statement, [.s("user-1"), .s("true")])
    }

    func testOperatorsNotInAndIsNullCompileInsideOnePolicy() throws {
        let json = #"[{"entity": "books", "role": "authenticated", "action": "read", "when": {"not": {"title": {"in": ["a", "b"]}}, "published": {"is_null": false}}}]"#
        let statement = try rowSQL(try access("authenticated", [:], json))
        XCTAssertEqual(statement.sql, #"((NOT ("t0"."title" = ANY(CAST($1 AS text[]))) AND "t0"."published" IS NOT NULL))"#)
        assertBinds(statement, [.a(["a", "b"])])
    }

    func testPolicyOnAColumnTheModelLacksDeniesEveryRow() throws {
        let statement = try rowSQL(try access("authenticated", [:], #"[{"entity": "books", "role": "authenticated", "action": "read", "when": {"ghost": {"eq": 1}}}]"#))
        XCTAssertEqual(statement.sql, "(false)")
        assertBinds(statement, [])
    }

    // MARK: - Denial

    func testNoPolicyDeniesWith42501Not200() throws {
        let onlyAnon = #"[{"entity": "books", "role": "anon", "action": "read"}, {"entity": "books", "role": "authenticated", "action": "update"}]"#
        let authenticated = try access("authenticated", ["sub": "user-1"], onlyAnon)
        // The compiler throws (it never returns nil for a non-service role: nil means bypass).
        XCTAssertThrowsError(try PolicyCompiler(model: model, access: authenticated).grant(books, .read)) { error in
            let error = error as? RestError
            XCTAssertEqual(error?.status, 403)
            XCTAssertEqual(error?.code, "42501")
            XCTAssertEqual(error?.message, "permission denied: no read policy on 'books' for role authenticated")
        }
        XCTAssertThrowsError(try readSQL(authenticated, [("select", "id")])) { XCTAssertEqual(($0 as? RestError)?.code, "42501") }

        let anon = try access("anon", [:], onlyAnon)
        XCTAssertThrowsError(try RestPlanner(model: model, access: anon).delete("books", query: RestQuery())) { error in
            XCTAssertEqual((error as? RestError)?.status, 401)
            XCTAssertEqual((error as? RestError)?.message, "permission denied: no delete policy on 'books' for role anon")
        }
    }

    // MARK: - Columns

    func testColumnsRestrictStarAndRefuseOtherColumns() throws {
        let json = #"[{"entity": "books", "role": "authenticated", "action": "read", "columns": ["id", "title"]}]"#
        let caller = try access("authenticated", [:], json)
        let statement = try readSQL(caller, [])
        // No `when`: every row, rendered as an OR of one `true`.
        XCTAssertEqual(statement.sql, streamed(#"SELECT "t0"."id" AS "id", "t0"."title" AS "title" FROM "public"."books" AS "t0" WHERE (true)"#))
        assertBinds(statement, [])

        XCTAssertThrowsError(try readSQL(caller, [("select", "id,owner_id")])) { error in
            XCTAssertEqual((error as? RestError)?.status, 403)
            XCTAssertEqual((error as? RestError)?.message, "permission denied: column 'owner_id' of 'books' is not allowed to read for role authenticated")
        }
        // Filtering reveals values too.
        XCTAssertThrowsError(try readSQL(caller, [("select", "id"), ("published", "is.true")])) { error in
            XCTAssertEqual((error as? RestError)?.message, "permission denied: column 'published' of 'books' is not allowed to read for role authenticated")
        }
    }

    func testColumnListsOfSeveralPoliciesUniteAndNoListMeansAll() throws {
        let two = #"[{"entity": "books", "role": "r", "action": "read", "columns": ["id"]}, {"entity": "books", "role": "r", "action": "read", "columns": ["title"]}]"#
        let grant = try XCTUnwrap(try PolicyCompiler(model: model, access: try access("r", [:], two)).grant(books, .read))
        XCTAssertEqual(grant.columns, Set(["id", "title"]))

        let open = #"[{"entity": "books", "role": "r", "action": "read", "columns": ["id"]}, {"entity": "books", "role": "r", "action": "read"}]"#
        let openGrant = try XCTUnwrap(try PolicyCompiler(model: model, access: try access("r", [:], open)).grant(books, .read))
        XCTAssertNil(openGrant.columns)
    }

    // MARK: - Relations

    func testRelationNestedPolicyBecomesExistsOverTheJoin() throws {
        let json = #"[{"entity": "books", "role": "member", "action": "read", "when": {"authors": {"org_id": {"eq": {"var": "auth.claims.org_id"}}}}}]"#
        let caller = try access("member", ["sub": "u1", "org_id": 7], json)
        let rule = try rowSQL(caller)
        XCTAssertEqual(
            rule.sql,
            #"(EXISTS (SELECT 1 FROM "public"."authors" AS "p1" WHERE "p1"."id" = "t0"."author_id" AND "p1"."org_id" = CAST($1 AS integer)))"#)
        assertBinds(rule, [.s("7")])

        let statement = try readSQL(caller, [("select", "id")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE (EXISTS (SELECT 1 FROM "public"."authors" AS "p1" WHERE "p1"."id" = "t0"."author_id" AND "p1"."org_id" = CAST($1 AS integer)))"#
            ))
        assertBinds(statement, [.s("7")])
    }

    // MARK: - Bypass

    func testServiceRoleBypassesPolicies() throws {
        // Even a policy naming service_role does not restrict it.
        let service = try access("service_role", [:], #"[{"entity": "books", "role": "service_role", "action": "read", "columns": ["id"], "when": {"id": {"eq": 1}}}]"#)
        XCTAssertNil(try PolicyCompiler(model: model, access: service).grant(books, .read))
        XCTAssertNil(try PolicyCompiler(model: model, access: .service).grant(books, .delete))

        let statement = try readSQL(service, [("select", "id,owner_id")])
        XCTAssertEqual(statement.sql, streamed(#"SELECT "t0"."id" AS "id", "t0"."owner_id" AS "owner_id" FROM "public"."books" AS "t0""#))
        assertBinds(statement, [])
    }

    // MARK: - Writes

    func testCreatePresetOverridesAForgedOwnerAndCheckCountsViolations() throws {
        let json = #"""
            [{"entity": "books", "role": "authenticated", "action": "create",
              "check": {"owner_id": {"eq": {"var": "auth.uid"}}}, "set": {"owner_id": {"var": "auth.uid"}}}]
            """#
        let planner = RestPlanner(model: model, access: try access("authenticated", ["sub": "user-1"], json))
        let plan = try planner.insert("books", rows: [["title": "Dune", "owner_id": "forged"]], query: RestQuery(), onConflict: nil, returnsRows: false)
        let statement = SQLRenderer().write(plan, returnRows: false)
        XCTAssertEqual(
            statement.sql,
            #"WITH "_written" AS (INSERT INTO "public"."books" AS "t0" ("title", "owner_id") SELECT "title", "owner_id" FROM json_populate_recordset(NULL::"public"."books", $1::json) RETURNING "t0".*) SELECT NULL::text AS body, (SELECT count(*) FROM "_written") AS page_count, NULL::bigint AS total, (SELECT count(*) FROM "_written" AS "t0" WHERE (("t0"."owner_id" = CAST($2 AS uuid))) IS NOT TRUE) AS violations, NULL::text AS changes"#
        )
        XCTAssertTrue(statement.checked)
        XCTAssertFalse(statement.sql.contains("forged"))
        assertBinds(statement, [.s(#"[{"title":"Dune","owner_id":"user-1"}]"#), .s("user-1")])
    }
}
