import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy

/// `{apiUrl}/api/v1/…` (the first upstream) and `{apiUrl}/sources/{name}/api/v1/…`: a tenant's
/// upstream REST APIs behind our keys, policies, limits and cache. A role other than the service
/// role needs an `execute` policy naming the operation.
struct UpstreamAPI {
    let node: NodeServices

    func register(on tenant: RouterGroup<EdgeContext>) {
        for base in ["api/v1", "sources/:source/api/v1"] {
            for method: HTTPRequest.Method in [.get, .head, .post, .put, .patch, .delete] {
                tenant.on("\(base)/**", method: method, use: forward)
            }
        }
        tenant.post("graphql/v1", use: graphQL)
        tenant.post("sources/:source/graphql/v1", use: graphQL)
    }

    /// `POST {apiUrl}/graphql/v1 {query, variables?, operationName?}` to a GraphQL upstream.
    @Sendable func graphQL(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let name = context.parameters.get("source")
        guard let upstream = tree.attachments.get(TenantUpstreams.self)?.graphQL(named: name) else {
            throw APIError.sourceNotFound(name ?? "(no GraphQL source registered)")
        }
        let body = try await JSONBody.read(request, maxBytes: tree.tenant.limits.maxBodyBytes)
        try body.allowOnly(["query", "variables", "operationName", "extensions"])
        let query = try body.requiredString("query")
        let operationName = try body.string("operationName")
        let analysis: GraphQLQueryAnalyzer.Analysis
        do {
            analysis = try GraphQLQueryAnalyzer.analyze(query, operationName: operationName, limits: upstream.limits)
        } catch {
            throw APIError(status: .badRequest, code: "MB706", message: "the GraphQL request is refused: \(error.message)")
        }
        if !caller.isServiceRole {
            let policies = tree.attachments.get(TenantPolicies.self)?.policies ?? []
            for field in analysis.rootFields where field != "__typename" {
                guard policies.contains(where: { $0.entity == field && $0.role == caller.role && $0.action == .execute }) else {
                    throw APIError(
                        status: caller.role == "anon" ? .unauthorized : .forbidden, code: "42501",
                        message: "permission denied: no execute policy on '\(field)' for role \(caller.role)")
                }
            }
        }
        let deadline = Duration.milliseconds(tree.tenant.limits.requestTimeoutMs * 9 / 10)
        let answer: UpstreamSource.Answer
        do {
            answer = try await upstream.forward(body.object, deadline: deadline)
        } catch {
            throw Self.error(error, path: ["graphql"])
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: [.contentType: "application/json"], body: .init(byteBuffer: answer.body))
    }

    @Sendable func forward(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let name = context.parameters.get("source")
        guard let upstream = tree.attachments.get(TenantUpstreams.self)?.upstream(named: name) else {
            throw APIError.sourceNotFound(name ?? "(no upstream API registered)")
        }
        let path = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
        let method = request.method.rawValue
        if !caller.isServiceRole {
            guard let (route, _) = upstream.spec.match(method: method == "HEAD" ? "GET" : method, path: path) else {
                throw Self.error(.noRoute(allowed: upstream.spec.allowedMethods(path: path)), path: path)
            }
            let policies = tree.attachments.get(TenantPolicies.self)?.policies ?? []
            guard policies.contains(where: { $0.entity == route.operationID && $0.role == caller.role && $0.action == .execute }) else {
                throw APIError(
                    status: caller.role == "anon" ? .unauthorized : .forbidden, code: "42501",
                    message: "permission denied: no execute policy on '\(route.operationID)' for role \(caller.role)")
            }
        }
        let query = request.uri.queryParameters.compactMap { pair -> (String, String)? in
            let key = String(pair.key).removingPercentEncoding ?? String(pair.key)
            return key == "apikey" ? nil : (key, String(pair.value))
        }
        var body: ByteBuffer?
        if request.method != .get && request.method != .head {
            body = try await request.body.collect(upTo: tree.tenant.limits.maxBodyBytes)
        }
        // The upstream gets most of the tenant's deadline; the rest answers the client in time.
        let deadline = Duration.milliseconds(tree.tenant.limits.requestTimeoutMs * 9 / 10)
        let answer: UpstreamSource.Answer
        do {
            answer = try await upstream.forward(method: method, path: path, query: query, body: body, deadline: deadline)
        } catch {
            throw Self.error(error, path: path)
        }
        var headers: HTTPFields = [:]
        headers[.contentType] = answer.contentType ?? "application/octet-stream"
        if let cacheControl = answer.cacheControl { headers[.cacheControl] = cacheControl }
        headers[.xCache] = answer.age == nil ? "MISS" : "HIT"
        if let age = answer.age { headers[.age] = String(age) }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: headers,
            body: request.method == .head ? .init() : .init(byteBuffer: answer.body))
    }

    static func error(_ failure: UpstreamSource.Failure, path: [String]) -> APIError {
        switch failure {
        case .noRoute(let allowed) where allowed.isEmpty:
            return APIError(status: .notFound, code: "MB700", message: "the upstream API has no operation at /\(path.joined(separator: "/"))")
        case .noRoute(let allowed):
            return APIError(
                status: .methodNotAllowed, code: "MB700", message: "the upstream API does not take this method here",
                hint: "allowed: \(allowed.joined(separator: ", "))", headers: [.allow: allowed.joined(separator: ", ")])
        case .invalid(let violation):
            return APIError(status: .badRequest, code: "MB701", message: "the request does not match the upstream's spec: \(violation.message)", details: violation.pointer)
        case .unreachable(let why):
            return APIError(status: .badGateway, code: "MB702", message: "the upstream API cannot be reached", details: why)
        case .timedOut:
            return APIError(status: .gatewayTimeout, code: "MB703", message: "the upstream API did not answer in time")
        case .circuitOpen:
            return APIError(
                status: .serviceUnavailable, code: "MB704", message: "the upstream API is failing; calls are paused", hint: "retry in a few seconds",
                headers: [.retryAfter: "10"])
        case .badAnswer(let why):
            return APIError(status: .badGateway, code: "MB705", message: "the upstream API answered with something unusable", details: why)
        }
    }
}

extension HTTPField.Name {
    static let xCache = HTTPField.Name("x-cache")!
}
