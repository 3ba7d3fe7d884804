import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Search
import Tenancy
import TenantRuntime

/// `{apiUrl}/search/v1`: Meilisearch's API over the tenant's search indexes, so the official
/// `meilisearch` client works with `Client(apiUrl + "/search/v1", key)` (contract
/// ../shared/contracts/search.md). The key is the tenant's: its anon or service key, or a user's
/// access token, in `Authorization: Bearer`, `Api-Key` or `apikey`. Managing indexes takes the
/// service role; searching takes a read policy on the entity, whose columns and rows bound what
/// is searched, returned and counted. Documents are written to the source, never here.
struct SearchAPI {
    let node: NodeServices

    func register(on router: Router<EdgeContext>) {
        let search = router.group("t/:slug/search/v1").add(
            middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, requiresAPIKey: false))
        search.get("health") { _, _ in try jsonResponse(["status": "available"]) }
        search.get("version", use: handled(version))
        search.get("indexes", use: handled(listIndexes))
        search.post("indexes", use: handled(createIndex))
        search.get("indexes/:uid", use: handled(getIndex))
        search.patch("indexes/:uid", use: handled(updateIndex))
        search.delete("indexes/:uid", use: handled(deleteIndex))
        search.get("indexes/:uid/stats", use: handled(indexStats))
        search.get("stats", use: handled(stats))
        search.get("indexes/:uid/settings", use: handled(getSettings))
        search.patch("indexes/:uid/settings", use: handled(patchSettings))
        search.delete("indexes/:uid/settings", use: handled(resetSettings))
        search.get("indexes/:uid/settings/:name", use: handled(getSetting))
        for method in [HTTPRequest.Method.put, .patch, .post] { search.on("indexes/:uid/settings/:name", method: method, use: handled(putSetting)) }
        search.delete("indexes/:uid/settings/:name", use: handled(resetSetting))
        search.post("indexes/:uid/search", use: handled(searchPost))
        search.get("indexes/:uid/search", use: handled(searchGet))
        search.post("multi-search", use: handled(multiSearch))
        search.get("tasks", use: handled(listTasks))
        search.get("tasks/:taskUid", use: handled(getTask))
        search.get("indexes/:uid/documents", use: handled(listDocuments))
        search.post("indexes/:uid/documents/fetch", use: handled(fetchDocuments))
        search.get("indexes/:uid/documents/:id", use: handled(getDocument))
        for method in [HTTPRequest.Method.post, .put, .delete] {
            search.on("indexes/:uid/documents", method: method, use: handled(refuseWrite))
            search.on("indexes/:uid/documents/:id", method: method, use: handled(refuseWrite))
        }
        search.post("indexes/:uid/documents/delete-batch", use: handled(refuseWrite))
        search.post("indexes/:uid/documents/delete", use: handled(refuseWrite))
    }

    typealias Handler = @Sendable (Request, EdgeContext) async throws -> Response

    /// Search errors in our shape plus Meilisearch's `type` and `link` (its clients read them);
    /// `decorate` adds what another client reads (Pinecone's `error` object).
    func handled(_ handler: @escaping Handler) -> Handler { Self.handled(handler) }

    static func handled(_ handler: @escaping Handler, decorate: @escaping @Sendable (inout APIError, SearchError) -> Void = { _, _ in }) -> Handler {
        { request, context in
            do {
                return try await handler(request, context)
            } catch let error as SearchError {
                var failure = apiError(error)
                decorate(&failure, error)
                throw failure
            }
        }
    }

    static func apiError(_ error: SearchError) -> APIError {
        var failure = APIError(status: HTTPResponse.Status(code: error.status), code: error.code, message: error.message, hint: error.hint)
        failure.extra = ["type": .string(error.kind.rawValue), "link": .string(error.link)]
        if error.code == "MB887" { failure.headers[.retryAfter] = "1" }
        return failure
    }

    // MARK: - Who is asking

    /// The caller the presented key or token makes.
    func caller(_ request: Request, _ context: EdgeContext) throws -> (TenantTree, Caller) { try Self.caller(request, context) }

    /// The same for the vector API: Pinecone's clients send `Api-Key`.
    static func caller(_ request: Request, _ context: EdgeContext) throws -> (TenantTree, Caller) {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let bearer = request.headers.value(.authorization).flatMap { header -> String? in
            let parts = header.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]).trimmingCharacters(in: .whitespaces) : nil
        }
        guard let token = bearer ?? request.headers[apiKeyHeader] ?? request.headers.value(.apikey), !token.isEmpty else {
            throw SearchError(
                status: 401, code: "missing_authorization_header",
                message: "The Authorization header is missing. It must use the bearer authorization method.", kind: .auth)
        }
        do {
            return (tree, try tree.credentials.caller(token: token))
        } catch {
            throw SearchError(status: 403, code: "invalid_api_key", message: "The provided API key is invalid: \(error)", kind: .auth)
        }
    }

    static let apiKeyHeader = HTTPField.Name("Api-Key")!

    /// Managing indexes, settings and tasks: the service role only.
    func manager(_ request: Request, _ context: EdgeContext) throws -> TenantTree {
        let (tree, caller) = try caller(request, context)
        guard caller.isServiceRole else {
            throw SearchError(status: 403, code: "MB881", message: "managing search indexes takes the tenant's service key", kind: .auth,
                              hint: "search with any key whose role may read the entity; manage with the service key")
        }
        return tree
    }

    func index(_ tree: TenantTree, _ context: EdgeContext) throws -> SearchIndex {
        let uid = context.name("uid") ?? ""
        guard let index = tree.search.index(uid) else { throw SearchError.indexNotFound(uid) }
        return index
    }

    /// An index that is still being built answers 503 with `Retry-After`.
    func ready(_ index: SearchIndex) throws {
        guard index.isReady else {
            throw SearchError(status: 503, code: "MB887", message: "index `\(index.uid)` is being built from its source; try again shortly", kind: .system)
        }
    }

    static func body(_ request: Request, _ tree: TenantTree) async throws -> JSONValue {
        var request = request
        let buffer = try await request.collectBody(upTo: tree.tenant.limits.maxBodyBytes)
        guard buffer.readableBytes > 0 else { return .null }
        do {
            return try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw SearchError.badRequest("malformed_payload", "The request body is not valid JSON: \(error)")
        }
    }

    static func object(_ value: JSONValue) throws -> JSONObject {
        switch value {
        case .null: return [:]
        case .object(let object): return object
        default: throw SearchError.badRequest("bad_request", "Invalid value type: expected an object, but found \(value.typeName)")
        }
    }

    static func accepted(_ task: SearchTasks.Task) throws -> Response {
        try jsonResponse(.object(SearchTasks.summary(task)), status: .accepted)
    }

    // MARK: - Indexes

    @Sendable func version(_ request: Request, context: EdgeContext) async throws -> Response {
        _ = try caller(request, context)
        return try jsonResponse(["commitSha": "mini-baas", "commitDate": "2026-12-06T00:00:00Z", "pkgVersion": "1.12.0"])
    }

    static func json(_ index: SearchIndex) -> JSONObject {
        ["uid": .string(index.uid), "primaryKey": .string(index.primaryKey), "createdAt": .string(SearchTasks.timestamp(index.createdAt)),
         "updatedAt": .string(SearchTasks.timestamp(index.updatedAt)), "source": .string(index.source), "entity": .string(index.entity)]
    }

    static func page(_ request: Request, defaultLimit: Int = 20) throws -> (offset: Int, limit: Int) {
        func number(_ name: String) throws -> Int? {
            guard let text = request.uri.queryParameters.get(name) else { return nil }
            guard let value = Int(text), value >= 0 else {
                throw SearchError.badRequest("invalid_\(name)", "Invalid value in parameter `\(name)`: could not parse `\(text)` as a positive integer")
            }
            return value
        }
        return (try number("offset") ?? 0, min(try number("limit") ?? defaultLimit, 1_000))
    }

    @Sendable func listIndexes(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let (offset, limit) = try Self.page(request)
        let all = tree.search.all
        return try jsonResponse([
            "results": .array(all.dropFirst(offset).prefix(limit).map { .object(Self.json($0)) }), "offset": .integer(Int64(offset)),
            "limit": .integer(Int64(limit)), "total": .integer(Int64(all.count)),
        ])
    }

    @Sendable func createIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let body = try Self.object(try await Self.body(request, tree))
        for name in body.keys where !["uid", "primaryKey", "source", "entity"].contains(name) {
            throw SearchError.badRequest("bad_request", "Unknown field `\(name)`: expected one of `uid`, `primaryKey`, `source`, `entity`")
        }
        func text(_ name: String) throws -> String? {
            switch body[name] {
            case nil, .null?: return nil
            case .string(let value)?: return value
            case let other?: throw SearchError.badRequest("invalid_index_\(name == "primaryKey" ? "primary_key" : name)", "Invalid value type at `.\(name)`: expected a string, but found \(other.typeName)")
            }
        }
        guard let uid = try text("uid") else { throw SearchError.badRequest("missing_index_uid", "Missing field `uid`") }
        let task = try await tree.search.create(uid: uid, source: try text("source"), entity: try text("entity"), primaryKey: try text("primaryKey"))
        return try Self.accepted(task)
    }

    @Sendable func getIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        return try jsonResponse(.object(Self.json(try index(tree, context))))
    }

    @Sendable func updateIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let body = try Self.object(try await Self.body(request, tree))
        return try Self.accepted(try tree.search.update(uid: context.name("uid") ?? "", primaryKey: body["primaryKey"]?.stringValue))
    }

    @Sendable func deleteIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        return try Self.accepted(try await tree.search.delete(uid: context.name("uid") ?? ""))
    }

    static func stats(_ index: SearchIndex) -> JSONObject {
        var fields = JSONObject()
        for (name, count) in index.fieldDistribution.sorted(by: { $0.key < $1.key }) { fields[name] = .integer(Int64(count)) }
        return ["numberOfDocuments": .integer(Int64(index.documentCount)), "isIndexing": .bool(!index.isReady), "fieldDistribution": .object(fields)]
    }

    @Sendable func indexStats(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        return try jsonResponse(.object(Self.stats(try index(tree, context))))
    }

    @Sendable func stats(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        var indexes = JSONObject()
        let all = tree.search.all
        for index in all { indexes[index.uid] = .object(Self.stats(index)) }
        let last = all.map(\.updatedAt).max()
        return try jsonResponse([
            "databaseSize": 0, "usedDatabaseSize": 0, "lastUpdate": last.map { .string(SearchTasks.timestamp($0)) } ?? .null, "indexes": .object(indexes),
        ])
    }

    // MARK: - Settings

    @Sendable func getSettings(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        return try jsonResponse(.object(try index(tree, context).settings.json))
    }

    @Sendable func patchSettings(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let patch = try Self.object(try await Self.body(request, tree))
        return try Self.accepted(try await tree.search.updateSettings(uid: context.name("uid") ?? "", patch: patch))
    }

    @Sendable func resetSettings(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let current = try index(tree, context).settings.json
        var reset = JSONObject()
        for name in current.keys where IndexSettings.routeNames.values.contains(name) { reset[name] = .null }
        return try Self.accepted(try await tree.search.updateSettings(uid: context.name("uid") ?? "", patch: reset))
    }

    func settingName(_ context: EdgeContext) throws -> String {
        let route = context.name("name") ?? ""
        guard let name = IndexSettings.routeNames[route] else {
            throw SearchError(status: 404, code: "MB883", message: "there is no setting `\(route)`")
        }
        return name
    }

    @Sendable func getSetting(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let name = try settingName(context)
        return try jsonResponse(try index(tree, context).settings.json[name] ?? .null)
    }

    @Sendable func putSetting(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let name = try settingName(context)
        let value = try await Self.body(request, tree)
        return try Self.accepted(try await tree.search.updateSettings(uid: context.name("uid") ?? "", patch: [name: value]))
    }

    @Sendable func resetSetting(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let name = try settingName(context)
        return try Self.accepted(try await tree.search.updateSettings(uid: context.name("uid") ?? "", patch: [name: .null]))
    }

    // MARK: - Searching

    /// The answer, and whether SQL gave it (`X-Search-Mode: fallback`: the index is warming).
    func run(_ tree: TenantTree, _ caller: Caller, uid: String, _ query: SearchQuery) async throws -> (JSONObject, fallback: Bool) {
        guard let index = tree.search.index(uid) else { throw SearchError.indexNotFound(uid) }
        if !index.isReady, let answer = try await tree.search.fallbackSearch(index, query, caller: caller) { return (answer, true) }
        try ready(index)
        let view = try tree.search.view(for: caller, of: index)
        return (try await index.search(query, view: view), false)
    }

    static let searchModeHeader = HTTPField.Name("X-Search-Mode")!

    func searchResponse(_ answer: (JSONObject, fallback: Bool)) throws -> Response {
        try jsonResponse(.object(answer.0), headers: answer.fallback ? [Self.searchModeHeader: "fallback"] : [:])
    }

    @Sendable func searchPost(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, caller) = try caller(request, context)
        let query = try SearchQuery(json: try Self.object(try await Self.body(request, tree)))
        return try searchResponse(try await run(tree, caller, uid: context.name("uid") ?? "", query))
    }

    @Sendable func searchGet(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, caller) = try caller(request, context)
        let items = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
        let query = try SearchQuery(queryItems: items)
        return try searchResponse(try await run(tree, caller, uid: context.name("uid") ?? "", query))
    }

    /// `{queries: [{indexUid, …}]}` → `{results: [{indexUid, …}]}`; the first failing query fails
    /// the request, as Meilisearch does.
    @Sendable func multiSearch(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, caller) = try caller(request, context)
        let body = try Self.object(try await Self.body(request, tree))
        if body["federation"] != nil, body["federation"] != .null {
            throw SearchError.badRequest("bad_request", "federated multi-search is not supported; send the queries without `federation`")
        }
        guard let queries = body["queries"]?.arrayValue else {
            throw SearchError.badRequest("missing_multi_search_queries", "Missing field `queries`")
        }
        guard queries.count <= 100 else { throw SearchError.badRequest("invalid_multi_search_queries", "At most 100 queries per multi-search") }
        var results: [JSONValue] = []
        for (position, entry) in queries.enumerated() {
            guard let object = entry.objectValue, let uid = object["indexUid"]?.stringValue else {
                throw SearchError.badRequest("missing_index_uid", "Inside `.queries[\(position)]`: Missing field `indexUid`")
            }
            var (answer, _) = try await run(tree, caller, uid: uid, try SearchQuery(json: object))
            answer["indexUid"] = .string(uid)
            results.append(.object(answer))
        }
        return try jsonResponse(["results": .array(results)])
    }

    // MARK: - Tasks

    @Sendable func listTasks(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let parameters = request.uri.queryParameters
        func set(_ name: String) -> Set<String>? {
            parameters.get(name).map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        }
        let limit = min(Int(parameters.get("limit") ?? "") ?? 20, 1_000)
        let from = parameters.get("from").flatMap(Int.init)
        let uids = set("uids").map { Set($0.compactMap(Int.init)) }
        let listed = tree.search.tasks.list(
            indexUids: set("indexUids"), statuses: set("statuses"), types: set("types"), uids: uids, from: from, limit: max(limit, 1))
        return try jsonResponse([
            "results": .array(listed.tasks.map { .object(SearchTasks.json($0)) }), "total": .integer(Int64(listed.total)),
            "limit": .integer(Int64(limit)), "from": listed.tasks.first.map { .integer(Int64($0.uid)) } ?? .null,
            "next": listed.next.map { .integer(Int64($0)) } ?? .null,
        ])
    }

    @Sendable func getTask(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try manager(request, context)
        let text = context.name("taskUid") ?? ""
        guard let uid = Int(text) else {
            throw SearchError.badRequest("invalid_task_uid", "Invalid value in parameter `taskUid`: could not parse `\(text)` as a positive integer")
        }
        guard let task = tree.search.tasks.task(uid) else {
            throw SearchError(status: 404, code: "task_not_found", message: "Task `\(uid)` not found.")
        }
        return try jsonResponse(.object(SearchTasks.json(task)))
    }

    // MARK: - Documents (read-only: the source is written, the index follows)

    func readable(_ request: Request, _ context: EdgeContext) throws -> (SearchIndex, SearchView, Set<String>?) {
        let (tree, caller) = try caller(request, context)
        let index = try index(tree, context)
        try ready(index)
        let view = try tree.search.view(for: caller, of: index)
        let fields = request.uri.queryParameters.get("fields").map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        return (index, view, fields)
    }

    static func shaped(_ document: JSONObject, _ view: SearchView, _ fields: Set<String>?) -> JSONObject {
        var result = view.project(document)
        if let fields, !fields.contains("*") {
            for name in result.keys where !fields.contains(name) { result[name] = nil }
        }
        return result
    }

    @Sendable func listDocuments(_ request: Request, context: EdgeContext) async throws -> Response {
        let (index, view, fields) = try readable(request, context)
        let (offset, limit) = try Self.page(request)
        return try documentsPage(index, view, fields, offset: offset, limit: limit)
    }

    @Sendable func fetchDocuments(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try caller(request, context)
        let (index, view, _) = try readable(request, context)
        let body = try Self.object(try await Self.body(request, tree))
        let fields = body["fields"]?.arrayValue.map { Set($0.compactMap(\.stringValue)) }
        if body["filter"] != nil, body["filter"] != .null {
            // SearchQuery checks offset and limit (positive, bounded).
            let query = try SearchQuery(json: ["filter": body["filter"]!, "offset": body["offset"] ?? 0, "limit": .integer(min(body["limit"]?.intValue ?? 20, 1_000))])
            var answer = try await index.search(query, view: view)
            answer["results"] = .array((answer["hits"]?.arrayValue ?? []).map { .object(Self.shaped($0.objectValue ?? [:], view, fields)) })
            return try jsonResponse([
                "results": answer["results"] ?? .array([]), "offset": answer["offset"] ?? 0, "limit": answer["limit"] ?? 20,
                "total": answer["estimatedTotalHits"] ?? 0,
            ])
        }
        let offset = body["offset"]?.intValue ?? 0
        let limit = body["limit"]?.intValue ?? 20
        guard (0...1_000_000_000).contains(offset), (0...1_000).contains(limit) else {
            throw SearchError.badRequest("invalid_document_offset", "`offset` must be a positive integer and `limit` between 0 and 1000")
        }
        return try documentsPage(index, view, fields, offset: Int(offset), limit: Int(limit))
    }

    func documentsPage(_ index: SearchIndex, _ view: SearchView, _ fields: Set<String>?, offset: Int, limit: Int) throws -> Response {
        // Hidden rows are neither listed nor counted.
        let documents: [JSONObject]
        let total: Int
        if let rows = view.rows {
            let all = index.documents(where: rows)
            (documents, total) = (Array(all.dropFirst(offset).prefix(limit)), all.count)
        } else {
            (documents, total) = index.documents(offset: offset, limit: limit)
        }
        return try jsonResponse([
            "results": .array(documents.map { .object(Self.shaped($0, view, fields)) }), "offset": .integer(Int64(offset)),
            "limit": .integer(Int64(limit)), "total": .integer(Int64(total)),
        ])
    }

    @Sendable func getDocument(_ request: Request, context: EdgeContext) async throws -> Response {
        let (index, view, fields) = try readable(request, context)
        let id = context.name("id") ?? ""
        guard let document = index.document(key: id), view.rows?({ document[$0] }) ?? true else {
            throw SearchError(status: 404, code: "document_not_found", message: "Document `\(id)` not found.")
        }
        return try jsonResponse(.object(Self.shaped(document, view, fields)))
    }

    @Sendable func refuseWrite(_ request: Request, context: EdgeContext) async throws -> Response {
        _ = try caller(request, context)
        let uid = context.name("uid") ?? ""
        let source = context.tenant?.search.index(uid).map { "'\($0.entity)' of source '\($0.source)'" } ?? "its source entity"
        var error = Self.apiError(SearchError(
            status: 405, code: "MB886", message: "index `\(uid)` mirrors \(source): write the rows there (REST, SQL), and the index follows",
            hint: "POST/PATCH/DELETE {apiUrl}/rest/v1/<table>"))
        error.headers[.allow] = "GET"
        throw error
    }
}
