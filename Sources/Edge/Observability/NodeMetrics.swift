import Metrics
import Prometheus
import Runtime

/// The process-wide Prometheus registry behind swift-metrics. swift-metrics can be bootstrapped once
/// per process, so every node started in one process (tests start several) shares it.
struct NodeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Drops a passivated tenant's series (see `TenantSeriesFactory`).
    let tenantSeries: TenantSeriesFactory

    static let shared: NodeMetrics = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(15),
        ]
        let tenantSeries = TenantSeriesFactory(factory)
        MetricsSystem.bootstrap(tenantSeries)
        return NodeMetrics(registry: registry, tenantSeries: tenantSeries)
    }()

    func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}
