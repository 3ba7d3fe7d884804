import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Runtime

/// The outermost responder: gives each request its id, maps `{slug}.{base domain}` hosts onto the
/// `/t/{slug}` routes, and turns every error into the public error shape. Nothing thrown inside
/// leaves as a stack trace or a closed connection.
struct EdgeResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == EdgeContext {
    typealias Context = EdgeContext
    let inner: Inner
    let baseDomain: String?

    func respond(to request: Request, context: EdgeContext) async throws -> Response {
        let start = ContinuousClock.now
        var context = context
        let requestID = Self.acceptableID(request.headers.value(.requestID)) ?? RequestIdentifier.next()
        context.requestID = requestID
        context.logger[metadataKey: "request_id"] = .string(requestID)

        let routed = rewriteForHost(request)
        var response: Response
        do {
            response = try await inner.respond(to: routed, context: context)
        } catch {
            response = Self.render(error, requestID: requestID, logger: context.logger)
        }
        response.headers[.requestID] = requestID
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                "status": .stringConvertible(response.status.code),
                "ms": .stringConvertible(Supervisor.milliseconds(ContinuousClock.now - start)),
            ])
        return response
    }

    static func render(_ error: any Error, requestID: String, logger: Logger) -> Response {
        switch error {
        case let error as APIError:
            return error.render()
        case let error as HTTPError:
            return APIError(error).render()
        default:
            logger.error("unhandled error", metadata: ["error": .string(String(reflecting: error))])
            return APIError.internalError(requestID: requestID).render()
        }
    }

    /// Accepts a caller's request id only if it is short and plain, so it is safe in logs.
    static func acceptableID(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != 0x22 && $0 != 0x5C })
        else { return nil }
        return value
    }

    private func rewriteForHost(_ request: Request) -> Request {
        guard let baseDomain, let authority = request.head.authority else { return request }
        var host = Substring(authority.lowercased())
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = host[..<colon] }
        guard host.hasSuffix("." + baseDomain) else { return request }
        let slug = host.dropLast(baseDomain.count + 1)
        guard !slug.contains("."), !slug.isEmpty else { return request }
        var head = request.head
        let path = head.path ?? "/"
        head.path = "/t/\(slug)" + (path.hasPrefix("/") ? path : "/" + path)
        return Request(head: head, body: request.body)
    }
}
