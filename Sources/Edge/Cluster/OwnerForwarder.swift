import AsyncHTTPClient
import Connectors
import Crypto
import Foundation
import Tracing
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import Runtime

/// Sends a tenant request that reached a node which does not own the tenant on to the owner, and
/// the owner's answer back, so a client never needs to know where a tenant lives. With
/// forwarding switched off it answers 307 to the owner's address instead.
struct OwnerForwarder: Sendable {
    enum Mode: String, Sendable {
        case proxy
        case redirect
    }

    let mode: Mode
    let nodeID: String
    /// Signs the hop count nodes pass along, so a client cannot claim its request was forwarded
    /// (which would make a non-owner take the tenant). Derived from the cluster's master key.
    let hopKey: SymmetricKey
    let bodyBudget: BodyBudget

    init(mode: Mode, nodeID: String, masterKey: SymmetricKey, bufferedBodies: Int = 32) {
        self.mode = mode
        self.nodeID = nodeID
        self.hopKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: masterKey, info: Data("minibaas forwarded-request hops".utf8), outputByteCount: 32)
        self.bodyBudget = BodyBudget(permits: bufferedBodies)
    }

    /// Bodies are buffered (so a forward to a member that turns out dead can go elsewhere); the
    /// owner applies the tenant's own, smaller, limit. With `bodyBudget` this bounds what
    /// forwarding may hold in memory at once to 32 × 8 MiB.
    static let maxBufferedBody = 8 << 20
    static let hopsHeader = HTTPField.Name("x-minibaas-hops")!
    static let servedByHeader = HTTPField.Name("x-minibaas-node")!
    static let fencingHeader = HTTPField.Name("x-minibaas-fencing-token")!

    /// Our reconnect policy is the coordinator's (suspect the member, place again), so the
    /// client's own connect retries are off and a dead member fails in one connect timeout.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(1)
        // An owner that stalls halfway through a response must not hold the forward forever.
        configuration.timeout.read = .seconds(75)
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()

    /// Hop-by-hop headers (RFC 9110 §7.6.1) are not passed on.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length",
    ]

    enum Failure: Error {
        /// Nothing reached the member: safe to place the request again.
        case unreachable(any Error)
        /// The member took the request and then failed or vanished: the outcome is unknown.
        case broken(any Error)
        case timedOut
        /// The member dropped out of the cluster while the request was with it.
        case memberLost
        /// Every connection to the member stayed busy: the request was never sent.
        case busy
    }

    /// The hop count a request arrives with: `hops.seconds.signature` from another node, else 0.
    func verifiedHops(_ request: Request, now: Date = Date()) -> Int {
        verifiedHops(request.headers.value(Self.hopsHeader), method: request.method.rawValue, path: request.uri.path, now: now)
    }

    func verifiedHops(_ header: String?, method: String, path: String, now: Date = Date()) -> Int {
        guard let value = header else { return 0 }
        let parts = value.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, let hops = Int(parts[0]), (1...8).contains(hops), let seconds = Int64(parts[1]),
            abs(Int64(now.timeIntervalSince1970) - seconds) <= 30
        else { return 0 }
        let expected = signature(hops: hops, seconds: seconds, method: method, path: path)
        guard Array(parts[2].utf8).count == expected.utf8.count,
            zip(parts[2].utf8, expected.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
        else { return 0 }
        return hops
    }

    func hopsHeaderValue(hops: Int, method: String, path: String, now: Date = Date()) -> String {
        let seconds = Int64(now.timeIntervalSince1970)
        return "\(hops).\(seconds).\(signature(hops: hops, seconds: seconds, method: method, path: path))"
    }

    private func signature(hops: Int, seconds: Int64, method: String, path: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(hops) \(seconds) \(method) \(path)".utf8), using: hopKey)
        return Hex.encode(code.prefix(16))
    }

    /// `webSocket`: the Location uses ws:// or wss://, which WebSocket clients require.
    func redirect(_ request: Request, to member: ClusterMember, webSocket: Bool = false) -> Response {
        let address = webSocket ? Self.webSocketAddress(member.address) : member.address
        let target = address + (request.uri.path) + (request.uri.query.map { "?" + $0 } ?? "")
        return Response(status: .temporaryRedirect, headers: [.location: target, .contentLength: "0"])
    }

    /// A member's http(s) address as the ws(s) one WebSocket clients connect to.
    static func webSocketAddress(_ address: String) -> String {
        if address.hasPrefix("https://") { return "wss://" + address.dropFirst(8) }
        if address.hasPrefix("http://") { return "ws://" + address.dropFirst(7) }
        return address
    }

    /// Forwards `request` (whose body is `body`) to `member`.
    func forward(_ request: Request, body: ByteBuffer?, to member: ClusterMember, hops: Int, clientAddress: String, timeout: Duration) async throws(Failure) -> Response {
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        var outbound = HTTPClientRequest(url: member.address + path)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) && field.name != Self.hopsHeader {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.headers.replaceOrAdd(
            name: Self.hopsHeader.rawName, value: hopsHeaderValue(hops: hops + 1, method: request.method.rawValue, path: request.uri.path))
        let forwardedFor = request.headers[.init("x-forwarded-for")!].map { $0 + ", " + clientAddress } ?? clientAddress
        outbound.headers.replaceOrAdd(name: "x-forwarded-for", value: forwardedFor)
        if let authority = request.head.authority { outbound.headers.replaceOrAdd(name: "x-forwarded-host", value: authority) }
        if let body { outbound.body = .bytes(body) }
        if TraceSwitch.enabled, let context = ServiceContext.current {
            // The owner's span continues this node's, not the client's: one trace across the hop.
            InstrumentationSystem.instrument.inject(context, into: &outbound.headers, using: HTTPHeadersInjector())
        }

        let response: HTTPClientResponse
        do {
            response = try await Self.client.execute(outbound, timeout: TimeAmount(timeout))
        } catch {
            if let error = error as? HTTPClientError, error == .getConnectionFromPoolTimeout { throw .busy }
            if Self.isConnectFailure(error) { throw .unreachable(error) }
            if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout { throw .timedOut }
            throw .broken(error)
        }
        var headers = HTTPFields()
        for (name, value) in response.headers where !Self.hopByHop.contains(name.lowercased()) || name.lowercased() == "content-length" {
            guard let fieldName = HTTPField.Name(name) else { continue }
            headers.append(HTTPField(name: fieldName, value: value))
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
    }

    static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if error is NIOConnectionError { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return true }
        return false
    }
}

/// How many forwarded request bodies may be held in memory at once on this node.
final class BodyBudget: @unchecked Sendable {
    private let lock = Lock()
    private var available: Int

    init(permits: Int) {
        available = permits
    }

    func take() -> BodyPermit? {
        lock.withLock {
            guard available > 0 else { return nil }
            available -= 1
            return BodyPermit(budget: self)
        }
    }

    fileprivate func giveBack() {
        lock.withLock { available += 1 }
    }
}

final class BodyPermit: @unchecked Sendable {
    private weak var budget: BodyBudget?
    private let lock = Lock()
    private var released = false

    fileprivate init(budget: BodyBudget) {
        self.budget = budget
    }

    func release() {
        let first = lock.withLock {
            defer { released = true }
            return !released
        }
        if first { budget?.giveBack() }
    }
}
