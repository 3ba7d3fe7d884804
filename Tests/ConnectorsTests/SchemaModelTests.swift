import Foundation
import XCTest
@testable import Connectors

final class SchemaModelTests: XCTestCase {
    func testUniquenessComesFromThePrimaryKeyOrAUniqueKey() {
        let entity = Entity(
            schema: "public", name: "members", kind: .table,
            columns: [Column(name: "id", type: .integer, nativeType: "integer"), Column(name: "email", type: .string, nativeType: "text")],
            primaryKey: ["id"], uniqueKeys: [UniqueKey(name: "members_email_key", columns: ["email"])])
        XCTAssertTrue(entity.isUnique(["id"]))
        XCTAssertTrue(entity.isUnique(["email"]))
        XCTAssertFalse(entity.isUnique(["id", "email"]))
        XCTAssertEqual(entity.column(named: "email")?.type, .string)
        XCTAssertNil(entity.column(named: "nope"))
    }

    func testModelRoundTripsThroughJSON() throws {
        let books = EntityName(schema: "public", name: "books")
        let publishers = EntityName(schema: "public", name: "publishers")
        let model = SchemaModel(
            entities: [Entity(schema: "public", name: "books", kind: .table, columns: [Column(name: "id", type: .integer, nativeType: "integer")])],
            relations: [Relation(constraint: "books_publisher_id_fkey", kind: .manyToOne, from: books, fromColumns: ["publisher_id"], to: publishers, toColumns: ["id"])],
            operations: [], enums: [EnumType(schema: "public", name: "genre", values: ["fiction"])])
        let data = try JSONEncoder().encode(model)
        XCTAssertEqual(try JSONDecoder().decode(SchemaModel.self, from: data), model)
        XCTAssertEqual(model.relations(from: books).first?.isToOne, true)
        XCTAssertEqual(model.relations(from: publishers).count, 0)
    }
}
