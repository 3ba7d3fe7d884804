import PostgresNIO
import XCTest
@testable import Connectors

/// An expected bind, by the letter `SQLStatement.parameterTypes` records for it.
enum ExpectedBind { case s(String), a([String]), i(Int) }

extension ExpectedBind {
    static func bindings(_ expected: [ExpectedBind]) -> (PostgresBindings, types: String) {
        var bindings = PostgresBindings()
        var types = ""
        for bind in expected {
            switch bind {
            case .s(let value): bindings.append(value); types += "s"
            case .a(let values): bindings.append(values); types += "a"
            case .i(let value): bindings.append(value); types += "i"
            }
        }
        return (bindings, types)
    }
}

/// The statement's binds are exactly `expected`: types, count and encoded values, in order.
func assertBinds(_ statement: SQLStatement, _ expected: [ExpectedBind], file: StaticString = #filePath, line: UInt = #line) {
    let (bindings, types) = ExpectedBind.bindings(expected)
    XCTAssertEqual(statement.parameterTypes, types, "bind types in order", file: file, line: line)
    XCTAssertEqual(statement.binds.count, expected.count, "bind count", file: file, line: line)
    XCTAssertTrue(statement.binds == bindings, "bind values differ; expected \(expected)", file: file, line: line)
}

/// The comparison `assertBinds` rests on tells values apart (PostgresBindings compares encoded
/// bytes and types), so a golden bind can fail.
final class BindAssertionTests: XCTestCase {
    func testBindingsCompareByValueTypeAndOrder() {
        let (same, _) = ExpectedBind.bindings([.s("a"), .i(1)])
        XCTAssertTrue(same == ExpectedBind.bindings([.s("a"), .i(1)]).0)
        XCTAssertFalse(same == ExpectedBind.bindings([.s("b"), .i(1)]).0)
        XCTAssertFalse(same == ExpectedBind.bindings([.i(1), .s("a")]).0)
        XCTAssertFalse(ExpectedBind.bindings([.s("1")]).0 == ExpectedBind.bindings([.i(1)]).0)
    }
}
