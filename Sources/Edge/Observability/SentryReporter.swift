import AsyncHTTPClient
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import Runtime
import Tenancy

/// A Sentry DSN, `{scheme}://{public key}@{host}[:port][/path]/{project}`, and the envelope
/// endpoint it names (`{scheme}://{host}[:port][/path]/api/{project}/envelope/`).
struct SentryDSN: Sendable, Equatable {
    let publicKey: String
    let envelopeURL: String

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    init(_ text: String) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme) else {
            throw Malformed(description: "MINIBAAS_SENTRY_DSN must be an http(s) Sentry DSN ({scheme}://{key}@{host}/{project})")
        }
        guard let key = url.user, !key.isEmpty else {
            throw Malformed(description: "MINIBAAS_SENTRY_DSN has no public key before '@'")
        }
        guard let host = url.host, !host.isEmpty else { throw Malformed(description: "MINIBAAS_SENTRY_DSN has no host") }
        var path = url.path.split(separator: "/").map(String.init)
        guard let project = path.popLast(), project.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw Malformed(description: "MINIBAAS_SENTRY_DSN names no project (its last path segment)")
        }
        let port = url.port.map { ":\($0)" } ?? ""
        let prefix = path.isEmpty ? "" : "/" + path.joined(separator: "/")
        self.publicKey = key
        self.envelopeURL = "\(scheme)://\(host)\(port)\(prefix)/api/\(project)/envelope/"
    }
}

/// Sends unexpected errors — a 500, a supervised child crashing, a tenant's subsystem giving up —
/// to Sentry as envelopes. Never on the request's time: events wait in a bounded queue for one
/// background sender (5 s per delivery), overflow is dropped and counted, and a token bucket
/// limits the rate (a burst of 10, then one a second). Events carry the request id, tenant,
/// node, release and trace — never keys, tokens, passwords, query strings or bodies.
final class SentryReporter: Sendable {
    let dsn: SentryDSN
    let release: String
    let serverName: String
    let environment: String?
    private let queue: AsyncStream<[UInt8]>.Continuation
    private let stream: AsyncStream<[UInt8]>
    private let bucket = TokenBucket(rate: 1, capacity: 10)

    static let queueLimit = 100

    init(dsn: SentryDSN, serverName: String, environment: String?) {
        self.dsn = dsn
        self.release = "minibaas@\(MiniBaasCommand.version)"
        self.serverName = serverName
        self.environment = environment
        (stream, queue) = AsyncStream.makeStream(of: [UInt8].self, bufferingPolicy: .bufferingOldest(Self.queueLimit))
    }

    /// Delivers queued envelopes until cancelled.
    func run() async {
        for await envelope in stream {
            var request = HTTPClientRequest(url: dsn.envelopeURL)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-sentry-envelope")
            request.headers.add(
                name: "X-Sentry-Auth", value: "Sentry sentry_version=7, sentry_key=\(dsn.publicKey), sentry_client=minibaas/\(MiniBaasCommand.version)")
            request.body = .bytes(ByteBuffer(bytes: envelope))
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                _ = try? await response.body.collect(upTo: 64 << 10)
                Self.count((200..<300).contains(Int(response.status.code)) ? "sent" : "refused")
            } catch {
                Self.count("failed")
            }
        }
    }

    func stop() {
        queue.finish()
    }

    /// A request answered with a 5xx.
    func reportServerError(
        type: String, message: String, status: Int, method: String, route: String, path: String, tenant: String?, requestID: String,
        trace: (traceID: String, spanID: String)
    ) {
        var tags: JSONObject = ["request_id": .string(requestID), "route": .string(route), "status": .string(String(status))]
        if let tenant { tags["tenant"] = .string(tenant) }
        capture(
            type: type, message: message, mechanism: "http", tags: tags,
            request: ["method": .string(method), "url": .string(path)], trace: trace)
    }

    /// A problem a supervisor reported (see `ProblemReports`).
    func report(_ problem: Problem) {
        var tags = JSONObject()
        for (key, value) in problem.tags.sorted(by: { $0.key < $1.key }) { tags[key] = .string(value) }
        capture(type: problem.kind, message: problem.message, mechanism: "supervisor", tags: tags, request: nil, trace: Self.newTrace())
    }

    private func capture(type: String, message: String, mechanism: String, tags: JSONObject, request: JSONObject?, trace: (traceID: String, spanID: String)) {
        guard case .allowed = bucket.take() else { return Self.count("rate_limited") }
        let eventID = Self.hex(16)
        var event: JSONObject = [
            "event_id": .string(eventID), "timestamp": .number(Date().timeIntervalSince1970), "platform": "other", "level": "error",
            "logger": "minibaas", "release": .string(release), "server_name": .string(serverName),
            "exception": ["values": [[
                "type": .string(type), "value": .string(Self.scrub(message)),
                "mechanism": ["type": .string(mechanism), "handled": false],
            ]]],
            "tags": .object(tags),
            "contexts": ["trace": ["trace_id": .string(trace.traceID), "span_id": .string(trace.spanID), "op": .string(mechanism == "http" ? "http.server" : "supervisor")]],
        ]
        if let environment { event["environment"] = .string(environment) }
        if let request { event["request"] = .object(request) }
        let payload = JSONValue.object(event).encoded()
        var envelope = JSONValue.object(["event_id": .string(eventID), "sent_at": .string(Self.now())]).encoded()
        envelope.append(0x0A)
        envelope += JSONValue.object(["type": "event", "length": .integer(Int64(payload.count))]).encoded()
        envelope.append(0x0A)
        envelope += payload
        envelope.append(0x0A)
        if case .dropped = queue.yield(envelope) { Self.count("dropped") }
    }

    /// Messages can quote URLs and tokens (an error naming a connection string): passwords in
    /// URLs, JWTs and bearer tokens are blanked, and the text is cut at 1 KiB.
    static func scrub(_ message: String) -> String {
        var text = String(message.prefix(1024))
        text = text.replacing(/([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:\/@\s]*:)[^@\s]*@/) { "\($0.output.1)***@" }
        text = text.replacing(/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/) { _ in "[token]" }
        text = text.replacing(/(?i)(bearer|apikey|password|secret|token)([=: ]+)[^\s,;&]+/) { "\($0.output.1)\($0.output.2)[redacted]" }
        return text
    }

    static func newTrace() -> (traceID: String, spanID: String) { (hex(16), hex(8)) }

    static func hex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    private static func now() -> String {
        Date().formatted(.iso8601)
    }

    private static func count(_ outcome: String) {
        Counter(label: "minibaas_error_reports_total", dimensions: [("outcome", outcome)]).increment()
    }
}
