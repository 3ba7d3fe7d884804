import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

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
        // `graphql/v1` is GraphQLAPI's: it forwards here when the source is a GraphQL upstream.
    }

    /// `POST {apiUrl}/graphql/v1 {query, variables?, operationName?}` to a GraphQL upstream.
    @Sendable func graphQL(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let name = context.name("source")
        guard let upstream = tree.data.sources.graphQL(named: name) else {
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
        for field in analysis.rootFields where field != "__typename" { try Self.requireExecute(field, caller: caller, tree: tree) }
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
        let name = context.name("source")
        guard let upstream = tree.data.sources.upstream(named: name) else {
            throw APIError.sourceNotFound(name ?? "(no upstream API registered)")
        }
        let path = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
        let method = request.method.rawValue
        if !caller.isServiceRole {
            guard let (route, _) = upstream.spec.match(method: method == "HEAD" ? "GET" : method, path: path) else {
                throw Self.error(.noRoute(allowed: upstream.spec.allowedMethods(path: path)), path: path)
            }
            try Self.requireExecute(route.operationID, caller: caller, tree: tree)
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

    /// `GET {apiUrl}/sources/{name}/rest/v1/{entity}` over an upstream: the REST grammar's subset a
    /// list operation can carry — `limit`, `offset` and `eq` filters mapped to the operation's
    /// declared query parameters, `select` applied to the answer. Anything else is a clear 400.
    func collection(_ request: Request, context: EdgeContext, upstream: UpstreamSource, entity: String) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        guard request.method == .get || request.method == .head else {
            throw APIError(status: .methodNotAllowed, code: "MB707", message: "upstream collections are read-only through the REST grammar; use /api/v1")
        }
        guard let route = upstream.spec.routes.first(where: { route in
            route.method == "GET" && route.returns?.name == entity && route.returns?.list == true
                && !route.segments.contains { if case .parameter = $0 { true } else { false } }
        }) else {
            throw APIError(RestError.unknownTable(entity))
        }
        if !caller.isServiceRole {
            try Self.requireExecute(route.operationID, caller: caller, tree: tree)
        }
        let declared = Set(route.parameters.filter { $0.location == .query }.map(\.name))
        var forwarded: [(String, String)] = []
        var select: [String]?
        for (key, value) in RestAPI.items(request) {
            switch key {
            case "select":
                let columns = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard columns.allSatisfy({ !$0.isEmpty && !$0.contains("(") && !$0.contains(":") }) else {
                    throw APIError(status: .badRequest, code: "MB707", message: "select over an upstream takes plain column names only")
                }
                if !columns.contains("*") { select = columns }
            case "limit", "offset":
                let name = key == "offset" && !declared.contains("offset") && declared.contains("skip") ? "skip" : key
                guard declared.contains(name), Int(value) != nil else {
                    throw APIError(status: .badRequest, code: "MB707", message: "\(route.operationID) takes no \(key)", hint: "its parameters: \(declared.sorted().joined(separator: ", "))")
                }
                forwarded.append((name, value))
            default:
                guard value.hasPrefix("eq."), declared.contains(key) else {
                    throw APIError(
                        status: .badRequest, code: "MB707", message: "'\(key)=\(value)' cannot be sent to \(route.operationID)",
                        hint: "only eq filters on its declared parameters: \(declared.sorted().joined(separator: ", "))")
                }
                forwarded.append((key, String(value.dropFirst(3))))
            }
        }
        let path = route.segments.compactMap { segment -> String? in if case .literal(let text) = segment { text } else { nil } }
        let answer: UpstreamSource.Answer
        do {
            answer = try await upstream.forward(
                method: "GET", path: path, query: forwarded, body: nil, deadline: .milliseconds(tree.tenant.limits.requestTimeoutMs * 9 / 10))
        } catch {
            throw Self.error(error, path: path)
        }
        guard answer.status == 200 else {
            return Response(status: HTTPResponse.Status(code: answer.status), headers: [.contentType: answer.contentType ?? "application/json"], body: .init(byteBuffer: answer.body))
        }
        guard let rows = try? JSONValue.parse(answer.body.readableBytesView).arrayValue else {
            throw Self.error(.badAnswer("\(route.operationID) did not answer with a JSON array"), path: path)
        }
        let projected: [JSONValue] = rows.map { row in
            guard let select, let object = row.objectValue else { return row }
            var kept = JSONObject()
            for column in select { kept[column] = object[column] ?? .null }
            return .object(kept)
        }
        let offset = forwarded.first { $0.0 == "offset" || $0.0 == "skip" }.flatMap { Int($0.1) } ?? 0
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers[.contentRange] = projected.isEmpty ? "*/*" : "\(offset)-\(offset + projected.count - 1)/*"
        return Response(status: .ok, headers: headers, body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: JSONValue.array(projected).encoded())))
    }

    /// Upstream operations are functions to our policies: roles other than the service role need
    /// an `execute` policy naming the operation.
    static func requireExecute(_ operation: String, caller: Caller, tree: TenantTree) throws {
        guard !caller.isServiceRole else { return }
        let policies = tree.data.policies
        guard policies.contains(where: { $0.entity == operation && $0.role == caller.role && $0.action == .execute }) else {
            throw APIError(
                status: caller.role == "anon" ? .unauthorized : .forbidden, code: "42501",
                message: "permission denied: no execute policy on '\(operation)' for role \(caller.role)")
        }
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
