import XCTest

@testable import Edge

final class NodeConfigurationTests: XCTestCase {
    /// `MINIBAAS_TENANT_IDLE_MS` sets how long an idle tenant's tree runs; a bad value stops
    /// start-up naming the variable and its range.
    func testTenantIdleTimeoutIsReadAndChecked() throws {
        let standard = try NodeConfiguration.resolve(host: nil, port: 0, dataDir: "/tmp/x", environment: [:])
        XCTAssertEqual(standard.tenantIdle, .seconds(300))
        let set = try NodeConfiguration.resolve(host: nil, port: 0, dataDir: "/tmp/x", environment: ["MINIBAAS_TENANT_IDLE_MS": "20000"])
        XCTAssertEqual(set.tenantIdle, .seconds(20))
        for bad in ["soon", "10", "-5"] {
            XCTAssertThrowsError(try NodeConfiguration.resolve(host: nil, port: 0, dataDir: "/tmp/x", environment: ["MINIBAAS_TENANT_IDLE_MS": bad])) {
                XCTAssertTrue("\($0)".contains("MINIBAAS_TENANT_IDLE_MS"), "\($0)")
            }
        }
    }

    /// `MINIBAAS_SIGNIN_ATTEMPTS` and `MINIBAAS_HOSTED_POOL_SIZE`: read, defaulted, and a bad value
    /// names its variable.
    func testSignInBudgetAndHostedPoolSizeAreReadAndChecked() throws {
        let standard = try NodeConfiguration.resolve(host: nil, port: 0, dataDir: "/tmp/x", environment: [:])
        XCTAssertEqual(standard.signInAttempts.account, 10)
        XCTAssertEqual(standard.signInAttempts.address, 60)
        XCTAssertEqual(standard.hostedPoolSize, 32)
        let set = try NodeConfiguration.resolve(
            host: nil, port: 0, dataDir: "/tmp/x", environment: ["MINIBAAS_SIGNIN_ATTEMPTS": "5, 500", "MINIBAAS_HOSTED_POOL_SIZE": "8"])
        XCTAssertEqual(set.signInAttempts.account, 5)
        XCTAssertEqual(set.signInAttempts.address, 500)
        XCTAssertEqual(set.hostedPoolSize, 8)
        for (name, bad) in [("MINIBAAS_SIGNIN_ATTEMPTS", "10"), ("MINIBAAS_SIGNIN_ATTEMPTS", "0,60"), ("MINIBAAS_SIGNIN_ATTEMPTS", "a,b"),
                            ("MINIBAAS_HOSTED_POOL_SIZE", "0"), ("MINIBAAS_HOSTED_POOL_SIZE", "many")] {
            XCTAssertThrowsError(try NodeConfiguration.resolve(host: nil, port: 0, dataDir: "/tmp/x", environment: [name: bad])) {
                XCTAssertTrue("\($0)".contains(name), "\($0)")
            }
        }
    }
}
