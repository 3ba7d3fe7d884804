import Foundation
import Hummingbird
import Runtime

/// Every error a client sees, in PostgREST's shape `{"code","message","details","hint"}`. Codes keep
/// PostgREST's numbers where the meaning matches and use `MB` + three digits for ours; the list
/// lives in docs/errors.md and never changes meaning once released.
struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var details: String?
    var hint: String?
    var headers: HTTPFields = [:]
    /// Fields some clients look for beside the four standard ones (GoTrue's `weak_password`).
    var extra: JSONObject = [:]

    var description: String { "\(code) \(status.code): \(message)" }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        render()
    }

    /// The same answer with `Connection: close`: the node ends the connection after it.
    var closingConnection: APIError {
        var error = self
        error.headers[.connection] = "close"
        return error
    }

    func render() -> Response {
        var body = JSONObject()
        body["code"] = .string(code)
        body["message"] = .string(message)
        body["details"] = details.map(JSONValue.string) ?? .null
        body["hint"] = hint.map(JSONValue.string) ?? .null
        for (key, value) in extra { body[key] = value }
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONValue.object(body).encoded())))
    }
}

extension APIError {
    /// Hummingbird's own errors (no route, wrong method, body too large) in our shape.
    init(_ error: HTTPError) {
        switch error.status {
        case .notFound: self = .routeNotFound("this path")
        case .methodNotAllowed: self = .methodNotAllowed()
        case .contentTooLarge: self = APIError(status: .contentTooLarge, code: "MB103", message: "request body is too large")
        default: self = APIError(status: error.status, code: "MB000", message: error.body ?? error.status.reasonPhrase)
        }
    }

    // MARK: Generic HTTP
    static func internalError(requestID: String) -> APIError {
        APIError(status: .internalServerError, code: "MB001", message: "internal error",
                 details: "request id \(requestID)", hint: "the node's log has the details under this request id")
    }
    static func routeNotFound(_ path: String) -> APIError {
        APIError(status: .notFound, code: "MB002", message: "no route for \(path)")
    }
    static func methodNotAllowed() -> APIError {
        APIError(status: .methodNotAllowed, code: "MB003", message: "method not allowed on this route")
    }

    // MARK: Request bodies
    static func invalidJSON(_ why: String) -> APIError {
        APIError(status: .badRequest, code: "MB100", message: "request body is not valid JSON", details: why)
    }
    static func invalidField(_ field: String, _ why: String) -> APIError {
        APIError(status: .badRequest, code: "MB101", message: "invalid value for '\(field)'", details: why)
    }
    static func unknownFields(_ fields: [String], allowed: [String]) -> APIError {
        APIError(status: .badRequest, code: "MB102", message: "unknown field(s): \(fields.joined(separator: ", "))",
                 hint: "allowed fields: \(allowed.joined(separator: ", "))")
    }
    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: "MB103", message: "request body is larger than \(limit) bytes")
    }
    static func unsupportedMediaType() -> APIError {
        APIError(status: .unsupportedMediaType, code: "MB104", message: "request body must be application/json", hint: "send Content-Type: application/json")
    }

    // MARK: Authentication
    static let adminUnauthorized = APIError(
        status: .unauthorized, code: "MB200", message: "admin token missing or invalid",
        hint: "send Authorization: Bearer <admin token>", headers: [.wwwAuthenticate: "Bearer"])
    static let missingAPIKey = APIError(
        status: .unauthorized, code: "MB201", message: "no API key found in request",
        hint: "send the tenant's anon or service key in the apikey header")
    static func invalidAPIKey(_ why: String) -> APIError {
        APIError(status: .unauthorized, code: "PGRST301", message: "invalid API key", details: why)
    }
    static func invalidJWT(_ why: String) -> APIError {
        APIError(status: .unauthorized, code: "PGRST301", message: why, headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
    }
    static func jwtClaims(_ why: String) -> APIError {
        APIError(status: .unauthorized, code: "PGRST303", message: why, headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
    }

    // MARK: Tenants
    static func tenantNotFound(_ slug: String) -> APIError {
        APIError(status: .notFound, code: "MB300", message: "tenant '\(slug)' does not exist")
    }
    static func tenantExists(_ slug: String) -> APIError {
        APIError(status: .conflict, code: "MB301", message: "tenant '\(slug)' already exists")
    }
    static func tenantDisabled(_ slug: String) -> APIError {
        APIError(status: .forbidden, code: "MB302", message: "tenant '\(slug)' is disabled")
    }
    static func sourceNotFound(_ name: String) -> APIError {
        APIError(status: .notFound, code: "MB303", message: "source '\(name)' does not exist")
    }
    static func sourceExists(_ name: String) -> APIError {
        APIError(status: .conflict, code: "MB304", message: "source '\(name)' already exists")
    }

    // MARK: Isolation
    static func rateLimited(retryAfter: Int) -> APIError {
        APIError(status: .tooManyRequests, code: "MB400", message: "rate limit exceeded for this tenant",
                 hint: "retry after \(retryAfter) s", headers: [.retryAfter: String(retryAfter)])
    }
    static let overloaded = APIError(
        status: .serviceUnavailable, code: "MB401", message: "tenant is at its concurrency limit and its queue is full",
        hint: "retry shortly", headers: [.retryAfter: "1"])
    static let deadlineExceeded = APIError(
        status: .gatewayTimeout, code: "MB402", message: "request exceeded the tenant's deadline")

    // MARK: Node
    static func controlPlaneUnavailable() -> APIError {
        APIError(status: .serviceUnavailable, code: "MB500", message: "control plane unavailable", hint: "retry shortly",
                 headers: [.retryAfter: "1"])
    }
    // MARK: Cluster
    static func tenantUnplaced(_ why: String) -> APIError {
        APIError(status: .serviceUnavailable, code: "MB510", message: "no node can serve this tenant right now", details: why,
                 hint: "retry shortly", headers: [.retryAfter: "1"])
    }
    static func ownerFailed(_ member: String) -> APIError {
        APIError(status: .badGateway, code: "MB511", message: "the node that owns this tenant failed while handling the request",
                 details: "owner: \(member); the request may or may not have been applied",
                 hint: "check before retrying a non-idempotent request")
    }
    static func ownerTimedOut(_ member: String) -> APIError {
        APIError(status: .gatewayTimeout, code: "MB512", message: "the node that owns this tenant did not answer in time",
                 details: "owner: \(member); the request may or may not have been applied")
    }
    static let ownershipLost = APIError(
        status: .serviceUnavailable, code: "MB513", message: "this node lost the tenant to another node before the request ran",
        details: "nothing was applied", hint: "retry: the new owner serves it", headers: [.retryAfter: "0"])

    static let shuttingDown = APIError(
        status: .serviceUnavailable, code: "MB501", message: "node is shutting down", headers: [.retryAfter: "1", .connection: "close"])
}
