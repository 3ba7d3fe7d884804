import CoreMetrics
import Prometheus
import XCTest

@testable import Edge

final class TenantSeriesFactoryTests: XCTestCase {
    /// A passivated tenant's series leave the registry; other tenants' and the node's own stay; the
    /// tenant's next request starts its series again from zero.
    func testForgettingATenantDropsItsSeriesOnly() {
        let registry = PrometheusCollectorRegistry()
        let factory = TenantSeriesFactory(PrometheusMetricsFactory(registry: registry))
        func text() -> String { String(decoding: registry.emitToBuffer(), as: UTF8.self) }

        factory.makeCounter(label: "requests_total", dimensions: [("tenant", "acme"), ("route", "rest")]).increment(by: 3)
        factory.makeTimer(label: "duration_seconds", dimensions: [("tenant", "acme")]).recordNanoseconds(2_000_000)
        factory.makeCounter(label: "requests_total", dimensions: [("tenant", "other")]).increment(by: 5)
        factory.makeCounter(label: "node_total", dimensions: []).increment(by: 1)
        factory.makeCounter(label: "restarts_total", dimensions: [("supervisor", "tenant:acme:data")]).increment(by: 1)
        factory.makeCounter(label: "restarts_total", dimensions: [("supervisor", "cluster")]).increment(by: 1)
        // The same series made again (a Timer per request) is remembered once.
        for _ in 0..<100 { factory.makeTimer(label: "duration_seconds", dimensions: [("tenant", "acme")]).recordNanoseconds(1_000) }
        XCTAssertTrue(text().contains(#"requests_total{tenant="acme",route="rest"} 3"#), text())
        XCTAssertTrue(text().contains(#"duration_seconds_count{tenant="acme"} 101"#), text())
        XCTAssertEqual(factory.trackedTenants, 2)

        factory.forget(tenant: "acme")
        XCTAssertFalse(text().contains(#"tenant="acme""#), text())
        XCTAssertTrue(text().contains(#"requests_total{tenant="other"} 5"#), text())
        XCTAssertTrue(text().contains("node_total 1"), text())
        XCTAssertFalse(text().contains("tenant:acme:data"), "its tree's supervisors' series go too: \(text())")
        XCTAssertTrue(text().contains(#"restarts_total{supervisor="cluster"} 1"#), text())
        XCTAssertEqual(factory.trackedTenants, 1)

        factory.makeCounter(label: "requests_total", dimensions: [("tenant", "acme"), ("route", "rest")]).increment(by: 1)
        XCTAssertTrue(text().contains(#"requests_total{tenant="acme",route="rest"} 1"#), "back from zero: \(text())")
    }
}
