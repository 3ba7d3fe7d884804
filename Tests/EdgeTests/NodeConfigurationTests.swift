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
}
