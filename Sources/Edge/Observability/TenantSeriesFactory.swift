import CoreMetrics
import Runtime

/// The node's metrics factory: Prometheus's, remembering which series carry a `tenant` label so
/// that a passivated tenant's series can be dropped.
///
/// A tenant that served one request leaves ~50 series (`/metrics` lines: request counts and latency
/// buckets per route, job and cache counters, supervisor restarts), ~37 KB that stayed after its tree
/// stopped — for every tenant the node ever served, so memory and `/metrics` grew with the tenants
/// seen, and on a cluster node the scattered remains kept passivation from handing memory back
/// (Benchmarks/tenancy). Prometheus takes a series that disappears and comes back with its
/// counters from zero as a reset, which `rate()` and `increase()` handle.
final class TenantSeriesFactory: MetricsFactory, @unchecked Sendable {
    private enum Handler {
        case counter(any CounterHandler)
        case floatingPointCounter(any FloatingPointCounterHandler)
        case meter(any MeterHandler)
        case recorder(any RecorderHandler)
        case timer(any TimerHandler)
    }

    private let inner: any MetricsFactory
    private let lock = Lock()
    /// By tenant, each handler once (the registry answers the same object for the same series).
    private var byTenant: [String: [ObjectIdentifier: Handler]] = [:]

    init(_ inner: any MetricsFactory) {
        self.inner = inner
    }

    /// Drops every series labelled with `tenant`.
    func forget(tenant: String) {
        guard let handlers = lock.withLock({ byTenant.removeValue(forKey: tenant) }) else { return }
        for handler in handlers.values {
            switch handler {
            case .counter(let handler): inner.destroyCounter(handler)
            case .floatingPointCounter(let handler): inner.destroyFloatingPointCounter(handler)
            case .meter(let handler): inner.destroyMeter(handler)
            case .recorder(let handler): inner.destroyRecorder(handler)
            case .timer(let handler): inner.destroyTimer(handler)
            }
        }
    }

    /// Tenants with series kept (for tests).
    var trackedTenants: Int { lock.withLock { byTenant.count } }

    private func remember(_ dimensions: [(String, String)], _ object: AnyObject, _ handler: Handler) {
        guard let tenant = Self.tenant(of: dimensions) else { return }
        lock.withLock { byTenant[tenant, default: [:]][ObjectIdentifier(object)] = handler }
    }

    /// The `tenant` label, or the tenant in a tree's supervisor name (`tenant:{slug}:{subsystem}`,
    /// Runtime's supervisors know no tenants).
    static func tenant(of dimensions: [(String, String)]) -> String? {
        for (name, value) in dimensions {
            if name == "tenant" { return value }
            if name == "supervisor", value.hasPrefix("tenant:") {
                let rest = value.dropFirst("tenant:".count)
                return String(rest.prefix { $0 != ":" })
            }
        }
        return nil
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        let handler = inner.makeCounter(label: label, dimensions: dimensions)
        remember(dimensions, handler as AnyObject, .counter(handler))
        return handler
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        let handler = inner.makeFloatingPointCounter(label: label, dimensions: dimensions)
        remember(dimensions, handler as AnyObject, .floatingPointCounter(handler))
        return handler
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        let handler = inner.makeMeter(label: label, dimensions: dimensions)
        remember(dimensions, handler as AnyObject, .meter(handler))
        return handler
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        let handler = inner.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        remember(dimensions, handler as AnyObject, .recorder(handler))
        return handler
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let handler = inner.makeTimer(label: label, dimensions: dimensions)
        remember(dimensions, handler as AnyObject, .timer(handler))
        return handler
    }

    func destroyCounter(_ handler: any CounterHandler) { inner.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { inner.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { inner.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { inner.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { inner.destroyTimer(handler) }
}
