import HTTPTypes
import Hummingbird
import Logging
import OTel
import Runtime
import Tenancy
import Tracing

/// Reports every request answered with a 5xx to Sentry (one event each; 4xx are the caller's
/// and never reported). Runs inside the request's span, so the event carries its trace.
struct ErrorReportingMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let reporter: SentryReporter
    let nodeID: String

    /// Answers the node gives on purpose under load (a full queue, a deadline, no owner): they are
    /// counted in the metrics; reporting each would spend the whole budget during an incident.
    static let shedding: Set<String> = ["MB401", "MB402", "MB510"]

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            // A forwarded answer was reported by the owner that gave it.
            let servedBy = response.headers.value(OwnerForwarder.servedByHeader)
            if response.status.code >= 500, servedBy == nil || servedBy == nodeID {
                report(request, context, status: response.status.code, type: "HTTP \(response.status.code)", message: response.status.reasonPhrase)
            }
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            if status >= 500, !((error as? APIError).map { Self.shedding.contains($0.code) } ?? false) {
                let (type, message): (String, String)
                if let api = error as? APIError {
                    (type, message) = (api.code, api.message)
                } else {
                    (type, message) = (String(describing: Swift.type(of: error)), String(describing: error))
                }
                report(request, context, status: status, type: type, message: message)
            }
            throw error
        }
    }

    private func report(_ request: Request, _ context: EdgeContext, status: Int, type: String, message: String) {
        let tenant = context.parameters.get("slug").flatMap { Tenancy.Slug.isValid($0) ? $0 : nil }
        reporter.reportServerError(
            type: type, message: message, status: status, method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
            path: request.uri.path, tenant: tenant, requestID: context.requestID, trace: RequestTrace.ids(request))
    }
}

/// The trace a request belongs to: its span's when the node exports traces, else the caller's
/// `traceparent`, else a new one.
enum RequestTrace {
    static let metadata = OTel.makeLoggingMetadataProvider()

    static func ids(_ request: Request) -> (traceID: String, spanID: String) {
        if TraceSwitch.enabled {
            let current = metadata.get()
            if case .string(let trace)? = current["trace_id"], case .string(let span)? = current["span_id"] { return (trace, span) }
        }
        if let parent = request.headers[HTTPField.Name("traceparent")!], let ids = parse(parent) { return ids }
        return SentryReporter.newTrace()
    }

    /// W3C `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
    static func parse(_ header: String) -> (traceID: String, spanID: String)? {
        let parts = header.lowercased().split(separator: "-")
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts[1].allSatisfy(\.isHexDigit), parts[2].allSatisfy(\.isHexDigit),
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" })
        else { return nil }
        return (String(parts[1]), String(parts[2]))
    }
}
