import Foundation
import Hummingbird
import Metrics

/// Counts requests by tenant, route template and status, and records their latency. Runs after
/// routing so the route label is the template (`/t/{slug}/rest/v1`), never a raw path.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    /// Metric handles by label set: looking them up in the registry on every request is costly.
    let handles = MetricHandles()

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let route = context.endpointPath ?? "unmatched"
        let tenant = context.parameters.get("slug").flatMap { Tenancy.Slug.isValid($0) ? $0 : nil } ?? ""
        do {
            let response = try await next(request, context)
            record(route: route, tenant: tenant, method: request.method, status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(route: route, tenant: tenant, method: request.method, status: status, since: start)
            throw error
        }
    }

    private func record(route: String, tenant: String, method: HTTPRequest.Method, status: Int, since start: ContinuousClock.Instant) {
        handles.counter(tenant: tenant, route: route, method: method.rawValue, status: status).increment()
        handles.timer(tenant: tenant, route: route).recordInterval(since: start)
    }
}

import Tenancy
import Runtime

final class MetricHandles: @unchecked Sendable {
    private let lock = Lock()
    private var counters: [String: Counter] = [:]
    private var timers: [String: Timer] = [:]

    func counter(tenant: String, route: String, method: String, status: Int) -> Counter {
        let key = "\(tenant)\u{1}\(route)\u{1}\(method)\u{1}\(status)"
        return lock.withLock {
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "minibaas_http_requests_total",
                dimensions: [("tenant", tenant), ("route", route), ("method", method), ("status", String(status))])
            counters[key] = counter
            return counter
        }
    }

    func timer(tenant: String, route: String) -> Timer {
        let key = "\(tenant)\u{1}\(route)"
        return lock.withLock {
            if let timer = timers[key] { return timer }
            let timer = Timer(label: "minibaas_http_request_duration_seconds", dimensions: [("tenant", tenant), ("route", route)])
            timers[key] = timer
            return timer
        }
    }
}

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
