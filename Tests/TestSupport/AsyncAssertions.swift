import XCTest

// XCTest's assertions take synchronous autoclosures; these take async ones so that a test can
// assert on `try await store.…` directly.

public func assertEqual<T: Equatable>(
    _ expression: @autoclosure () async throws -> T, _ expected: @autoclosure () -> T, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertEqual(value, expected(), message, file: file, line: line)
}

public func assertNil<T>(
    _ expression: @autoclosure () async throws -> T?, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertNil(value, message, file: file, line: line)
}

public func assertTrue(
    _ expression: @autoclosure () async throws -> Bool, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertTrue(value, message, file: file, line: line)
}

public func assertFalse(
    _ expression: @autoclosure () async throws -> Bool, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertFalse(value, message, file: file, line: line)
}

public func assertNotNil<T>(
    _ expression: @autoclosure () async throws -> T?, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
) async throws {
    let value = try await expression()
    XCTAssertNotNil(value, message, file: file, line: line)
}
