import AsyncHTTPClient
import Foundation
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

    /// Bodies are buffered (so a forward to a member that turns out dead can go elsewhere); the
    /// owner applies the tenant's own, smaller, limit.
    static let maxBufferedBody = 16 << 20
    static let hopsHeader = HTTPField.Name("x-minibaas-hops")!
    static let servedByHeader = HTTPField.Name("x-minibaas-node")!
    static let fencingHeader = HTTPField.Name("x-minibaas-fencing-token")!

    /// Our reconnect policy is the coordinator's (suspect the member, place again), so the
    /// client's own connect retries are off and a dead member fails in one connect timeout.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(1)
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
    }

    func redirect(_ request: Request, to member: ClusterMember) -> Response {
        let target = member.address + (request.uri.path) + (request.uri.query.map { "?" + $0 } ?? "")
        return Response(status: .temporaryRedirect, headers: [.location: target, .contentLength: "0"])
    }

    /// Forwards `request` (whose body is `body`) to `member`.
    func forward(_ request: Request, body: ByteBuffer?, to member: ClusterMember, hops: Int, clientAddress: String, timeout: Duration) async throws(Failure) -> Response {
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        var outbound = HTTPClientRequest(url: member.address + path)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) && field.name != Self.hopsHeader {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.headers.replaceOrAdd(name: Self.hopsHeader.rawName, value: String(hops + 1))
        let forwardedFor = request.headers[.init("x-forwarded-for")!].map { $0 + ", " + clientAddress } ?? clientAddress
        outbound.headers.replaceOrAdd(name: "x-forwarded-for", value: forwardedFor)
        if let authority = request.head.authority { outbound.headers.replaceOrAdd(name: "x-forwarded-host", value: authority) }
        if let body { outbound.body = .bytes(body) }

        let (seconds, attoseconds) = timeout.components
        let response: HTTPClientResponse
        do {
            response = try await Self.client.execute(outbound, timeout: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        } catch {
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
