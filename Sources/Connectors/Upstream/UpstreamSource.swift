import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Runtime

/// A tenant's upstream REST API (`kind: openapi`): requests validated against its spec, sent with
/// the tenant's credentials, retried with backoff when idempotent, guarded by a circuit breaker,
/// and GET answers cached as the upstream's Cache-Control allows.
public final class UpstreamSource: Sendable {
    public let name: String
    public let spec: UpstreamSpec
    public let baseURL: String
    public let model: SchemaModel
    private let headers: [(String, String)]
    private let http: HTTPClient
    public let breaker = CircuitBreaker()
    public let cache = ResponseCache()
    static let maxResponseBytes = 10 << 20
    static let idempotent: Set<String> = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]

    /// The client for every upstream: our own retries (with backoff, idempotent methods only)
    /// replace the client's reconnect loop, so a dead upstream fails fast instead of holding a
    /// tenant's slot until its deadline; redirects are not followed off the configured host.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(3)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    public init(name: String, spec: UpstreamSpec, baseURL: String, headers: [(String, String)], model: SchemaModel, http: HTTPClient = UpstreamSource.client) {
        self.name = name
        self.spec = spec
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.headers = headers
        self.model = model
        self.http = http
    }

    public struct Answer: Sendable {
        public var status: Int
        public var contentType: String?
        public var cacheControl: String?
        public var body: ByteBuffer
        /// Seconds the answer spent in our cache; nil when fresh from the upstream.
        public var age: Int?
    }

    public enum Failure: Error, Sendable, Equatable {
        /// No match in the spec: 404, or 405 with the allowed methods.
        case noRoute(allowed: [String])
        case invalid(SchemaValidator.Violation)
        case unreachable(String)
        case timedOut
        case circuitOpen
        case badAnswer(String)
    }

    /// Validates and forwards one request. `path` is the part after `/api/v1`.
    public func forward(
        method: String, path: [String], query: [(String, String)], body: ByteBuffer?, deadline: Duration
    ) async throws(Failure) -> Answer {
        guard let (route, pathParameters) = spec.match(method: method == "HEAD" ? "GET" : method, path: path) else {
            throw .noRoute(allowed: spec.allowedMethods(path: path))
        }
        let validator = SchemaValidator(document: spec.document)
        var forwardedQuery: [(String, String)] = []
        for parameter in route.parameters {
            switch parameter.location {
            case .path:
                guard let text = pathParameters[parameter.name] else { continue }
                do {
                    try validator.validate(SchemaValidator.coerce(text, schema: parameter.schema), against: parameter.schema, at: "/path/\(parameter.name)")
                } catch { throw .invalid(error) }
            case .query:
                let values = query.filter { $0.0 == parameter.name }.map(\.1)
                if values.isEmpty && parameter.required {
                    throw .invalid(SchemaValidator.Violation(pointer: "/query/\(parameter.name)", message: "is required"))
                }
                for text in values {
                    let itemSchema = parameter.schema["type"]?.stringValue == "array" ? parameter.schema["items"] ?? .object([:]) : parameter.schema
                    do {
                        try validator.validate(SchemaValidator.coerce(text, schema: itemSchema), against: itemSchema, at: "/query/\(parameter.name)")
                    } catch { throw .invalid(error) }
                    forwardedQuery.append((parameter.name, text))
                }
            case .header:
                continue
            }
        }
        // Only declared parameters go upstream: the spec is the contract, not a suggestion.
        for (name, _) in query where !route.parameters.contains(where: { $0.name == name && $0.location == .query }) {
            throw .invalid(SchemaValidator.Violation(pointer: "/query/\(name)", message: "is not a parameter of \(route.operationID)"))
        }
        var payload: ByteBuffer?
        if let schema = route.body {
            if let body, body.readableBytes > 0 {
                let value: JSONValue
                do {
                    value = try JSONValue.parse(body.readableBytesView)
                } catch {
                    throw .invalid(SchemaValidator.Violation(pointer: "/body", message: "is not valid JSON"))
                }
                do { try validator.validate(value, against: schema, at: "/body") } catch { throw .invalid(error) }
                payload = body
            } else if route.bodyRequired {
                throw .invalid(SchemaValidator.Violation(pointer: "/body", message: "is required"))
            }
        }

        let upstreamPath = route.segments.map { segment -> String in
            switch segment {
            case .literal(let text): text
            case .parameter(let name): (pathParameters[name] ?? "").addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? ""
            }
        }.joined(separator: "/")
        var components = URLComponents(string: baseURL + "/" + upstreamPath)
        if !forwardedQuery.isEmpty { components?.queryItems = forwardedQuery.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components?.string else { throw .badAnswer("cannot build the upstream URL") }

        let cacheKey = "\(route.method) \(url)"
        if route.method == "GET", let (entry, age) = cache.get(cacheKey) {
            return Answer(status: entry.status, contentType: entry.contentType, cacheControl: "max-age=\(entry.maxAge)", body: entry.body, age: age)
        }
        guard breaker.admit() else { throw .circuitOpen }
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            let remaining = deadline - (ContinuousClock.now - started)
            do {
                let answer = try await send(method: method, url: url, body: payload, timeout: remaining)
                let canRetry = Self.idempotent.contains(method) && attempt < 3 && deadline - (ContinuousClock.now - started) > .milliseconds(400)
                if answer.status >= 500, canRetry {
                    try? await Task.sleep(for: .milliseconds(100 * attempt * attempt))
                    continue
                }
                breaker.record(success: answer.status < 500)
                if method == "GET", answer.status == 200, let maxAge = ResponseCache.maxAge(answer.cacheControl) {
                    cache.put(cacheKey, ResponseCache.Entry(status: 200, contentType: answer.contentType, body: answer.body, storedAt: .now, maxAge: maxAge))
                }
                return answer
            } catch let failure {
                let retryable = failure == .timedOut || { if case .unreachable = failure { true } else { false } }()
                let canRetry = Self.idempotent.contains(method) && attempt < 3 && deadline - (ContinuousClock.now - started) > .milliseconds(400)
                if retryable, canRetry {
                    try? await Task.sleep(for: .milliseconds(100 * attempt * attempt))
                    continue
                }
                breaker.record(success: false)
                throw failure
            }
        }
    }

    private func send(method: String, url: String, body: ByteBuffer?, timeout: Duration) async throws(Failure) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        if let body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        let seconds = max(0.05, Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18)
        do {
            let response = try await OutboundSpan.execute(http, request, timeout: .milliseconds(Int64(seconds * 1000)))
            let collected: ByteBuffer
            do {
                collected = try await response.body.collect(upTo: Self.maxResponseBytes)
            } catch {
                throw Failure.badAnswer("the answer is larger than \(Self.maxResponseBytes >> 20) MiB or was cut off")
            }
            let contentType = response.headers.first(name: "Content-Type")
            if contentType?.lowercased().contains("json") == true, collected.readableBytes > 0, (try? JSONValue.parse(collected.readableBytesView)) == nil {
                throw Failure.badAnswer("the upstream declared JSON but sent something else")
            }
            return Answer(
                status: Int(response.status.code), contentType: contentType, cacheControl: response.headers.first(name: "Cache-Control"),
                body: collected, age: nil)
        } catch let failure as Failure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw .timedOut
        } catch {
            throw .unreachable("\(error)")
        }
    }
}
