import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import Tracing

/// One SERVER span per request when the node exports traces, named `{method} {http.route}` with
/// OpenTelemetry's HTTP attributes and `minibaas.tenant`. A caller's W3C `traceparent` is
/// continued (its trace id kept; an unsampled parent exports nothing). Only the path is recorded:
/// query strings can carry keys (`?apikey=`) and filter values, headers carry tokens.
struct RequestTracingMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        var serviceContext = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.headers, into: &serviceContext, using: HTTPFieldsExtractor())
        let route = context.endpointPath ?? "unmatched"
        // Started by hand rather than with `withSpan`, which marks every thrown error (a 404 is
        // thrown too) as the span's failure; here only a 5xx is.
        let span = InstrumentationSystem.tracer.startSpan("\(request.method.rawValue) \(route)", context: serviceContext, ofKind: .server)
        defer { span.end() }
        span.attributes["http.request.method"] = request.method.rawValue
        span.attributes["url.path"] = request.uri.path
        span.attributes["url.scheme"] = request.uri.scheme?.rawValue ?? "http"
        span.attributes["http.route"] = route
        if let tenant = context.parameters.get("slug"), Tenancy.Slug.isValid(tenant) {
            span.attributes["minibaas.tenant"] = tenant
        }
        span.attributes["minibaas.request_id"] = context.requestID
        return try await ServiceContext.$current.withValue(span.context) {
            do {
                let response = try await next(request, context)
                Self.finish(span, status: Int(response.status.code))
                return response
            } catch {
                Self.finish(span, status: (error as? any HTTPResponseError)?.status.code ?? 500)
                throw error
            }
        }
    }

    /// Per the HTTP conventions for servers: 5xx is an error (with `error.type`), 4xx is not.
    static func finish(_ span: any Span, status: Int) {
        span.attributes["http.response.status_code"] = status
        if status >= 500 {
            span.setStatus(SpanStatus(code: .error))
            span.attributes["error.type"] = String(status)
        }
    }
}

/// Reads propagation headers (`traceparent`, `tracestate`) from a request.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return carrier[name]
    }
}
