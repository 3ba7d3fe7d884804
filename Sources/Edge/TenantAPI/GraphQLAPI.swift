import Connectors
import Foundation
import GraphQL
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

/// `{apiUrl}/graphql/v1` and `{apiUrl}/sources/{name}/graphql/v1`: pg_graphql's API generated
/// from a database source's model (contract ../shared/contracts/graphql.md), or, when the source is
/// a GraphQL upstream, forwarded to it. Transport problems keep our error shape; everything about
/// the document answers 200 `{data, errors}` as Supabase does (400 for request errors when the
/// client accepts `application/graphql-response+json`).
struct GraphQLAPI {
    let node: NodeServices

    /// Documents larger than this are refused before parsing.
    static let maxDocumentBytes = 64 * 1024

    func register(on tenant: RouterGroup<EdgeContext>) {
        for path in ["graphql/v1", "sources/:source/graphql/v1"] {
            tenant.post(RouterPath(path), use: post)
            tenant.get(RouterPath(path), use: get)
        }
    }

    enum Target {
        case database(any DatabaseSource)
        case upstream
    }

    func target(_ context: EdgeContext) throws -> Target {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let sources = tree.data.sources
        if let name = context.name("source") {
            if let database = sources.database(named: name) { return .database(database) }
            if sources.graphQL(named: name) != nil { return .upstream }
            throw APIError.sourceNotFound(name)
        }
        if let database = sources.defaultDatabase { return .database(database) }
        if sources.graphQL(named: nil) != nil { return .upstream }
        throw APIError.sourceNotFound("default")
    }

    @Sendable func post(_ request: Request, context: EdgeContext) async throws -> Response {
        let source: any DatabaseSource
        switch try target(context) {
        case .upstream: return try await UpstreamAPI(node: node).graphQL(request, context: context)
        case .database(let database): source = database
        }
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let body = try await JSONBody.read(request, maxBytes: tree.tenant.limits.maxBodyBytes)
        try body.allowOnly(["query", "variables", "operationName", "extensions"])
        let variables: JSONObject
        switch body.object["variables"] {
        case nil, .null?: variables = [:]
        case .object(let object)?: variables = object
        default: throw APIError.invalidField("variables", "expected an object")
        }
        return await answer(
            request, context: context, source: source, query: try body.string("query"), variables: variables,
            operationName: try body.string("operationName"), extensions: try body.object("extensions"), viaGET: false)
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let source: any DatabaseSource
        switch try target(context) {
        case .upstream:
            throw APIError(status: .methodNotAllowed, code: "MB728", message: "a GraphQL upstream is reached with POST", headers: [.allow: "POST"])
        case .database(let database): source = database
        }
        let parameters = Self.formParameters(request.uri.query ?? "")
        func json(_ name: String) throws -> JSONObject? {
            guard let text = parameters[name], !text.isEmpty else { return nil }
            guard let object = (try? JSONValue.parse(Array(text.utf8)))?.objectValue else {
                throw APIError.invalidField(name, "expected a JSON object")
            }
            return object
        }
        return await answer(
            request, context: context, source: source, query: parameters["query"], variables: try json("variables") ?? [:],
            operationName: parameters["operationName"], extensions: try json("extensions"), viaGET: true)
    }

    /// The query string as HTML forms encode it (`+` is a space), which is how clients send GET
    /// documents.
    static func formParameters(_ query: String) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            parameters[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return parameters
    }

    func answer(
        _ request: Request, context: EdgeContext, source: any DatabaseSource, query: String?, variables: JSONObject, operationName: String?,
        extensions: JSONObject?, viaGET: Bool
    ) async -> Response {
        guard let tree = context.tenant, let caller = context.caller else {
            return Self.respond(.failed(GraphQLError("no tenant", code: "MB500")), request: request)
        }
        let state = tree.data.graphQL
        let settings = tree.tenant.limits.graphql
        do throws(GraphQLError) {
            var text = query
            if let hash = extensions?["persistedQuery"]?["sha256Hash"]?.stringValue {
                text = try state.persistedQuery(hash: hash, query: query)
            }
            guard let text, !text.isEmpty else { throw GraphQLError("Must provide a query string.", code: "MB720") }
            guard text.utf8.count <= Self.maxDocumentBytes else {
                throw GraphQLError("the document is larger than \(Self.maxDocumentBytes) bytes", code: "MB725")
            }
            let document = try state.document(text)
            let operation = try GraphQLExecutor.operation(in: document, named: operationName)
            if viaGET && operation.kind == .mutation {
                var response = Self.respond(.failed(GraphQLError("mutations are not allowed over GET; use POST", code: "MB728")), request: request)
                response.status = .methodNotAllowed
                response.headers[.allow] = "POST"
                return response
            }
            let access = tree.data.access(for: caller)
            let naming = GraphQLNaming(inflect: settings.inflectNames)
            // Only introspection answers are kept: they depend on the schema alone.
            let answerKey = text.contains("__")
                ? GraphQLState.answerKey(source: source.name, role: access.role, naming: naming, document: text, operationName: operationName, variables: variables)
                : nil
            if let answerKey, settings.introspection || caller.isServiceRole, let known = state.answer(answerKey) {
                return Self.respond(known, request: request)
            }
            let schema: RoleSchema
            do {
                schema = try await state.schema(source: source, access: access, naming: naming)
            } catch {
                throw GraphQLError("the schema could not be built: \(error)", code: "MB500")
            }
            // Queries share the REST read cache (same lifetime, same invalidation by writes).
            let reads = operation.kind == .query ? tree.cache.reads : nil
            let readKey = reads.map { _ in
                RestReadCache.key(
                    source: source.name, entity: "\u{1}graphql", query: [("query", text), ("operationName", operationName ?? ""), ("variables", JSONValue.object(variables).jsonString)],
                    range: nil, rangeUnit: nil, prefer: nil, caller: caller)
            }
            if let reads, let readKey, let cached = reads.get(readKey), let body = cached.body {
                return Self.respond(body: body, request: request)
            }
            let epoch = reads?.epoch(of: source.name)
            let hub = tree.realtime.hub
            let publishes = hub.uncaptured.contains(source.name)
            let cache = tree.cache
            let executor = GraphQLExecutor(
                schema: schema, source: source, access: access,
                options: GraphQLOptions(maxRows: settings.maxRows, maxDepth: settings.maxDepth, maxCost: settings.maxCost, introspection: settings.introspection),
                publishWrites: publishes
            ) { plan, result, operation in
                await cache.dropReads(of: source.name)
                if publishes, let rows = result.changes {
                    hub.publishWrites(source: source.name, entity: plan.target.entity, operation: operation, rows: rows)
                }
            }
            let response = await executor.execute(document, text: text, operationName: operationName, variables: variables)
            // Writes dropped the cached reads as they ran; a volatile function may have written too.
            if response.wrote { await cache.dropReads(of: source.name) }
            if let answerKey { state.remember(response, as: answerKey) }
            if let reads, let readKey, response.errors.isEmpty {
                let body = String(decoding: response.encoded(), as: UTF8.self)
                reads.put(readKey, source: source.name, epoch: epoch, StatementResult(body: body, count: 0, total: nil))
                return Self.respond(body: body, request: request)
            }
            return Self.respond(response, request: request)
        } catch {
            return Self.respond(.failed(error), request: request)
        }
    }

    /// A successful answer already encoded (from the read cache).
    static func respond(body: String, request: Request) -> Response {
        Response(status: .ok, headers: headers(request), body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func respond(_ response: GraphQLResponse, request: Request) -> Response {
        let status: HTTPResponse.Status = wantsStrictErrors(request) && response.isRequestError ? .badRequest : .ok
        return Response(status: status, headers: headers(request), body: .init(byteBuffer: ByteBuffer(bytes: response.encoded())))
    }

    /// Clients that accept `application/graphql-response+json` get it, and hear request errors as 400.
    static func wantsStrictErrors(_ request: Request) -> Bool {
        request.headers.value(.accept)?.contains("application/graphql-response+json") ?? false
    }

    static func headers(_ request: Request) -> HTTPFields {
        [.contentType: wantsStrictErrors(request) ? "application/graphql-response+json; charset=utf-8" : "application/json; charset=utf-8"]
    }
}
