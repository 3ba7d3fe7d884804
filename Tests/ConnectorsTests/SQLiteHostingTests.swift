import Foundation
import Logging
import Runtime
import SQLiteNIO
import XCTest
@testable import Connectors

/// The SQLite dialect without services: golden SQL with exact binds, the value rules, and a real
/// SQLite file provisioned, written, read and migrated in a temp directory.
final class SQLiteHostingTests: XCTestCase {
    let model: SchemaModel = {
        let books = EntityName(schema: "public", name: "books")
        let authors = EntityName(schema: "public", name: "authors")
        return SchemaModel(
            entities: [
                Entity(schema: "public", name: "books", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer", nullable: false, isIdentity: true),
                    Column(name: "title", type: .string, nativeType: "text", nullable: false),
                    Column(name: "author_id", type: .integer, nativeType: "integer"),
                    Column(name: "published", type: .boolean, nativeType: "boolean", nullable: false, defaultExpression: "false"),
                    Column(name: "tags", type: .array, nativeType: "text[]", elementType: .string, defaultExpression: "'{}'::text[]"),
                    Column(name: "data", type: .json, nativeType: "jsonb"),
                    Column(name: "at", type: .datetime, nativeType: "timestamp with time zone", defaultExpression: "now()"),
                    Column(name: "kind", type: .enumeration, nativeType: "kind", enumValues: ["novel", "essay"]),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "authors", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer", nullable: false),
                    Column(name: "name", type: .string, nativeType: "text"),
                ], primaryKey: ["id"]),
            ],
            relations: [
                Relation(constraint: "books_author_id_fkey", kind: .manyToOne, from: books, fromColumns: ["author_id"], to: authors, toColumns: ["id"]),
                Relation(constraint: "books_author_id_fkey", kind: .oneToMany, from: authors, fromColumns: ["id"], to: books, toColumns: ["author_id"]),
            ])
    }()

    func read(_ entity: String, _ items: [(String, String)], count: Bool = false) throws -> SQLiteQuery {
        try SQLiteRenderer().read(try RestPlanner(model: model).read(entity, try RestQueryParser.parse(items)), count: count)
    }

    // MARK: - Golden SQL

    func testAFilteredReadIsOneStatementWithEveryValueBound() throws {
        let query = try read("books", [("select", "id,title"), ("title", "eq.x' OR 1=1 --"), ("published", "is.true"), ("order", "id.desc"), ("limit", "2")])
        XCTAssertEqual(query.sql, """
            SELECT '[' || coalesce(group_concat("j", ','), '') || ']' AS body, count(*) AS page_count, NULL AS total FROM (SELECT json_object('id', "t0"."id", 'title', "t0"."title") AS "j" FROM "books" AS "t0" WHERE "t0"."title" = ?1 AND "t0"."published" IS TRUE ORDER BY "t0"."id" DESC NULLS FIRST LIMIT ?2) AS "_rows"
            """)
        XCTAssertEqual(query.binds, [.text("x' OR 1=1 --"), .integer(2)])
    }

    func testEmbedsNestJSONAndOutputsTakePostgRESTsForms() throws {
        let query = try read("authors", [("select", "name,books(published,tags,data)"), ("books.order", "id")])
        XCTAssertEqual(query.sql, """
            SELECT '[' || coalesce(group_concat("j", ','), '') || ']' AS body, count(*) AS page_count, NULL AS total FROM (SELECT json_object('name', "t0"."name", 'books', json((SELECT '[' || coalesce(group_concat("t0_0_rows"."j", ','), '') || ']' FROM (SELECT json_object('published', json(CASE WHEN "t0_0"."published" IS NULL THEN NULL WHEN "t0_0"."published" THEN 'true' ELSE 'false' END), 'tags', json("t0_0"."tags"), 'data', json("t0_0"."data")) AS "j" FROM "books" AS "t0_0" WHERE "t0_0"."author_id" = "t0"."id" ORDER BY "t0_0"."id" NULLS LAST) AS "t0_0_rows"))) AS "j" FROM "authors" AS "t0") AS "_rows"
            """)
        XCTAssertEqual(query.binds, [])
    }

    func testValuesAreCheckedAndStoredInOneFormBeforeTheyAreBound() throws {
        let query = try read("books", [("published", "eq.yes"), ("at", "gte.2026-03-01 10:00:00-02"), ("tags", "cs.{a,\"b c\"}"), ("id", "in.(1,2)")])
        XCTAssertEqual(query.binds, [.integer(1), .text("2026-03-01T12:00:00+00:00"), .text(#"["a","b c"]"#), .integer(1), .integer(2)])
        XCTAssertThrowsError(try read("books", [("id", "eq.1.5")])) { error in
            XCTAssertEqual((error as? RestError)?.code, "22P02")
        }
        XCTAssertThrowsError(try read("books", [("kind", "eq.poem")])) { error in
            XCTAssertEqual((error as? RestError)?.code, "22P02")
        }
        XCTAssertThrowsError(try read("books", [("at", "eq.2026-02-30")])) { error in
            XCTAssertEqual((error as? RestError)?.code, "22007")
        }
        XCTAssertThrowsError(try read("books", [("title", "fts.word")])) { error in
            XCTAssertEqual((error as? RestError)?.code, "MB350")
            XCTAssertTrue((error as? RestError)?.message.contains("'fts'") ?? false)
        }
    }

    func testLikePatternsBecomeCaseSensitiveGlobs() {
        XCTAssertEqual(SQLiteRenderer.glob(fromLike: "a%b_c"), "a*b?c")
        XCTAssertEqual(SQLiteRenderer.glob(fromLike: #"100\%"#), "100%")
        XCTAssertEqual(SQLiteRenderer.glob(fromLike: "[x]*?"), "[[]x][*][?]")
    }

    func testTimestampsTakePostgRESTsCanonicalForm() {
        XCTAssertEqual(SQLiteTimestamp.timestamp("2026-12-31T23:30:00.500-01:00", withZone: true), "2027-01-01T00:30:00.5+00:00")
        XCTAssertEqual(SQLiteTimestamp.timestamp("2026-01-01", withZone: true), "2026-01-01T00:00:00+00:00")
        XCTAssertEqual(SQLiteTimestamp.timestamp("2026-01-01 08:00Z", withZone: false), "2026-01-01T08:00:00")
        XCTAssertEqual(SQLiteTimestamp.timestamp("2024-02-29T00:00:00+05:30", withZone: true), "2024-02-28T18:30:00+00:00")
        XCTAssertNil(SQLiteTimestamp.timestamp("2026-13-01", withZone: true))
        XCTAssertNil(SQLiteTimestamp.timestamp("yesterday", withZone: true))
        XCTAssertEqual(SQLiteTimestamp.date("2026-02-28"), "2026-02-28")
        XCTAssertNil(SQLiteTimestamp.date("2026-02-29"))
    }

    func testArrayLiteralsParseAsPostgreSQLWritesThem() {
        XCTAssertEqual(PostgresArrayLiteral.parse(#"{a,"b,c",NULL,"NULL"}"#), ["a", "b,c", nil, "NULL"])
        XCTAssertEqual(PostgresArrayLiteral.parse("{}"), [])
        XCTAssertNil(PostgresArrayLiteral.parse("{a,{b}}"))
        XCTAssertNil(PostgresArrayLiteral.parse("a,b"))
    }

    func testSQLiteFailuresTakePostgreSQLsCodesAndFittingStatuses() {
        func mapped(_ code: Int32) -> (Int, String) {
            let error = SQLiteErrorMapping.restError(SQLiteFailure(code: code, message: "m"), source: "s", entity: nil)
            return (error.status, error.code)
        }
        XCTAssertTrue(mapped(2067) == (409, "23505"), "UNIQUE")
        XCTAssertTrue(mapped(1555) == (409, "23505"), "PRIMARY KEY")
        XCTAssertTrue(mapped(787) == (409, "23503"), "FOREIGN KEY")
        XCTAssertTrue(mapped(1299) == (400, "23502"), "NOT NULL")
        XCTAssertTrue(mapped(275) == (400, "23514"), "CHECK")
        XCTAssertTrue(mapped(1811) == (409, "23000"), "another constraint (TRIGGER)")
        XCTAssertTrue(mapped(5) == (503, "MB603") && mapped(517) == (503, "MB603") && mapped(6) == (503, "MB603"), "BUSY, BUSY_SNAPSHOT, LOCKED")
        XCTAssertTrue(mapped(11) == (503, "MB604") && mapped(26) == (503, "MB604") && mapped(266) == (503, "MB604"), "CORRUPT, NOTADB, IOERR_READ")
        XCTAssertTrue(mapped(1) == (500, "MB605"), "anything else")
    }

    // MARK: - A real file

    func testProvisionWriteReadAndMigrateAFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/t.sqlite"
        let (statements, warnings) = try SQLiteProvisioner().statements(for: model)
        XCTAssertEqual(warnings, [])
        XCTAssertTrue(statements[0].contains(#""id" INTEGER PRIMARY KEY AUTOINCREMENT"#), statements[0])
        XCTAssertTrue(statements[0].contains(#""kind" TEXT CHECK ("kind" IN ('novel', 'essay'))"#), statements[0])
        XCTAssertTrue(statements[0].contains(#"FOREIGN KEY ("author_id") REFERENCES "authors" ("id")"#), statements[0])
        let source = SQLiteSource(name: "t", kind: .schema, path: path, model: model, logger: Logger(label: "test"))
        try await source.apply(statements)

        let planner = RestPlanner(model: model)
        let authors = try planner.insert("authors", rows: [["id": 1, "name": "Ann"]], query: try RestQueryParser.parse([]), onConflict: nil, missingDefault: false, returnsRows: false)
        _ = try await source.write(authors, returnRows: false, publishRows: false, rollback: false, expecting: .any)
        let books = try planner.insert(
            "books", rows: [["title": "One", "author_id": 1, "data": ["k": [1, 2]]], ["title": "Two", "author_id": 1, "published": true]],
            query: try RestQueryParser.parse([("select", "id,title,published,tags,at")]), onConflict: nil, missingDefault: true, returnsRows: true)
        let written = try await source.write(books, returnRows: true, publishRows: true, rollback: false, expecting: .any)
        XCTAssertEqual(written.count, 2)
        let rows = try XCTUnwrap(try JSONValue.parse(Array((written.body ?? "").utf8)).arrayValue)
        XCTAssertEqual(rows.map { $0["published"] }, [.bool(false), .bool(true)])
        XCTAssertEqual(rows.map { $0["tags"] }, [.array([]), .array([])])
        XCTAssertEqual(rows.map { $0["id"] }, [.integer(1), .integer(2)])
        XCTAssertNotNil(rows[0]["at"]?.stringValue.flatMap { SQLiteTimestamp.timestamp($0, withZone: true) }, "the default is a timestamp")
        let changes = try XCTUnwrap(try JSONValue.parse(Array((written.changes ?? "").utf8)).arrayValue)
        XCTAssertEqual(changes.first?["data"], ["k": [1, 2]], "published rows carry every column as JSON")

        // A policy's rule in the statement hides what it should (the rule changes the statement's text).
        var point = try planner.read("books", try RestQueryParser.parse([("select", "id,authors(name)"), ("id", "eq.1")]))
        let seen = try await source.read(point, count: false)
        XCTAssertEqual(try JSONValue.parse(Array((seen.body ?? "").utf8)), [["id": 1, "authors": ["name": "Ann"]]])
        point.rowRule = .compare(column: model.entity(named: "books")!.column(named: "published")!, op: .eq, value: .bool(true))
        let hidden = try await source.read(point, count: false)
        XCTAssertEqual(hidden.body, "[]", "book 1 is not published: the rule hides it")

        // A broken foreign key undoes the whole write.
        let orphan = try planner.insert("books", rows: [["title": "Three", "author_id": 1], ["title": "Four", "author_id": 9]],
            query: try RestQueryParser.parse([]), onConflict: nil, missingDefault: false, returnsRows: false)
        do {
            _ = try await source.write(orphan, returnRows: false, publishRows: false, rollback: false, expecting: .any)
            XCTFail("a missing author is refused")
        } catch let error as RestError {
            XCTAssertEqual(error.code, "23503")
        }
        let all = try await source.read(try planner.read("books", try RestQueryParser.parse([("select", "title")])), count: true)
        XCTAssertEqual(all.total, 2)

        // Re-upload: a new nullable column is added in place; dropping one rebuilds the table and
        // is destructive; rows and keys survive both.
        var wider = model
        wider.entities[0].columns.append(Column(name: "pages", type: .integer, nativeType: "integer"))
        let added = try SQLiteProvisioner().migration(from: model, to: wider)
        XCTAssertEqual(added.destructive, [])
        XCTAssertTrue(added.statements.contains { $0.hasPrefix(#"ALTER TABLE "books" ADD COLUMN "pages" INTEGER"#) }, "\(added.statements)")
        try await source.apply(added.statements)
        var narrower = wider
        narrower.entities[0].columns.removeAll { $0.name == "data" }
        let dropped = try SQLiteProvisioner().migration(from: wider, to: narrower)
        XCTAssertEqual(dropped.destructive, ["column books.data is dropped"])
        try await source.apply(dropped.statements)
        await source.close()
        let reopened = SQLiteSource(name: "t", kind: .schema, path: path, model: narrower, logger: Logger(label: "test"))
        let after = try await reopened.read(try RestPlanner(model: narrower).read("books", try RestQueryParser.parse([("select", "id,title,pages"), ("order", "id")])), count: false)
        XCTAssertEqual(try JSONValue.parse(Array((after.body ?? "").utf8)), [["id": 1, "title": "One", "pages": nil], ["id": 2, "title": "Two", "pages": nil]])
        XCTAssertEqual(reopened.openConnections, 1, "the file is in WAL mode: reading opens a reader and no writer")
        let next = try RestPlanner(model: narrower).insert("books", rows: [["title": "Five", "author_id": 1]],
            query: try RestQueryParser.parse([("select", "id")]), onConflict: nil, missingDefault: true, returnsRows: true)
        let five = try await reopened.write(next, returnRows: true, publishRows: false, rollback: false, expecting: .any)
        XCTAssertEqual(five.body, #"[{"id":3}]"#, "the identity goes on after the rebuild")
        XCTAssertEqual(reopened.openConnections, 2, "the first write opens the writer")
        let introspected = try await SourceCatalog.introspectSQLite(path, logger: Logger(label: "test"))
        XCTAssertEqual(introspected.entity(named: "books")?.column(named: "published")?.type, .boolean)
        XCTAssertEqual(introspected.entity(named: "books")?.column(named: "at")?.type, .datetime)
        XCTAssertTrue(introspected.relations.contains { $0.kind == .manyToOne && $0.to.name == "authors" })
        await reopened.close()
    }
}
