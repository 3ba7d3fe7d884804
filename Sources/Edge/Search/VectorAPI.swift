import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Search
import Tenancy
import TenantRuntime

/// `{apiUrl}/vectors/v1`: Pinecone's control plane (`/indexes`) and data plane
/// (`/indexes/{name}/…`), so the official `pinecone` client works with
/// `Pinecone(api_key=key, host=apiUrl + "/vectors/v1")` and `Index(host=…)` (contract
/// ../shared/contracts/search.md). The key is the tenant's, in `Api-Key`, `Authorization: Bearer`
/// or `apikey`. Errors keep our shape and add Pinecone's `error: {code, message}` and `status`.
struct VectorAPI {
    let node: NodeServices

    func register(on router: Router<EdgeContext>) {
        let vectors = router.group("t/:slug/vectors/v1").add(
            middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, requiresAPIKey: false))
        vectors.post("indexes", use: handled(createIndex))
        vectors.get("indexes", use: handled(listIndexes))
        vectors.get("indexes/:name", use: handled(describeIndex))
        vectors.delete("indexes/:name", use: handled(deleteIndex))
        vectors.post("indexes/:name/vectors/upsert", use: handled(upsert))
        vectors.post("indexes/:name/query", use: handled(query))
        vectors.get("indexes/:name/vectors/fetch", use: handled(fetch))
        vectors.post("indexes/:name/vectors/delete", use: handled(delete))
        vectors.post("indexes/:name/vectors/update", use: handled(update))
        vectors.get("indexes/:name/vectors/list", use: handled(list))
        vectors.post("indexes/:name/describe_index_stats", use: handled(stats))
        vectors.get("indexes/:name/describe_index_stats", use: handled(stats))
    }

    typealias Handler = @Sendable (Request, EdgeContext) async throws -> Response

    func handled(_ handler: @escaping Handler) -> Handler {
        SearchAPI.handled(handler) { failure, error in
            failure.extra["error"] = ["code": .string(Self.pineconeCode(error.status)), "message": .string(error.message)]
            failure.extra["status"] = .integer(Int64(error.status))
        }
    }

    static func pineconeCode(_ status: Int) -> String {
        switch status {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 409: "ALREADY_EXISTS"
        case 429: "RESOURCE_EXHAUSTED"
        case 503: "UNAVAILABLE"
        default: "INTERNAL"
        }
    }

    /// The tree and caller, once the caller may `action` on the named index (or, without a name,
    /// manage indexes: the service role).
    func authorize(_ request: Request, _ context: EdgeContext, _ action: Policy.Action?) throws -> (TenantTree, Caller) {
        let (tree, caller) = try SearchAPI.caller(request, context)
        if let action, let name = context.name("name") {
            guard tree.search.mayUseVectors(caller, index: name, action: action) else {
                throw SearchError(status: 403, code: "MB891", message: "role '\(caller.role)' has no \(action.rawValue) policy on vectors:\(name)", kind: .auth)
            }
        } else if !caller.isServiceRole {
            throw SearchError(status: 403, code: "MB891", message: "managing vector indexes takes the tenant's service key", kind: .auth)
        }
        return (tree, caller)
    }

    func index(_ tree: TenantTree, _ context: EdgeContext) throws -> VectorIndex {
        try tree.search.vectors.index(context.name("name") ?? "")
    }

    static func body(_ request: Request, _ tree: TenantTree) async throws -> JSONObject {
        try SearchAPI.object(try await SearchAPI.body(request, tree))
    }

    func model(_ index: VectorIndex, slug: String) -> JSONObject {
        let host = node.apiURL(for: slug) + "/vectors/v1/indexes/" + index.name
        return [
            "name": .string(index.name), "host": .string(host), "dimension": .integer(Int64(index.dimension)), "metric": .string(index.metric.rawValue),
            "vector_type": "dense", "status": ["ready": true, "state": "Ready"], "deletion_protection": "disabled",
            "spec": ["serverless": ["cloud": "mini-baas", "region": "local"]],
            "deployment": ["deployment_type": "managed", "cloud": "mini-baas", "region": "local"],
            "schema": ["fields": ["_values": ["type": "dense_vector", "dimension": .integer(Int64(index.dimension)), "metric": .string(index.metric.rawValue)]]],
            "tags": .null,
        ]
    }

    // MARK: - Control plane

    @Sendable func createIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, nil)
        let body = try await Self.body(request, tree)
        guard let name = body["name"]?.stringValue else { throw SearchError(status: 400, code: "MB896", message: "Missing field `name`") }
        // Bound to a source: `{name, entity, vectorColumn, metadataColumns?, source?, metric?, dimension?}`.
        if let entity = body["entity"]?.stringValue {
            guard let column = body["vectorColumn"]?.stringValue else { throw SearchError(status: 400, code: "MB896", message: "Missing field `vectorColumn`") }
            let metricName = body["metric"]?.stringValue ?? "cosine"
            guard let metric = VectorMetric(rawValue: metricName) else {
                throw SearchError(status: 400, code: "MB896", message: "Unknown metric '\(metricName)': cosine, euclidean or dotproduct")
            }
            let index = try await tree.search.createBoundVectors(
                name: name, source: body["source"]?.stringValue, entity: entity, vectorColumn: column,
                metadataColumns: body["metadataColumns"]?.arrayValue?.compactMap(\.stringValue) ?? [], metric: metric,
                dimension: body["dimension"]?.intValue.map(Int.init))
            return try jsonResponse(.object(model(index, slug: tree.slug)), status: .created)
        }
        // Pinecone 10's `schema.fields._values`, or the older `dimension`/`metric`.
        let field = body["schema"]?["fields"]?["_values"]
        guard let dimension = (field?["dimension"] ?? body["dimension"])?.intValue else {
            throw SearchError(status: 400, code: "MB893", message: "Missing the index's dimension (schema.fields._values.dimension or dimension)")
        }
        let metricName = (field?["metric"] ?? body["metric"])?.stringValue ?? "cosine"
        guard let metric = VectorMetric(rawValue: metricName) else {
            throw SearchError(status: 400, code: "MB896", message: "Unknown metric '\(metricName)': cosine, euclidean or dotproduct")
        }
        if let type = field?["type"]?.stringValue, type != "dense_vector" {
            throw SearchError(status: 400, code: "MB896", message: "Only dense vectors are supported, not '\(type)'")
        }
        let index = try await tree.search.vectors.create(name: name, dimension: Int(dimension), metric: metric)
        return try jsonResponse(.object(model(index, slug: tree.slug)), status: .created)
    }

    @Sendable func listIndexes(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, nil)
        return try jsonResponse(["indexes": .array(tree.search.vectors.all.map { .object(model($0, slug: tree.slug)) })])
    }

    @Sendable func describeIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .read)
        let name = context.name("name") ?? ""
        guard tree.search.vectors.exists(name) else { throw VectorIndexes.notFound(name) }
        var answer = model(try index(tree, context), slug: tree.slug)
        answer["status"] = ["ready": true, "state": "Ready"]
        answer["readOnly"] = .bool(tree.search.vectors.isBound(name))
        return try jsonResponse(.object(answer))
    }

    @Sendable func deleteIndex(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, nil)
        try await tree.search.deleteVectors(name: context.name("name") ?? "")
        return Response(status: .accepted)
    }

    // MARK: - Data plane

    static func floats(_ value: JSONValue?, field: String) throws -> [Float] {
        guard let items = value?.arrayValue else { throw SearchError(status: 400, code: "MB894", message: "`\(field)` must be an array of numbers") }
        var result: [Float] = []
        result.reserveCapacity(items.count)
        for item in items {
            guard let number = item.doubleValue else { throw SearchError(status: 400, code: "MB894", message: "`\(field)` must hold numbers only") }
            let float = Float(number)
            guard float.isFinite else { throw SearchError(status: 400, code: "MB894", message: "`\(field)` holds a value that is not finite") }
            result.append(float)
        }
        return result
    }

    static func metadata(_ value: JSONValue?, id: String) throws -> JSONObject? {
        switch value {
        case nil, .null?: return nil
        case .object(let object)?: return object
        default: throw SearchError(status: 400, code: "MB895", message: "Metadata of '\(id)' must be an object")
        }
    }

    static func namespace(_ body: JSONObject) -> String { body["namespace"]?.stringValue ?? "" }

    @Sendable func upsert(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .create)
        let index = try index(tree, context)
        try tree.search.vectors.checkWritable(index.name)
        let body = try await Self.body(request, tree)
        guard let items = body["vectors"]?.arrayValue else { throw SearchError(status: 400, code: "MB896", message: "Missing field `vectors`") }
        guard items.count <= VectorIndexes.maxBatch else {
            throw SearchError(status: 400, code: "MB896", message: "Too many vectors in one upsert: \(items.count), at most \(VectorIndexes.maxBatch)")
        }
        var records: [VectorRecord] = []
        for item in items {
            guard let id = item["id"]?.stringValue else { throw SearchError(status: 400, code: "MB896", message: "Every vector needs a string `id`") }
            if item["sparseValues"] != nil, item["sparseValues"] != .null {
                throw SearchError(status: 400, code: "MB896", message: "Sparse values are not supported")
            }
            records.append(VectorRecord(id: id, values: try Self.floats(item["values"], field: "values"), metadata: try Self.metadata(item["metadata"], id: id)))
        }
        try await tree.search.vectors.upsert(records, into: index, namespace: Self.namespace(body))
        return try jsonResponse(["upsertedCount": .integer(Int64(records.count))])
    }

    @Sendable func query(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .read)
        let index = try index(tree, context)
        let body = try await Self.body(request, tree)
        let namespace = Self.namespace(body)
        guard let topK = body["topK"]?.intValue, (1...Int64(VectorIndexes.maxTopK)).contains(topK) else {
            throw SearchError(status: 400, code: "MB896", message: "`topK` must be between 1 and \(VectorIndexes.maxTopK)")
        }
        let vector: [Float]
        if let id = body["id"]?.stringValue {
            guard let record = index.record(id, namespace: namespace) else {
                return try jsonResponse(["matches": .array([]), "namespace": .string(namespace), "usage": ["readUnits": 1]])
            }
            vector = record.values
        } else {
            vector = try Self.floats(body["vector"], field: "vector")
            guard vector.count == index.dimension else {
                throw SearchError(status: 400, code: "MB893", message: "Vector dimension \(vector.count) does not match the dimension of the index \(index.dimension)")
            }
        }
        let filter = try MetadataFilter.parse(body["filter"])
        let includeValues = body["includeValues"]?.boolValue ?? false
        let includeMetadata = body["includeMetadata"]?.boolValue ?? false
        // Pinecone's own bound: an answer with values or metadata stays a few megabytes.
        if includeValues || includeMetadata, topK > 1_000 {
            throw SearchError(status: 400, code: "MB896", message: "`topK` must be at most 1000 when including values or metadata")
        }
        let matches = try await offloaded {
            index.query(vector, topK: Int(topK), filter: filter, namespace: namespace, includeValues: includeValues, includeMetadata: includeMetadata)
        }
        return try jsonResponse([
            "matches": .array(matches.map { match in
                var object: JSONObject = ["id": .string(match.id), "score": .number(Double(match.score))]
                if let values = match.values { object["values"] = .array(values.map { .number(Double($0)) }) }
                if includeMetadata { object["metadata"] = match.metadata.map(JSONValue.object) ?? .null }
                return .object(object)
            }),
            "namespace": .string(namespace), "usage": ["readUnits": 1],
        ])
    }

    @Sendable func fetch(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .read)
        let index = try index(tree, context)
        let parameters = request.uri.queryParameters
        let ids = parameters.getAll("ids").map { String($0) }
        guard ids.count <= VectorIndexes.maxBatch else { throw SearchError(status: 400, code: "MB896", message: "At most \(VectorIndexes.maxBatch) ids per fetch") }
        let namespace = parameters.get("namespace") ?? ""
        var vectors = JSONObject()
        for id in ids {
            guard let record = index.record(id, namespace: namespace) else { continue }
            var object: JSONObject = ["id": .string(id), "values": .array(record.values.map { JSONValue.number(Double($0)) })]
            if let metadata = record.metadata { object["metadata"] = .object(metadata) }
            vectors[id] = .object(object)
        }
        return try jsonResponse(["vectors": .object(vectors), "namespace": .string(namespace), "usage": ["readUnits": 1]])
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .delete)
        let index = try index(tree, context)
        try tree.search.vectors.checkWritable(index.name)
        let body = try await Self.body(request, tree)
        let namespace = Self.namespace(body)
        if body["deleteAll"]?.boolValue == true {
            try await tree.search.vectors.delete(ids: nil, in: index, namespace: namespace)
        } else if let filter = try MetadataFilter.parse(body["filter"]) {
            let ids = index.ids(matching: filter, namespace: namespace)
            if !ids.isEmpty { try await tree.search.vectors.delete(ids: ids, in: index, namespace: namespace) }
        } else if let items = body["ids"]?.arrayValue {
            let ids = items.compactMap(\.stringValue)
            guard ids.count == items.count, ids.count <= VectorIndexes.maxBatch else {
                throw SearchError(status: 400, code: "MB896", message: "`ids` must be at most \(VectorIndexes.maxBatch) strings")
            }
            try await tree.search.vectors.delete(ids: ids, in: index, namespace: namespace)
        } else {
            throw SearchError(status: 400, code: "MB896", message: "Name `ids`, `filter` or `deleteAll: true`")
        }
        return try jsonResponse([:])
    }

    @Sendable func update(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .update)
        let index = try index(tree, context)
        try tree.search.vectors.checkWritable(index.name)
        let body = try await Self.body(request, tree)
        guard let id = body["id"]?.stringValue else { throw SearchError(status: 400, code: "MB896", message: "Missing field `id`") }
        let values = body["values"].map { _ in () } != nil ? try Self.floats(body["values"], field: "values") : nil
        let setMetadata = try Self.metadata(body["setMetadata"], id: id)
        let found = try await tree.search.vectors.update(id: id, values: values, setMetadata: setMetadata, in: index, namespace: Self.namespace(body))
        return try jsonResponse(["matchedRecords": .integer(found ? 1 : 0)])
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .read)
        let index = try index(tree, context)
        let parameters = request.uri.queryParameters
        let namespace = parameters.get("namespace") ?? ""
        let limit = min(max(Int(parameters.get("limit") ?? "") ?? 100, 1), 100)
        let page = index.list(prefix: parameters.get("prefix"), limit: limit, after: parameters.get("paginationToken"), namespace: namespace)
        var answer: JSONObject = ["vectors": .array(page.ids.map { ["id": .string($0)] }), "namespace": .string(namespace), "usage": ["readUnits": 1]]
        if let next = page.next { answer["pagination"] = ["next": .string(next)] }
        return try jsonResponse(.object(answer))
    }

    @Sendable func stats(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tree, _) = try authorize(request, context, .read)
        let index = try index(tree, context)
        var namespaces = JSONObject()
        for (name, count) in index.namespaces.sorted(by: { $0.key < $1.key }) { namespaces[name] = ["vectorCount": .integer(Int64(count))] }
        return try jsonResponse([
            "namespaces": .object(namespaces), "dimension": .integer(Int64(index.dimension)), "indexFullness": 0,
            "totalVectorCount": .integer(Int64(index.total)), "metric": .string(index.metric.rawValue), "vectorType": "dense",
        ])
    }
}
