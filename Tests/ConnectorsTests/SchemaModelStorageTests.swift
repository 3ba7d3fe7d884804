import Foundation
import XCTest

@testable import Connectors

/// How a model is held in memory must not change how it is stored: a column's checks sit behind a
/// reference but encode as before, and a compacted model equals the decoded one.
final class SchemaModelStorageTests: XCTestCase {
    func testBoxedChecksEncodeAsBeforeAndCompactingKeepsTheModel() throws {
        var checked = Column(name: "price", type: .number, nativeType: "numeric")
        var checks = ValueChecks()
        checks.minimum = 0
        checks.pattern = "^[0-9]+$"
        checked.checks = checks
        let plain = Column(name: "id", type: .integer, nativeType: "integer", nullable: false)
        let model = SchemaModel(entities: [Entity(schema: "public", name: "items", kind: .table, columns: [plain, checked], primaryKey: ["id"])])
        let encoded = try JSONEncoder().encode(model)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        let columns = try XCTUnwrap(((json["entities"] as? [[String: Any]])?.first?["columns"]) as? [[String: Any]])
        XCTAssertNil(columns[0]["checks"], "no checks, no key")
        XCTAssertEqual((columns[1]["checks"] as? [String: Any])?["pattern"] as? String, "^[0-9]+$")
        let decoded = try JSONDecoder().decode(SchemaModel.self, from: encoded)
        XCTAssertEqual(decoded, model)
        XCTAssertEqual(decoded.entities[0].columns[1].checks?.minimum, 0)
        XCTAssertEqual(decoded.compacted(), decoded)
        var changed = decoded
        changed.entities[0].columns[1].checks?.maximum = 10
        XCTAssertNotEqual(changed, decoded, "checks still take part in equality")
        XCTAssertNil(decoded.entities[0].columns[1].checks?.maximum, "a copy's change does not reach the original")
        XCTAssertLessThan(MemoryLayout<Column>.stride, 160, "a column holds its checks by reference")
    }
}
