import XCTest
@testable import Connectors

/// The renderer never puts a value into SQL text: values are binds, names are quoted.
final class SQLRendererTests: XCTestCase {
    let model: SchemaModel = {
        let books = EntityName(schema: "public", name: "Books")
        let publishers = EntityName(schema: "public", name: "publishers")
        return SchemaModel(
            entities: [
                Entity(schema: "public", name: "Books", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"),
                    Column(name: "Title\"x", type: .string, nativeType: "text"),
                    Column(name: "publisher_id", type: .integer, nativeType: "integer"),
                ], primaryKey: ["id"]),
                Entity(schema: "public", name: "publishers", kind: .table, columns: [
                    Column(name: "id", type: .integer, nativeType: "integer"), Column(name: "name", type: .string, nativeType: "text"),
                ], primaryKey: ["id"]),
            ],
            relations: [
                Relation(constraint: "fk", kind: .manyToOne, from: books, fromColumns: ["publisher_id"], to: publishers, toColumns: ["id"]),
                Relation(constraint: "fk", kind: .oneToMany, from: publishers, fromColumns: ["id"], to: books, toColumns: ["publisher_id"]),
            ])
    }()

    func testValuesAreBoundAndNamesQuoted() throws {
        let hostile = "'; DROP TABLE x; --"
        let query = try RestQueryParser.parse([("select", "id,publishers(name)"), ("Title\"x", "eq.\(hostile)"), ("id", "in.(1,2)")])
        let plan = try RestPlanner(model: model).read("Books", query)
        let statement = SQLRenderer().read(plan, count: true)
        XCTAssertFalse(statement.sql.contains("DROP"), statement.sql)
        XCTAssertTrue(statement.sql.contains("\"Title\"\"x\""), statement.sql)
        XCTAssertTrue(statement.sql.contains("\"public\".\"Books\""), statement.sql)
        XCTAssertGreaterThanOrEqual(statement.binds.count, 2)
    }

    func testUnknownNamesAreRefusedBeforeSQL() {
        let planner = RestPlanner(model: model)
        XCTAssertThrowsError(try planner.read("nope", RestQuery())) { XCTAssertEqual(($0 as? RestError)?.code, "PGRST205") }
        XCTAssertThrowsError(try planner.read("Books", try RestQueryParser.parse([("select", "ghost")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST204")
        }
        XCTAssertThrowsError(try planner.read("Books", try RestQueryParser.parse([("ghost", "eq.1")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST204")
        }
        XCTAssertThrowsError(try planner.read("Books", try RestQueryParser.parse([("select", "id,authors(*)")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST200")
        }
        XCTAssertThrowsError(try planner.read("Books", try RestQueryParser.parse([("publishers.name", "eq.x")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST108")
        }
        XCTAssertThrowsError(try planner.read("Books", try RestQueryParser.parse([("id->x", "eq.1")]))) {
            XCTAssertEqual(($0 as? RestError)?.code, "PGRST100")
        }
    }
}
