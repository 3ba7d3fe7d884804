import XCTest

@testable import Jobs

final class OutboundPolicyTests: XCTestCase {
    func testInternalAddressesAreRefusedAndPublicOnesPass() {
        let policy = OutboundPolicy()
        for address in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                         "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"] {
            XCTAssertFalse(policy.permits(address), address)
        }
        for external in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            XCTAssertTrue(policy.permits(external), external)
        }
        XCTAssertFalse(policy.permits("not an address"))
    }

    func testTheOperatorsAllowListOpensRanges() throws {
        let policy = try OutboundPolicy(allowList: "127.0.0.0/8, ::1/128")
        XCTAssertTrue(policy.permits("127.0.0.1"))
        XCTAssertTrue(policy.permits("::1"))
        XCTAssertFalse(policy.permits("10.0.0.1"))
        XCTAssertThrowsError(try OutboundPolicy(allowList: "127.0.0.0/33"))
        XCTAssertThrowsError(try OutboundPolicy(allowList: "nope"))
    }

    func testTargetURLsAreCheckedWhenRegistered() throws {
        let policy = OutboundPolicy()
        XCTAssertNoThrow(try policy.check(url: "https://hooks.example.com/in?x=1"))
        XCTAssertNoThrow(try policy.check(url: "http://93.184.216.34:8080/hook"))
        for (url, expected) in [
            ("ftp://example.com/", OutboundError.badURL("")), ("not a url", .badURL("")), ("https://user:pw@example.com/", .badURL("")),
            ("http://127.0.0.1:9000/", .refused("")), ("http://[::1]/", .refused("")), ("http://169.254.169.254/latest/meta-data", .refused("")),
            ("http://localhost:3000/", .refused("")),
        ] {
            XCTAssertThrowsError(try policy.check(url: url), url) { error in
                switch (error as? OutboundError, expected) {
                case (.badURL?, .badURL), (.refused?, .refused): break
                default: XCTFail("\(url): \(error)")
                }
            }
        }
    }
}
