import PostgresNIO
import Runtime
import XCTest
@testable import Connectors

/// Golden SQL for the PostgREST grammar: query items → `RestQueryParser` → `RestPlanner` →
/// `SQLRenderer`, asserting the exact SQL text and the exact binds (values, types, order).
final class RestGoldenSQLTests: XCTestCase {
    /// books →(many-to-one) authors, authors →(one-to-many) books, books ↔(many-to-many) genres
    /// through book_genres.
    let model: SchemaModel = {
        let books = EntityName(schema: "public", name: "books")
        let authors = EntityName(schema: "public", name: "authors")
        let genres = EntityName(schema: "public", name: "genres")
        let bookGenres = EntityName(schema: "public", name: "book_genres")
        return SchemaModel(
            entities: [
                Entity(schema: "public", name: "books", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "title", type: .string, nativeType: "text"),
                    Column(name: "author_id", type: .integer, nativeType: "integer"),
                    Column(name: "rating", type: .integer, nativeType: "integer"),
                    Column(name: "published", type: .boolean, nativeType: "boolean"),
                    Column(name: "data", type: .json, nativeType: "jsonb"),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "authors", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "name", type: .string, nativeType: "text"),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "genres", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "name", type: .string, nativeType: "text"),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "book_genres", kind: .table, columns: [
                    Column(name: "book_id", type: .integer, nativeType: "integer"),
                    Column(name: "genre_id", type: .integer, nativeType: "integer"),
                ], primaryKey: ["book_id", "genre_id"]),
            ],
            relations: [
                Relation(constraint: "books_author_id_fkey", kind: .manyToOne, from: books, fromColumns: ["author_id"], to: authors, toColumns: ["id"]),
                Relation(constraint: "books_author_id_fkey", kind: .oneToMany, from: authors, fromColumns: ["id"], to: books, toColumns: ["author_id"]),
                Relation(
                    constraint: "book_genres_genre_id_fkey", kind: .manyToMany, from: books, fromColumns: ["id"], to: genres, toColumns: ["id"],
                    junction: Relation.Junction(entity: bookGenres, fromConstraint: "book_genres_book_id_fkey", fromColumns: ["book_id"], toColumns: ["genre_id"])),
            ])
    }()

    var planner: RestPlanner { RestPlanner(model: model) }

    func render(_ entity: String, _ items: [(String, String)], count: Bool = false) throws -> SQLStatement {
        SQLRenderer().read(try planner.read(entity, try RestQueryParser.parse(items)), count: count)
    }

    /// The streaming wrapper every read without a count gets around its SELECT.
    func streamed(_ inner: String) -> String {
        #"SELECT row_to_json("_row")::text AS row FROM ("# + inner + #") AS "_row""#
    }

    /// The wrapper every write gets around its data-changing statement (no policy check, no publishing).
    func written(_ dml: String, body: String = "NULL::text") -> String {
        #"WITH "_written" AS ("# + dml + #") SELECT "# + body
            + #" AS body, (SELECT count(*) FROM "_written") AS page_count, NULL::bigint AS total, NULL::bigint AS violations, NULL::text AS changes"#
    }

    // MARK: - Select

    func testSelectStarRenamesAndCastsRenderAsQuotedColumns() throws {
        let star = try render("authors", [])
        XCTAssertEqual(star.sql, #"SELECT row_to_json("_row")::text AS row FROM (SELECT "t0"."id" AS "id", "t0"."name" AS "name" FROM "public"."authors" AS "t0") AS "_row""#)
        XCTAssertTrue(star.streaming)
        assertBinds(star, [])

        let statement = try render("books", [("select", "id,name:title,rating::text")])
        XCTAssertEqual(
            statement.sql,
            streamed(#"SELECT "t0"."id" AS "id", "t0"."title" AS "name", CAST("t0"."rating" AS text) AS "rating" FROM "public"."books" AS "t0""#))
        assertBinds(statement, [])
    }

    // MARK: - Filters

    func testComparisonOperatorsCastEachBoundValueToTheColumnType() throws {
        let statement = try render("books", [
            ("select", "id"), ("id", "eq.1"), ("rating", "neq.2"), ("rating", "gt.3"), ("rating", "gte.4"), ("rating", "lt.5"), ("rating", "lte.6"),
        ])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE "t0"."id" = CAST($1 AS integer) AND "t0"."rating" <> CAST($2 AS integer) AND "t0"."rating" > CAST($3 AS integer) AND "t0"."rating" >= CAST($4 AS integer) AND "t0"."rating" < CAST($5 AS integer) AND "t0"."rating" <= CAST($6 AS integer)"#
            ))
        assertBinds(statement, [.s("1"), .s("2"), .s("3"), .s("4"), .s("5"), .s("6")])
    }

    func testLikeAndIlikeTurnStarsIntoPercentInTheBind() throws {
        let statement = try render("books", [("select", "id"), ("title", "like.*Dune*"), ("title", "ilike.the*")])
        XCTAssertEqual(
            statement.sql,
            streamed(#"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE ("t0"."title")::text LIKE $1 AND ("t0"."title")::text ILIKE $2"#))
        assertBinds(statement, [.s("%Dune%"), .s("the%")])
    }

    func testInFilterBindsEachValueAsOneArray() throws {
        let statement = try render("books", [("select", "id"), ("id", "in.(1,2,3)"), ("title", #"in.("a,b",c)"#), ("rating", "in.()")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE "t0"."id" = ANY(CAST($1 AS integer[])) AND "t0"."title" = ANY(CAST($2 AS text[])) AND false"#
            ))
        assertBinds(statement, [.a(["1", "2", "3"]), .a(["a,b", "c"])])
    }

    func testIsNullAndIsTrueNeedNoBind() throws {
        let statement = try render("books", [("select", "id"), ("rating", "is.null"), ("published", "is.true"), ("title", "is.not_null")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE "t0"."rating" IS NULL AND "t0"."published" IS TRUE AND "t0"."title" IS NOT NULL"#
            ))
        assertBinds(statement, [])
    }

    func testNotPrefixWrapsTheOperatorInNot() throws {
        let statement = try render("books", [
            ("select", "id"), ("rating", "not.eq.5"), ("title", "not.like.*x"), ("id", "not.in.(1,2)"), ("rating", "not.is.null"),
        ])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE NOT ("t0"."rating" = CAST($1 AS integer)) AND NOT (("t0"."title")::text LIKE $2) AND NOT ("t0"."id" = ANY(CAST($3 AS integer[]))) AND NOT ("t0"."rating" IS NULL)"#
            ))
        assertBinds(statement, [.s("5"), .s("%x"), .a(["1", "2"])])
    }

    func testOrAndNestedLogicTreesAreParenthesisedAndNegatable() throws {
        let statement = try render("books", [
            ("select", "id"), ("or", "(rating.gt.4,and(title.eq.Dune,published.is.true))"), ("not.and", "(id.eq.1,id.eq.2)"),
        ])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE ("t0"."rating" > CAST($1 AS integer) OR ("t0"."title" = CAST($2 AS text) AND "t0"."published" IS TRUE)) AND NOT ("t0"."id" = CAST($3 AS integer) AND "t0"."id" = CAST($4 AS integer))"#
            ))
        assertBinds(statement, [.s("4"), .s("Dune"), .s("1"), .s("2")])
    }

    // MARK: - JSON paths

    func testJSONArrowsInSelectBindKeysAndIntegerIndexes() throws {
        let statement = try render("books", [("select", "id,data->>lang,first_tag:data->tags->0")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id", ("t0"."data" ->> $1::text) AS "lang", (("t0"."data" -> $2::text) -> $3::int) AS "first_tag" FROM "public"."books" AS "t0""#
            ))
        assertBinds(statement, [.s("lang"), .s("tags"), .i(0)])
    }

    func testJSONArrowsInFiltersCompareAsTextOrJsonb() throws {
        let statement = try render("books", [("select", "id"), ("data->>lang", "eq.en"), ("data->year", "gt.1960")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE ("t0"."data" ->> $1::text) = CAST($2 AS text) AND (("t0"."data" -> $3::text))::jsonb > CAST($4 AS jsonb)"#
            ))
        assertBinds(statement, [.s("lang"), .s("en"), .s("year"), .s("1960")])
    }

    // MARK: - Order, limit, offset

    func testOrderRendersDescAndNullsPlacementPerTerm() throws {
        let statement = try render("books", [("select", "id"), ("order", "rating.desc.nullslast,title.asc,data->>lang.desc.nullsfirst")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" ORDER BY "t0"."rating" DESC NULLS LAST, "t0"."title", ("t0"."data" ->> $1::text) DESC NULLS FIRST"#
            ))
        assertBinds(statement, [.s("lang")])
    }

    func testLimitAndOffsetAreIntegerBindsAndZeroOffsetIsOmitted() throws {
        let statement = try render("books", [("select", "id"), ("limit", "10"), ("offset", "20")])
        XCTAssertEqual(statement.sql, streamed(#"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" LIMIT $1 OFFSET $2"#))
        assertBinds(statement, [.i(10), .i(20)])

        let noOffset = try render("books", [("select", "id"), ("limit", "5"), ("offset", "0")])
        XCTAssertEqual(noOffset.sql, streamed(#"SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" LIMIT $1"#))
        assertBinds(noOffset, [.i(5)])
    }

    // MARK: - Embeds

    func testManyToOneEmbedIsOneRowToJSONUnderItsAlias() throws {
        let statement = try render("books", [("select", "id,writer:authors(name)")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."id" AS "id", (SELECT row_to_json("t1_0_row") FROM (SELECT "t1_0"."name" AS "name" FROM "public"."authors" AS "t1_0" WHERE "t1_0"."id" = "t0"."author_id") AS "t1_0_row") AS "writer" FROM "public"."books" AS "t0""#
            ))
        assertBinds(statement, [])
    }

    func testOneToManyEmbedAggregatesWithItsOwnFilterOrderAndLimit() throws {
        let statement = try render("authors", [
            ("select", "name,books(title)"), ("books.rating", "gt.3"), ("books.order", "title"), ("books.limit", "2"),
        ])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."name" AS "name", (SELECT coalesce(json_agg("t1_0_row"), '[]'::json) FROM (SELECT "t1_0"."title" AS "title" FROM "public"."books" AS "t1_0" WHERE "t1_0"."author_id" = "t0"."id" AND "t1_0"."rating" > CAST($1 AS integer) ORDER BY "t1_0"."title" LIMIT $2) AS "t1_0_row") AS "books" FROM "public"."authors" AS "t0""#
            ))
        assertBinds(statement, [.s("3"), .i(2)])
    }

    func testManyToManyEmbedJoinsThroughTheJunctionTable() throws {
        let statement = try render("books", [("select", "title,genres(name)")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."title" AS "title", (SELECT coalesce(json_agg("t1_0_row"), '[]'::json) FROM (SELECT "t1_0"."name" AS "name" FROM "public"."genres" AS "t1_0" WHERE EXISTS (SELECT 1 FROM "public"."book_genres" AS "t1_0_j" WHERE "t1_0_j"."book_id" = "t0"."id" AND "t1_0_j"."genre_id" = "t1_0"."id")) AS "t1_0_row") AS "genres" FROM "public"."books" AS "t0""#
            ))
        assertBinds(statement, [])
    }

    func testInnerEmbedFiltersParentRowsWithExists() throws {
        let statement = try render("books", [("select", "title,authors!inner(name)"), ("authors.name", "eq.Herbert")])
        XCTAssertEqual(
            statement.sql,
            streamed(
                #"SELECT "t0"."title" AS "title", (SELECT row_to_json("t1_0_row") FROM (SELECT "t1_0"."name" AS "name" FROM "public"."authors" AS "t1_0" WHERE "t1_0"."id" = "t0"."author_id" AND "t1_0"."name" = CAST($1 AS text)) AS "t1_0_row") AS "authors" FROM "public"."books" AS "t0" WHERE EXISTS (SELECT 1 FROM "public"."authors" AS "et0_0" WHERE "et0_0"."id" = "t0"."author_id" AND "et0_0"."name" = CAST($2 AS text))"#
            ))
        // The embedded filter is bound twice: once for the embedded rows, once for the EXISTS.
        assertBinds(statement, [.s("Herbert"), .s("Herbert")])
    }

    // MARK: - Count

    func testCountAddsATotalSubqueryThatRebindsTheFilters() throws {
        let statement = try render("books", [("select", "id"), ("rating", "gt.3"), ("limit", "10")], count: true)
        XCTAssertEqual(
            statement.sql,
            #"SELECT coalesce(json_agg("_row"), '[]')::text AS body, count("_row") AS page_count, (SELECT count(*) FROM "public"."books" AS "t0" WHERE "t0"."rating" > CAST($3 AS integer)) AS total, NULL::bigint AS violations FROM (SELECT "t0"."id" AS "id" FROM "public"."books" AS "t0" WHERE "t0"."rating" > CAST($1 AS integer) LIMIT $2) AS "_row""#
        )
        XCTAssertFalse(statement.streaming)
        assertBinds(statement, [.s("3"), .i(10), .s("3")])

        let unfiltered = try render("authors", [("select", "id")], count: true)
        XCTAssertEqual(
            unfiltered.sql,
            #"SELECT coalesce(json_agg("_row"), '[]')::text AS body, count("_row") AS page_count, (SELECT count(*) FROM "public"."authors" AS "t0" WHERE true) AS total, NULL::bigint AS violations FROM (SELECT "t0"."id" AS "id" FROM "public"."authors" AS "t0") AS "_row""#
        )
        assertBinds(unfiltered, [])
    }

    // MARK: - Writes

    func testInsertSendsRowsAsOneJSONBindAndReturnsTheSelection() throws {
        let query = try RestQueryParser.parse([("select", "id,title")])
        let plan = try planner.insert("books", rows: [["title": "Dune", "rating": 5]], query: query, onConflict: nil)
        let statement = SQLRenderer().write(plan, returnRows: true)
        XCTAssertEqual(
            statement.sql,
            #"WITH "_written" AS (INSERT INTO "public"."books" AS "t0" ("title", "rating") SELECT "title", "rating" FROM json_populate_recordset(NULL::"public"."books", $1::json) RETURNING "t0".*) SELECT (SELECT coalesce(json_agg("_row"), '[]')::text FROM (SELECT "t0"."id" AS "id", "t0"."title" AS "title" FROM "_written" AS "t0") AS "_row") AS body, (SELECT count(*) FROM "_written") AS page_count, NULL::bigint AS total, NULL::bigint AS violations, NULL::text AS changes"#
        )
        XCTAssertFalse(statement.checked)
        assertBinds(statement, [.s(#"[{"title":"Dune","rating":5}]"#)])
    }

    func testColumnsParameterLimitsTheInsertedColumns() throws {
        let query = try RestQueryParser.parse([("columns", "title")])
        let plan = try planner.insert("books", rows: [["title": "Dune", "rating": 5]], query: query, onConflict: nil)
        let statement = SQLRenderer().write(plan, returnRows: false)
        XCTAssertEqual(
            statement.sql,
            written(
                #"INSERT INTO "public"."books" AS "t0" ("title") SELECT "title" FROM json_populate_recordset(NULL::"public"."books", $1::json) RETURNING "t0".*"#
            ))
        // The payload is sent whole; only the listed columns are read from it.
        assertBinds(statement, [.s(#"[{"title":"Dune","rating":5}]"#)])

        XCTAssertThrowsError(try planner.insert("books", rows: [[:]], query: try RestQueryParser.parse([("columns", "ghost")]), onConflict: nil)) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST204")
        }
    }

    func testMissingDefaultInsertWritesDefaultForAbsentKeys() throws {
        let plan = try planner.insert(
            "books", rows: [["title": "Dune"], ["title": "Emma", "rating": 4]], query: RestQuery(), onConflict: nil, missingDefault: true)
        let statement = SQLRenderer().write(plan, returnRows: false)
        XCTAssertEqual(
            statement.sql,
            written(
                #"INSERT INTO "public"."books" AS "t0" ("title", "rating") VALUES (CAST($1 AS text), DEFAULT), (CAST($2 AS text), CAST($3 AS integer)) RETURNING "t0".*"#
            ))
        XCTAssertFalse(statement.reusable)
        assertBinds(statement, [.s("Dune"), .s("Emma"), .s("4")])
    }

    func testUpsertMergeUpdatesNonKeyColumnsAndIgnoreDoesNothing() throws {
        let query = try RestQueryParser.parse([("on_conflict", "id")])
        let target = try XCTUnwrap(query.onConflict)
        XCTAssertEqual(target, ["id"])
        let rows: [JSONObject] = [["id": 1, "title": "Dune"]]

        let merge = SQLRenderer().write(try planner.insert("books", rows: rows, query: query, onConflict: .merge(target: target)), returnRows: false)
        XCTAssertEqual(
            merge.sql,
            written(
                #"INSERT INTO "public"."books" AS "t0" ("id", "title") SELECT "id", "title" FROM json_populate_recordset(NULL::"public"."books", $1::json) ON CONFLICT ("id") DO UPDATE SET "title" = EXCLUDED."title" RETURNING "t0".*"#
            ))
        assertBinds(merge, [.s(#"[{"id":1,"title":"Dune"}]"#)])

        let ignore = SQLRenderer().write(try planner.insert("books", rows: rows, query: query, onConflict: .ignore(target: target)), returnRows: false)
        XCTAssertEqual(
            ignore.sql,
            written(
                #"INSERT INTO "public"."books" AS "t0" ("id", "title") SELECT "id", "title" FROM json_populate_recordset(NULL::"public"."books", $1::json) ON CONFLICT ("id") DO NOTHING RETURNING "t0".*"#
            ))
        assertBinds(ignore, [.s(#"[{"id":1,"title":"Dune"}]"#)])

        // Nothing but the key sent: a merge has nothing to update.
        let keyOnly = SQLRenderer().write(try planner.insert("books", rows: [["id": 1]], query: query, onConflict: .merge(target: target)), returnRows: false)
        XCTAssertEqual(
            keyOnly.sql,
            written(
                #"INSERT INTO "public"."books" AS "t0" ("id") SELECT "id" FROM json_populate_recordset(NULL::"public"."books", $1::json) ON CONFLICT ("id") DO NOTHING RETURNING "t0".*"#
            ))
    }

    func testUpdateSetsColumnsFromOneJSONRecordAndFiltersByBinds() throws {
        let query = try RestQueryParser.parse([("select", "id"), ("id", "eq.1")])
        let plan = try planner.update("books", values: ["title": "Dune Messiah", "rating": 4], query: query)
        let statement = SQLRenderer().write(plan, returnRows: true)
        XCTAssertEqual(
            statement.sql,
            written(
                #"UPDATE "public"."books" AS "t0" SET ("title", "rating") = (SELECT "title", "rating" FROM json_populate_record(NULL::"public"."books", $1::json)) WHERE "t0"."id" = CAST($2 AS integer) RETURNING "t0".*"#,
                body: #"(SELECT coalesce(json_agg("_row"), '[]')::text FROM (SELECT "t0"."id" AS "id" FROM "_written" AS "t0") AS "_row")"#))
        assertBinds(statement, [.s(#"{"title":"Dune Messiah","rating":4}"#), .s("1")])
    }

    func testDeleteFiltersByBindsAndDefaultsToEveryRow() throws {
        let filtered = SQLRenderer().write(try planner.delete("books", query: try RestQueryParser.parse([("rating", "lt.2")])), returnRows: false)
        XCTAssertEqual(filtered.sql, written(#"DELETE FROM "public"."books" AS "t0" WHERE "t0"."rating" < CAST($1 AS integer) RETURNING "t0".*"#))
        assertBinds(filtered, [.s("2")])

        let everything = SQLRenderer().write(try planner.delete("books", query: RestQuery()), returnRows: false)
        XCTAssertEqual(everything.sql, written(#"DELETE FROM "public"."books" AS "t0" WHERE true RETURNING "t0".*"#))
        assertBinds(everything, [])

        XCTAssertThrowsError(try planner.delete("books", query: try RestQueryParser.parse([("limit", "1")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST100")
        }
    }
}
