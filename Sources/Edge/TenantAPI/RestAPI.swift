import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

/// `{apiUrl}/rest/v1/…` and `{apiUrl}/sources/{name}/rest/v1/…`: the PostgREST grammar over a
/// tenant's sources. Each request is parsed, planned against the source's model, and handed to
/// the source (`DatabaseSource`), which renders it in its dialect — PostgreSQL or SQLite — and runs
/// it on its connections. Reads live in `RestAPI+Read`, writes in
/// `RestAPI+Write`, response writing in `RestAPI+Response`, Supabase projects reached through
/// their REST endpoint in `RestAPI+Proxy`.
struct RestAPI {
    let node: NodeServices

    func register(on tenant: RouterGroup<EdgeContext>) {
        for base in ["rest/v1", "sources/:source/rest/v1"] {
            tenant.on("\(base)/rpc/:function", method: .get, use: rpc)
            tenant.on("\(base)/rpc/:function", method: .post, use: rpc)
            for method: HTTPRequest.Method in [.get, .head, .post, .patch, .put, .delete] {
                tenant.on("\(base)/:entity", method: method, use: table)
            }
        }
        tenant.get("sources/:source/rest/v1", use: openAPIDocument)
    }

    // MARK: - Context

    /// Up to this many rows, `count=estimated` counts exactly.
    static let exactCountLimit = 10_000

    struct Target {
        let source: any DatabaseSource
        let planner: RestPlanner
    }

    func target(_ context: EdgeContext) throws -> Target {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let access = tree.data.access(for: caller)
        let sources = tree.data.sources
        let name = context.name("source")
        guard let source = name.map({ sources.database(named: $0) }) ?? sources.defaultDatabase else {
            throw APIError.sourceNotFound(name ?? "default")
        }
        return Target(source: source, planner: RestPlanner(model: source.model, access: access))
    }

    /// The query string in order. Hummingbird decodes values but not keys, and keys such as
    /// `details->>lang` arrive percent-encoded from real clients.
    static func items(_ request: Request) -> [(String, String)] {
        request.uri.queryParameters.compactMap { pair in
            let key = String(pair.key)
            // `apikey` in the query string is a credential (WebSocket-style clients), not a filter.
            guard key != "apikey" else { return nil }
            return (key.utf8.contains(UInt8(ascii: "%")) ? key.removingPercentEncoding ?? key : key, String(pair.value))
        }
    }

    // MARK: - Tables and views

    @Sendable func table(_ request: Request, context: EdgeContext) async throws -> Response {
        if let proxy = proxy(context) { return try await forward(request, context: context, to: proxy, path: context.parameters.get("entity") ?? "") }
        if let name = context.name("source"), let upstream = context.tenant?.data.sources.upstream(named: name) {
            return try await UpstreamAPI(node: node).collection(request, context: context, upstream: upstream, entity: context.name("entity") ?? "")
        }
        let target = try target(context)
        let entity = context.name("entity") ?? ""
        let prefer = Preferences(request.headers.value(.prefer))
        let items = Self.items(request)
        let query = try Self.rest { try RestQueryParser.parse(items) }
        switch request.method {
        case .get, .head:
            return try await read(request, context: context, target: target, entity: entity, items: items, query: query, prefer: prefer)
        case .post, .put:
            return try await insert(request, context: context, target: target, entity: entity, query: query, prefer: prefer)
        case .patch:
            return try await update(request, context: context, target: target, entity: entity, query: query, prefer: prefer)
        case .delete:
            return try await delete(request, context: context, target: target, entity: entity, query: query, prefer: prefer)
        default:
            throw APIError.methodNotAllowed()
        }
    }

    // MARK: - Functions

    @Sendable func rpc(_ request: Request, context: EdgeContext) async throws -> Response {
        // Supabase Queues: ours, unless the tenant's default source is a Supabase project with
        // its own pgmq (then it is forwarded like any call).
        if QueueRPC.wants(request), context.name("source") == nil, proxy(context) == nil {
            return try await QueueRPC(node: node).call(request, context: context, function: context.name("function") ?? "")
        }
        if let proxy = proxy(context) {
            return try await forward(request, context: context, to: proxy, path: "rpc/" + (context.parameters.get("function") ?? ""))
        }
        let target = try target(context)
        let name = context.name("function") ?? ""
        let prefer = Preferences(request.headers.value(.prefer))
        let names = Set(target.source.model.operations.filter { $0.name == name }.flatMap { $0.arguments.map(\.name) })
        let query = try Self.rest { try RestQueryParser.parse(Self.items(request), argumentNames: request.method == .get ? names : []) }
        var arguments: [(String, JSONValue)] = query.arguments.map { ($0.0, .string($0.1)) }
        if request.method == .post {
            var body = request.body
            let buffer = try await body.collect(upTo: .max)
            if buffer.readableBytes > 0 {
                let value: JSONValue
                do { value = try JSONValue.parse(buffer.readableBytesView) } catch { throw APIError.invalidJSON("\(error)") }
                guard let object = value.objectValue else { throw APIError.invalidJSON("RPC arguments must be a JSON object") }
                arguments = object.map { ($0.key, $0.value) }
            }
        }
        let plan = try Self.rest { try target.planner.call(name, arguments: arguments, query: query) }
        if request.method == .get && plan.operation.volatility == .volatile {
            throw APIError(status: .methodNotAllowed, code: "MB610", message: "function '\(name)' is volatile: call it with POST")
        }
        let result = try await Self.rest { () async throws -> StatementResult in try await target.source.call(plan, rollback: prefer.rollback) }
        // A function called with POST may have written anything.
        if request.method == .post { await context.tenant?.cache.dropReads(of: target.source.name) }
        if plan.operation.returnsVoid { return Response(status: .noContent) }
        if plan.read != nil || plan.operation.returnsSet {
            return try respond(read: result, request: request, prefer: prefer, offset: plan.read?.offset ?? 0)
        }
        return try bodyResponse(result.body ?? "null", status: .ok, headers: [:], request: request)
    }

    // MARK: - OpenAPI of a named source

    @Sendable func openAPIDocument(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let name = context.name("source") ?? ""
        guard let source = tree.data.sources.database(named: name) else { throw APIError.sourceNotFound(name) }
        let document = TenantOpenAPIDocument(tenant: tree.tenant, restURL: node.apiURL(for: tree.slug) + "/sources/\(name)/rest/v1", model: source.model)
        return try await document.response()
    }

    // MARK: - Helpers

    static func rest<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as RestError { throw APIError(error) }
    }
    static func rest<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as RestError { throw APIError(error) }
    }

    /// `Range: 0-9` (items) narrows the top level when the query gives no limit/offset of its own.
    func applyRange(_ headers: HTTPFields, to query: inout RestQuery) throws {
        guard let range = headers.value(.range), headers.value(.rangeUnit).map({ $0 == "items" }) ?? true else { return }
        let text = range.hasPrefix("items=") ? String(range.dropFirst(6)) : range
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = Int(parts[0]), start >= 0 else {
            throw APIError(status: .rangeNotSatisfiable, code: "PGRST103", message: "Requested range not satisfiable")
        }
        if query.offset[[]] == nil { query.offset[[]] = start }
        if let end = Int(parts[1]) {
            guard end >= start else { throw APIError(status: .rangeNotSatisfiable, code: "PGRST103", message: "Requested range not satisfiable") }
            let (span, overflow) = (end - start).addingReportingOverflow(1)
            query.limit[[]] = min(query.limit[[]] ?? Int.max, overflow ? Int.max : span)
        }
    }
}
