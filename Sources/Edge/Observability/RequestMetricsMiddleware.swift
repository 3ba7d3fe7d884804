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
        let (counter, timer) = handles.handles(tenant: tenant, route: route, method: method.rawValue, status: status)
        counter.increment()
        timer.recordInterval(since: start)
    }
}

import Tenancy
import Runtime

final class MetricHandles: @unchecked Sendable {
    /// A request's labels as they are, hashed field by field: building a string key per request
    /// was an allocation for each of two lookups.
    private struct Labels: Hashable {
        var tenant: String
        var route: String
        var method: String
        var status: Int
    }

    private let lock = Lock()
    private var handles: [Labels: (counter: Counter, timer: Timer)] = [:]
    private var timers: [Labels: Timer] = [:]

    /// The request counter of these labels and the duration timer of their tenant and route.
    func handles(tenant: String, route: String, method: String, status: Int) -> (counter: Counter, timer: Timer) {
        let labels = Labels(tenant: tenant, route: route, method: method, status: status)
        return lock.withLock {
            if let found = handles[labels] { return found }
            let timerLabels = Labels(tenant: tenant, route: route, method: "", status: 0)
            let timer = timers[timerLabels] ?? Timer(
                label: "minibaas_http_request_duration_seconds", dimensions: [("tenant", tenant), ("route", route)])
            timers[timerLabels] = timer
            let counter = Counter(
                label: "minibaas_http_requests_total",
                dimensions: [("tenant", tenant), ("route", route), ("method", method), ("status", String(status))])
            handles[labels] = (counter, timer)
            return (counter, timer)
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
