import XCTest
@testable import Edge
@testable import TenantRuntime

/// A bearer token equal to the API key skips a second verification only when the two are the
/// same bytes — String equality would also match canonically equivalent text.
final class BearerShortcutTests: XCTestCase {
    func testOnlyIdenticalBytesCount() {
        XCTAssertTrue(TenantCredentials.sameBytes("eyJ.abc.def", "eyJ.abc.def"))
        XCTAssertTrue(TenantCredentials.sameBytes("", ""))
        XCTAssertFalse(TenantCredentials.sameBytes("K", "\u{212A}"), "KELVIN SIGN equals K as a String, not in bytes")
        XCTAssertFalse(TenantCredentials.sameBytes("é", "e\u{301}"))
        XCTAssertFalse(TenantCredentials.sameBytes("abc", "abd"))
        XCTAssertFalse(TenantCredentials.sameBytes("abc", "abcd"))
    }

    func testTheBearerSchemeIsReadInAnyCaseAndNothingElseIs() {
        XCTAssertEqual(TenantCredentials.bearerToken("Bearer eyJ.a.b"), "eyJ.a.b")
        XCTAssertEqual(TenantCredentials.bearerToken("bEaReR   eyJ.a.b \t"), "eyJ.a.b")
        for refused in ["", "Bearer", "Bearer ", "Bearer   ", "Basic dXNlcjpwYXNz", "Bearereyj", "Bearer\teyJ", "Bear eyJ", "bearer\u{0}eyJ", "Ｂearer eyJ"] {
            XCTAssertNil(TenantCredentials.bearerToken(refused), refused)
        }
    }
}
