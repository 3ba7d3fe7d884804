import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

/// `{apiUrl}/rest/v1/…` and `{apiUrl}/sources/{name}/rest/v1/…`: the PostgREST grammar over a
/// tenant's sources. Each request is parsed, planned against the source's model, rendered to one
/// SQL statement and run on the source's pool.
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
        let source: PostgresSource
        let planner: RestPlanner
    }

    func target(_ context: EdgeContext) throws -> Target {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let access = tree.data.access(for: caller)
        let sources = tree.data.sources
        let name = context.parameters.get("source")
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

    // MARK: - Supabase projects reached through their REST endpoint

    /// The REST proxy this request is for: the named source when it is one, or, for `/rest/v1`,
    /// the first proxy when the tenant has no database source.
    func proxy(_ context: EdgeContext) -> RestProxySource? {
        guard let sources = context.tenant?.data.sources else { return nil }
        if let name = context.parameters.get("source") { return sources.restProxy(named: name) }
        return sources.defaultDatabase == nil ? sources.restProxy(named: nil) : nil
    }

    /// Checks what can be checked here — the role, the grammar, the table — and forwards the rest.
    func forward(_ request: Request, context: EdgeContext, to proxy: RestProxySource, path: String) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        guard caller.isServiceRole else {
            throw APIError(
                status: caller.role == "anon" ? .unauthorized : .forbidden, code: "42501",
                message: "permission denied: source '\(proxy.name)' is reached through its project's REST endpoint, for the service role only",
                hint: "register the project with dbUrl for policies to apply")
        }
        _ = try Self.rest { try RestQueryParser.parse(Self.items(request)) }
        if !path.hasPrefix("rpc/"), proxy.model.entity(named: path) == nil {
            throw APIError(RestError.unknownTable(path))
        }
        var headers: [(String, String)] = []
        for name in ["Prefer", "Range", "Range-Unit", "Accept", "Content-Type", "Accept-Profile", "Content-Profile"] {
            if let field = HTTPField.Name(name), let value = request.headers[field] { headers.append((name, value)) }
        }
        var body: ByteBuffer?
        if request.method != .get && request.method != .head {
            body = try await request.body.collect(upTo: tree.tenant.limits.maxBodyBytes)
        }
        let deadline = Duration.milliseconds(tree.tenant.limits.requestTimeoutMs * 9 / 10)
        let result: (answer: UpstreamSource.Answer, headers: [(String, String)])
        do {
            result = try await proxy.forward(
                method: request.method.rawValue, path: path, query: request.uri.query, headers: headers, body: body, deadline: deadline)
        } catch {
            throw UpstreamAPI.error(error, path: ["rest", "v1", path])
        }
        var fields: HTTPFields = [:]
        if let type = result.answer.contentType { fields[.contentType] = type }
        for (name, value) in result.headers { if let field = HTTPField.Name(name) { fields[field] = value } }
        return Response(
            status: HTTPResponse.Status(code: result.answer.status), headers: fields,
            body: request.method == .head ? .init() : .init(byteBuffer: result.answer.body))
    }

    // MARK: - Tables and views

    @Sendable func table(_ request: Request, context: EdgeContext) async throws -> Response {
        if let proxy = proxy(context) { return try await forward(request, context: context, to: proxy, path: context.parameters.get("entity") ?? "") }
        if let name = context.parameters.get("source"), let upstream = context.tenant?.data.sources.upstream(named: name) {
            return try await UpstreamAPI(node: node).collection(request, context: context, upstream: upstream, entity: context.parameters.get("entity") ?? "")
        }
        let target = try target(context)
        let entity = context.parameters.get("entity") ?? ""
        let prefer = Preferences(request.headers[.prefer])
        let items = Self.items(request)
        var query = try Self.rest { try RestQueryParser.parse(items) }
        switch request.method {
        case .get, .head:
            try applyRange(request.headers, to: &query)
            let cache = context.tenant?.cache.reads
            let cacheKey = context.caller.map { caller in
                RestReadCache.key(
                    source: target.source.name, entity: entity, query: items, range: request.headers[.range],
                    rangeUnit: request.headers[.rangeUnit], prefer: request.headers[.prefer], caller: caller)
            }
            let plan = try Self.rest { try target.planner.read(entity, query) }
            if let cache, let cacheKey, !prefer.rollback, let cached = cache.get(cacheKey) {
                return try respond(read: cached, request: request, prefer: prefer, offset: plan.offset ?? 0)
            }
            // Taken before anything is read: an answer that raced an invalidation is not stored.
            let epoch = cache?.epoch(of: target.source.name)
            // Cluster mode: the shared tier.
            let shared = prefer.rollback ? nil : context.tenant?.cache.shared
            var ticket: SharedReadCache.Ticket?
            if let shared, let cacheKey {
                ticket = await shared.ticket(for: target.source.name)
                if let ticket, let (found, remaining) = await shared.get(cacheKey, ticket) {
                    cache?.put(cacheKey, source: target.source.name, epoch: epoch, lifetime: remaining, found)
                    return try respond(read: found, request: request, prefer: prefer, offset: plan.offset ?? 0)
                }
            }
            var planned: Int?
            if prefer.count == .planned || prefer.count == .estimated {
                do {
                    planned = try await target.source.estimate(SQLRenderer().estimate(plan))
                } catch let error as RestError {
                    throw APIError(error)
                }
            }
            // `estimated`: exact while that is cheap, the planner's figure beyond.
            let exact = prefer.count == .exact || (prefer.count == .estimated && (planned ?? 0) <= Self.exactCountLimit)
            var result = try await execute(target, SQLRenderer().read(plan, count: exact), prefer: prefer)
            if !exact, let planned { result.total = planned }
            if let cache, let cacheKey { cache.put(cacheKey, source: target.source.name, epoch: epoch, result) }
            if let shared, let cacheKey, let ticket { shared.put(cacheKey, ticket, result) }
            return try respond(read: result, request: request, prefer: prefer, offset: plan.offset ?? 0)
        case .post, .put:
            let rows = try await bodyRows(request, single: request.method == .put)
            var onConflict: OnConflict?
            if request.method == .put {
                onConflict = .merge(target: try putTarget(target, entity: entity, query: query, row: rows[0]))
            } else if let resolution = prefer.resolution {
                let entityModel = try Self.rest { try target.planner.entity(entity) }
                let conflictTarget = query.onConflict ?? entityModel.primaryKey
                guard !conflictTarget.isEmpty else {
                    throw APIError(status: .badRequest, code: "PGRST100", message: "upsert needs on_conflict or a primary key")
                }
                onConflict = resolution == .mergeDuplicates ? .merge(target: conflictTarget) : .ignore(target: conflictTarget)
            }
            if prefer.missingDefault && rows.count * Set(rows.flatMap(\.keys)).count > 30_000 {
                throw APIError(status: .contentTooLarge, code: "MB105", message: "too many values for missing=default in one request; send smaller batches")
            }
            if query.columns == nil, !prefer.missingDefault, rows.count > 1, Set(rows.map { Set($0.keys) }).count > 1 {
                throw APIError(status: .badRequest, code: "PGRST102", message: "All object keys must match")
            }
            let representation = prefer.returning == .representation
            let returnsRows = representation || prefer.returning == .headersOnly
            let plan = try Self.rest {
                try target.planner.insert(
                    entity, rows: rows, query: query, onConflict: onConflict, missingDefault: prefer.missingDefault, returnsRows: returnsRows)
            }
            let result = try await write(plan, .insert, returnRows: returnsRows, target: target, request: request, prefer: prefer, context: context)
            var headers = HTTPFields()
            if let applied = prefer.appliedForWrite(resolution: request.method == .post, missing: true) { headers[.preferenceApplied] = applied }
            headers[.contentRange] = "*/*"
            let status: HTTPResponse.Status = request.method == .put ? (representation ? .ok : .noContent) : .created
            if prefer.returning == .headersOnly, let location = location(entity: plan.target.entity, body: result.body) {
                headers[.location] = location
            }
            guard representation else { return Response(status: request.method == .put ? .noContent : status, headers: headers) }
            return try bodyResponse(result.body ?? "[]", status: status, headers: headers, request: request, rows: result.count)
        case .patch:
            let rows = try await bodyRows(request, single: true)
            let representation = prefer.returning == .representation
            let plan = try Self.rest { try target.planner.update(entity, values: rows[0], query: query, returnsRows: representation) }
            let result = try await write(plan, .update, returnRows: representation, target: target, request: request, prefer: prefer, context: context)
            return try writeResponse(result, representation: representation, request: request, prefer: prefer)
        case .delete:
            let representation = prefer.returning == .representation
            let plan = try Self.rest { try target.planner.delete(entity, query: query, returnsRows: representation) }
            let result = try await write(plan, .delete, returnRows: representation, target: target, request: request, prefer: prefer, context: context)
            return try writeResponse(result, representation: representation, request: request, prefer: prefer)
        default:
            throw APIError.methodNotAllowed()
        }
    }

    // MARK: - Functions

    @Sendable func rpc(_ request: Request, context: EdgeContext) async throws -> Response {
        if let proxy = proxy(context) {
            return try await forward(request, context: context, to: proxy, path: "rpc/" + (context.parameters.get("function") ?? ""))
        }
        let target = try target(context)
        let name = context.parameters.get("function") ?? ""
        let prefer = Preferences(request.headers[.prefer])
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
        let result = try await execute(target, SQLRenderer().call(plan, count: false), prefer: prefer)
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
        let name = context.parameters.get("source") ?? ""
        guard let source = tree.data.sources.database(named: name) else { throw APIError.sourceNotFound(name) }
        let document = TenantOpenAPIDocument(tenant: tree.tenant, restURL: node.apiURL(for: tree.slug) + "/sources/\(name)/rest/v1", model: source.model)
        return try await document.response()
    }

    // MARK: - Helpers

    static func rest<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as RestError { throw APIError(error) }
    }

    /// Runs a write, drops the source's cached reads, and — when the tenant's realtime hub has
    /// subscribers to this source whose changes the database cannot hand over — has the statement
    /// answer its rows too and publishes them.
    func write(
        _ plan: WritePlan, _ operation: RestWriteChanges.Operation, returnRows: Bool, target: Target, request: Request,
        prefer: Preferences, context: EdgeContext
    ) async throws -> StatementResult {
        let hub = context.tenant?.realtime.hub
        let publishes = hub?.uncaptured.contains(target.source.name) ?? false
        let result = try await execute(
            target, SQLRenderer().write(plan, returnRows: returnRows, publishRows: publishes), prefer: prefer,
            requireOne: Self.wantsObject(request))
        await context.tenant?.cache.dropReads(of: target.source.name)
        if publishes, let hub, !prefer.rollback, let rows = result.changes {
            hub.publishWrites(source: target.source.name, entity: plan.target.entity, operation: operation, rows: rows)
        }
        return result
    }

    func execute(_ target: Target, _ statement: SQLStatement, prefer: Preferences, requireOne: Bool = false) async throws -> StatementResult {
        do {
            return try await target.source.execute(statement, rollback: prefer.rollback, requireOne: requireOne)
        } catch let error as RestError {
            throw APIError(error)
        }
    }

    /// `Range: 0-9` (items) narrows the top level when the query gives no limit/offset of its own.
    func applyRange(_ headers: HTTPFields, to query: inout RestQuery) throws {
        guard let range = headers[.range], headers[.rangeUnit].map({ $0 == "items" }) ?? true else { return }
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

    func bodyRows(_ request: Request, single: Bool) async throws -> [JSONObject] {
        var body = request.body
        let buffer = try await body.collect(upTo: .max)
        guard buffer.readableBytes > 0 else { throw APIError.invalidJSON("the body is empty") }
        let value: JSONValue
        do { value = try JSONValue.parse(buffer.readableBytesView) } catch { throw APIError.invalidJSON("\(error)") }
        switch value {
        case .object(let object): return [object]
        case .array(let items) where !single:
            let objects = items.compactMap(\.objectValue)
            guard objects.count == items.count, !objects.isEmpty else {
                throw APIError.invalidJSON("expected a JSON object or a non-empty array of objects")
            }
            return objects
        default:
            throw APIError.invalidJSON(single ? "expected a JSON object" : "expected a JSON object or an array of objects")
        }
    }

    /// PUT is an upsert of exactly the row its primary-key filters name.
    func putTarget(_ target: Target, entity: String, query: RestQuery, row: JSONObject) throws -> [String] {
        let model = try Self.rest { try target.planner.entity(entity) }
        let pk = model.primaryKey
        var filtered: [String: String] = [:]
        for condition in query.conditions[[]] ?? [] {
            if case .filter(let filter) = condition, filter.op == .eq, !filter.negated, filter.field.path.isEmpty, case .scalar(let value) = filter.value {
                filtered[filter.field.name] = value
            }
        }
        guard !pk.isEmpty, Set(filtered.keys) == Set(pk) else {
            throw APIError(status: .methodNotAllowed, code: "PGRST105", message: "PUT needs eq filters on every primary key column (\(pk.joined(separator: ", ")))")
        }
        for column in pk {
            let given = row[column].map { $0.stringValue ?? $0.jsonString }
            guard given == filtered[column] else {
                throw APIError(status: .badRequest, code: "PGRST115", message: "Payload values do not match URL in primary key column(s)")
            }
        }
        return pk
    }

    func location(entity: Entity, body: String?) -> String? {
        guard !entity.primaryKey.isEmpty, let body, let row = try? JSONValue.parse(Array(body.utf8)).arrayValue?.first else { return nil }
        let parts = entity.primaryKey.compactMap { column -> String? in
            guard let value = row[column] else { return nil }
            let text = value.stringValue ?? value.jsonString
            return "\(column)=eq.\(text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text)"
        }
        return "/\(entity.name)?" + parts.joined(separator: "&")
    }

    func respond(read result: StatementResult, request: Request, prefer: Preferences, offset: Int) throws -> Response {
        var headers = HTTPFields()
        let total = result.total.map(String.init) ?? "*"
        headers[.contentRange] = result.count == 0 ? "*/\(total)" : "\(offset)-\(offset + result.count - 1)/\(total)"
        if let count = prefer.count { headers[.preferenceApplied] = "count=\(count.rawValue)" }
        var status = HTTPResponse.Status.ok
        if let totalCount = result.total, result.count < totalCount, result.count > 0 || offset > 0 { status = .partialContent }
        // A strong validator of the body the client would get (the representation depends on Accept).
        let body = result.body ?? "[]"
        var digest = SHA256()
        digest.update(data: Array(body.utf8))
        digest.update(data: Array((request.headers[.accept] ?? "").utf8))
        let tag = "\"" + Hex.encode(digest.finalize().prefix(16)) + "\""
        headers[.eTag] = tag
        if let candidates = request.headers[.ifNoneMatch],
            candidates == "*" || candidates.split(separator: ",").contains(where: {
                let candidate = $0.trimmingSpaces
                return candidate == tag || candidate == "W/" + tag
            })
        {
            return Response(status: .notModified, headers: [.eTag: tag])
        }
        if request.method == .head { return Response(status: status, headers: headers) }
        return try bodyResponse(body, status: status, headers: headers, request: request, rows: result.count)
    }

    func writeResponse(_ result: StatementResult, representation: Bool, request: Request, prefer: Preferences) throws -> Response {
        var headers = HTTPFields()
        headers[.contentRange] = result.count == 0 ? "*/*" : "0-\(result.count - 1)/*"
        if let applied = prefer.appliedForWrite(resolution: false, missing: false) { headers[.preferenceApplied] = applied }
        guard representation else { return Response(status: .noContent, headers: headers) }
        return try bodyResponse(result.body ?? "[]", status: .ok, headers: headers, request: request, rows: result.count)
    }

    static func wantsObject(_ request: Request) -> Bool {
        request.headers[.accept]?.lowercased().containsBytes("application/vnd.pgrst.object") ?? false
    }

    /// Writes the JSON body in the media type the client accepts: JSON, a single object, or CSV.
    func bodyResponse(_ body: String, status: HTTPResponse.Status, headers: HTTPFields, request: Request, rows: Int? = nil) throws -> Response {
        var headers = headers
        let accept = request.headers[.accept]?.lowercased() ?? "application/json"
        if accept.containsBytes("application/vnd.pgrst.object") {
            guard let rows, body.hasPrefix("[") else {
                headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            guard rows == 1 else { throw APIError(RestError.singular(rows)) }
            headers[.contentType] = "application/vnd.pgrst.object+json; charset=utf-8"
            let object = String(body.dropFirst().dropLast())
            return Response(status: status == .partialContent ? .ok : status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: object)))
        }
        if accept.hasPrefix("text/csv") {
            headers[.contentType] = "text/csv; charset=utf-8"
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: CSVWriter.csv(fromJSONArray: body))))
        }
        guard accept.containsBytes("json") || accept.containsBytes("*/*") || accept.isEmpty else {
            throw APIError(status: .notAcceptable, code: "PGRST107", message: "None of these media types are available: \(accept)")
        }
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

extension APIError {
    init(_ error: RestError) {
        self.init(
            status: HTTPResponse.Status(code: error.status), code: error.code, message: error.message, details: error.details, hint: error.hint)
    }
}

extension HTTPField.Name {
    static let prefer = HTTPField.Name("Prefer")!
    static let preferenceApplied = HTTPField.Name("Preference-Applied")!
    static let rangeUnit = HTTPField.Name("Range-Unit")!
}

/// CSV the way PostgREST writes it: a header row of the first object's keys, then one line a row.
enum CSVWriter {
    static func csv(fromJSONArray text: String) -> String {
        guard let rows = try? JSONValue.parse(Array(text.utf8)).arrayValue, let first = rows.first?.objectValue else { return "" }
        let keys = first.keys
        var out = keys.map(field).joined(separator: ",") + "\n"
        for row in rows {
            out += keys.map { key -> String in
                switch row[key] {
                case nil, .null?: return ""
                case .string(let value)?: return field(value)
                case let value?: return field(value.jsonString)
                }
            }.joined(separator: ",") + "\n"
        }
        return out
    }

    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
