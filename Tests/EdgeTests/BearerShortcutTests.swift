import XCTest
@testable import Edge

/// A bearer token equal to the API key skips a second verification only when the two are the
/// same bytes — String equality would also match canonically equivalent text.
final class BearerShortcutTests: XCTestCase {
    func testOnlyIdenticalBytesCount() {
        XCTAssertTrue(TenantGateMiddleware.sameBytes("eyJ.abc.def", "eyJ.abc.def"))
        XCTAssertTrue(TenantGateMiddleware.sameBytes("", ""))
        XCTAssertFalse(TenantGateMiddleware.sameBytes("K", "\u{212A}"), "KELVIN SIGN equals K as a String, not in bytes")
        XCTAssertFalse(TenantGateMiddleware.sameBytes("é", "e\u{301}"))
        XCTAssertFalse(TenantGateMiddleware.sameBytes("abc", "abd"))
        XCTAssertFalse(TenantGateMiddleware.sameBytes("abc", "abcd"))
    }
}
