import Foundation
import Hummingbird
import Metrics

/// Counts requests by tenant, route template and status, and records their latency. Runs after
/// routing so the route label is the template (`/t/{slug}/rest/v1`), never a raw path.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

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
        let dimensions = [("tenant", tenant), ("route", route), ("method", method.rawValue), ("status", String(status))]
        Counter(label: "minibaas_http_requests_total", dimensions: dimensions).increment()
        Timer(label: "minibaas_http_request_duration_seconds", dimensions: [("tenant", tenant), ("route", route)])
            .recordInterval(since: start)
    }
}

import Tenancy

extension Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
