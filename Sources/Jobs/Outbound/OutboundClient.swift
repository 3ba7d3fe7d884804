import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends jobs' HTTP requests (webhook deliveries, cron runs) to tenants' receivers: redirects are
/// not followed, every attempt has a deadline, at most 4 KiB of an answer is kept (a receiver
/// sending gigabytes cannot hold a worker), and the target's name is resolved and its addresses
/// checked against the outbound policy before every attempt. A plain-http request then goes to
/// the vetted address itself (the name only in `Host`), so a rebinding DNS answer cannot move it
/// to an internal one between check and connect; https keeps the name for its certificate check,
/// with the check made just before the client's own lookup.
public struct OutboundClient: Sendable {
    public struct Answer: Sendable, Equatable {
        /// nil when no answer came (refused, unreachable, timed out).
        public var status: Int?
        public var latencyMs: Int
        /// The start of the answer's body, at most `keptBytes`.
        public var body: String?
        public var error: String?
        /// What the receiver asked for in `Retry-After`, in seconds.
        public var retryAfter: Int?

        public var succeeded: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    public static let keptBytes = 4096

    let http: HTTPClient
    let policy: OutboundPolicy

    public init(policy: OutboundPolicy, http: HTTPClient = OutboundClient.shared) {
        self.policy = policy
        self.http = http
    }

    /// One client for all tenants' jobs: no redirects, no reconnect loops (the job's own retry
    /// schedule is the retry), short connect timeout.
    public static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        // Every tenant's receivers through one pool: more than the default 8 per host, since one
        // receiver may take a tenant's whole in-flight budget.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    public func send(url text: String, method: String = "POST", headers extraHeaders: [(String, String)], body: [UInt8], timeout: Duration) async -> Answer {
        let started = ContinuousClock.now
        func elapsed() -> Int { Int((ContinuousClock.now - started).components.seconds * 1000 + (ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000) }
        let url: URL
        do {
            url = try policy.check(url: text)
        } catch {
            return Answer(status: nil, latencyMs: 0, body: nil, error: error.description, retryAfter: nil)
        }
        let host = url.host ?? ""
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let addresses: [String]
        do {
            addresses = try await OutboundResolver.resolve(bare, port: url.port ?? (url.scheme == "https" ? 443 : 80))
        } catch {
            return Answer(status: nil, latencyMs: elapsed(), body: nil, error: "cannot resolve \(bare): \(error)", retryAfter: nil)
        }
        guard let first = addresses.first else {
            return Answer(status: nil, latencyMs: elapsed(), body: nil, error: "\(bare) has no address", retryAfter: nil)
        }
        if let refused = addresses.first(where: { !policy.permits($0) }) {
            return Answer(status: nil, latencyMs: elapsed(), body: nil, error: OutboundError.refused("\(bare) → \(refused)").description, retryAfter: nil)
        }
        var target = text
        var headers = HTTPHeaders()
        if url.scheme?.lowercased() == "http", IPAddress(bare) == nil, var components = URLComponents(url: url, resolvingAgainstBaseURL: false) {
            components.host = first.contains(":") ? "[\(first)]" : first
            if let pinned = components.string { target = pinned }
            headers.add(name: "Host", value: url.port.map { "\(bare):\($0)" } ?? bare)
        }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if headers["User-Agent"].isEmpty { headers.add(name: "User-Agent", value: "mini-baas-webhooks/1") }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        do {
            // The future-based API: it does not depend on which executor runs the caller's task
            // (the async one stalled with Swift tasks on NIO's event loops).
            let request = try HTTPClient.Request(url: target, method: HTTPMethod(rawValue: method), headers: headers, body: .bytes(body))
            let collected = try await http.execute(request: request, delegate: KeptBody(limit: Self.keptBytes), deadline: deadline).futureResult.get()
            let status = collected.status
            return Answer(
                status: status, latencyMs: elapsed(), body: String(decoding: collected.body.readableBytesView, as: UTF8.self),
                error: (200..<300).contains(status) ? nil : "the receiver answered \(status)",
                retryAfter: collected.retryAfter.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) })
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return Answer(status: nil, latencyMs: elapsed(), body: nil, error: "no answer within \(timeout)", retryAfter: nil)
        } catch {
            return Answer(status: nil, latencyMs: elapsed(), body: nil, error: "\(error)", retryAfter: nil)
        }
    }
}

/// Keeps the status, `Retry-After` and the first `limit` bytes of an answer; the rest is read and
/// dropped as it comes, never held.
final class KeptBody: HTTPClientResponseDelegate, @unchecked Sendable {
    struct Collected: Sendable {
        var status = 0
        var retryAfter: String?
        var body = ByteBuffer()
    }

    let limit: Int
    private var collected = Collected()

    init(limit: Int) { self.limit = limit }

    func didReceiveHead(task: HTTPClient.Task<Collected>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        collected.status = Int(head.status.code)
        collected.retryAfter = head.headers.first(name: "Retry-After")
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Collected>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let room = limit - collected.body.readableBytes
        if room > 0 {
            var buffer = buffer
            if let slice = buffer.readSlice(length: min(room, buffer.readableBytes)) { collected.body.writeImmutableBuffer(slice) }
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Collected>) throws -> Collected { collected }
}

/// Name → addresses with the system resolver, off the async threads.
public enum OutboundResolver {
    public static func resolve(_ host: String, port: Int) async throws -> [String] {
        if IPAddress(host) != nil { return [host] }
        return try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &result)
            guard status == 0 else { throw ResolveError(message: String(cString: gai_strerror(status))) }
            defer { freeaddrinfo(result) }
            var addresses: [String] = []
            var cursor = result
            while let entry = cursor {
                var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                    let address = String(cString: buffer)
                    if !addresses.contains(address) { addresses.append(address) }
                }
                cursor = entry.pointee.ai_next
            }
            return addresses
        }
    }

    public struct ResolveError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}
