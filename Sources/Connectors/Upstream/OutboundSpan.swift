import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Runtime
import Tracing

/// A CLIENT span around one call to an upstream API (REST or GraphQL), with OpenTelemetry's HTTP
/// client conventions, and the trace passed on in `traceparent` so the upstream's spans join it.
/// The URL is recorded without its query (credentials are sometimes sent there). Made only when
/// the node exports traces.
public enum OutboundSpan {
    public static func execute(_ client: HTTPClient, _ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        guard TraceSwitch.enabled else { return try await client.execute(request, timeout: timeout) }
        var request = request
        let method = request.method.rawValue
        return try await withSpan(method, ofKind: .client) { span in
            span.attributes["http.request.method"] = method
            if let url = URLComponents(string: request.url), let host = url.host {
                let port = url.port ?? (url.scheme == "https" ? 443 : 80)
                span.attributes["server.address"] = host
                span.attributes["server.port"] = port
                span.attributes["url.full"] = "\(url.scheme ?? "http")://\(host):\(port)\(url.path)"
            }
            InstrumentationSystem.instrument.inject(span.context, into: &request.headers, using: HTTPHeadersInjector())
            let response = try await client.execute(request, timeout: timeout)
            let status = Int(response.status.code)
            span.attributes["http.response.status_code"] = status
            if status >= 500 {
                span.setStatus(SpanStatus(code: .error))
                span.attributes["error.type"] = String(status)
            }
            return response
        }
    }
}

/// Writes propagation headers (`traceparent`, `tracestate`) into an outbound request.
public struct HTTPHeadersInjector: Injector {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
