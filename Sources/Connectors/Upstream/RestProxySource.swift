import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Runtime

/// A Supabase project reached through its REST endpoint instead of its database (`kind: supabase`
/// without `dbUrl`): the model is read from the project's `/rest/v1/` description, and requests in
/// the PostgREST grammar are checked here (syntax, known tables) and then forwarded with the
/// project's service key. Only the service role may use it: our policies are compiled into SQL,
/// which a forwarded request cannot carry.
public final class RestProxySource: Sendable {
    public let name: String
    public let projectURL: String
    public let model: SchemaModel
    private let serviceKey: String
    public let breaker = CircuitBreaker()

    public init(name: String, projectURL: String, serviceKey: String, model: SchemaModel) {
        self.name = name
        self.projectURL = projectURL.hasSuffix("/") ? String(projectURL.dropLast()) : projectURL
        self.serviceKey = serviceKey
        self.model = model
    }

    /// Reads the project's REST description: PostgREST's Swagger 2.0 (`definitions`, with `<pk/>`
    /// and `<fk table='…' column='…'/>` notes) or an OpenAPI 3 document (`components.schemas`).
    public static func describe(projectURL: String, serviceKey: String) async throws(UpstreamSource.Failure) -> SchemaModel {
        let base = projectURL.hasSuffix("/") ? String(projectURL.dropLast()) : projectURL
        var request = HTTPClientRequest(url: base + "/rest/v1/")
        request.headers.add(name: "apikey", value: serviceKey)
        request.headers.add(name: "Authorization", value: "Bearer \(serviceKey)")
        request.headers.add(name: "Accept", value: "application/openapi+json, application/json")
        let document: JSONValue
        do {
            let response = try await OutboundSpan.execute(UpstreamSource.client, request, timeout: .seconds(15))
            let body = try await response.body.collect(upTo: UploadedSchema.maxDocumentBytes)
            guard response.status.code == 200, let parsed = try? JSONValue.parse(body.readableBytesView) else {
                throw UpstreamSource.Failure.badAnswer("GET /rest/v1/ answered HTTP \(response.status.code) without a JSON description")
            }
            document = parsed
        } catch let failure as UpstreamSource.Failure {
            throw failure
        } catch {
            throw .unreachable("\(error)")
        }
        return model(from: document)
    }

    static func model(from document: JSONValue) -> SchemaModel {
        let definitions = document["definitions"]?.objectValue ?? document["components"]?["schemas"]?.objectValue ?? [:]
        var tables: [SchemaDraft.Table] = []
        var keys: [SchemaDraft.Key] = []
        var foreignKeys: [SchemaDraft.ForeignKey] = []
        for (name, schema) in definitions {
            guard schema["type"]?.stringValue == "object" || schema["properties"] != nil else { continue }
            let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
            var table = SchemaDraft.Table(schema: "public", name: name, kind: "r", comment: schema["description"]?.stringValue)
            var primaryKey: [String] = []
            for (property, value) in schema["properties"]?.objectValue ?? [:] {
                let words = nativeType(value).split(separator: " ").map(String.init)
                var dimensions = 0
                var cleaned = words
                if let last = cleaned.last, last.hasSuffix("[]") {
                    cleaned[cleaned.count - 1] = String(last.dropLast(2))
                    dimensions = 1
                }
                var qualifier: String?
                if cleaned.count == 1, let dot = cleaned[0].firstIndex(of: ".") {
                    qualifier = String(cleaned[0][..<dot])
                    cleaned[0] = String(cleaned[0][cleaned[0].index(after: dot)...])
                }
                let type = SQLTypeName.resolve(words: cleaned, schema: qualifier, modifiers: [], dimensions: dimensions, enums: [:])
                table.columns.append(SchemaDraft.Column(name: property, type: type, notNull: required.contains(property), comment: value["description"]?.stringValue))
                let note = value["description"]?.stringValue ?? ""
                if note.contains("<pk/>") { primaryKey.append(property) }
                if let fk = note.range(of: #"<fk table='([^']+)' column='([^']+)'/>"#, options: .regularExpression) {
                    let parts = note[fk].split(separator: "'")
                    if parts.count >= 4 {
                        foreignKeys.append(SchemaDraft.ForeignKey(
                            schema: "public", table: name, name: "\(name)_\(property)_fkey", columns: [property], targetSchema: "public",
                            targetTable: String(parts[1]), targetColumns: [String(parts[3])]))
                    }
                }
            }
            if !primaryKey.isEmpty { keys.append(SchemaDraft.Key(schema: "public", table: name, name: "\(name)_pkey", type: "p", columns: primaryKey)) }
            tables.append(table)
        }
        return SchemaDraft(tables: tables, keys: keys, foreignKeys: foreignKeys, indexes: [], enums: [], functions: []).build()
    }

    /// The PostgreSQL type a description names: PostgREST puts it in `format`.
    static func nativeType(_ property: JSONValue) -> String {
        let format = property["format"]?.stringValue
        switch (property["type"]?.stringValue, format) {
        case (_, "int32"?): return "integer"
        case (_, "int64"?): return "bigint"
        case (_, "date-time"?): return "timestamp with time zone"
        case (_, "byte"?): return "bytea"
        case (_, "double"?): return "double precision"
        case (_, "float"?): return "real"
        case ("array", _): return nativeType(property["items"] ?? .object([:])) + "[]"
        case (_, let format?) where !format.isEmpty: return format
        case ("boolean", _): return "boolean"
        case ("integer", _): return "integer"
        case ("number", _): return "numeric"
        case ("string", _): return "text"
        default: return "jsonb"
        }
    }

    /// Forwards one request; `path` is what follows `/rest/v1/`.
    public func forward(
        method: String, path: String, query: String?, headers: [(String, String)], body: ByteBuffer?, deadline: Duration
    ) async throws(UpstreamSource.Failure) -> (answer: UpstreamSource.Answer, headers: [(String, String)]) {
        guard breaker.admit() else { throw .circuitOpen }
        let url = projectURL + "/rest/v1/" + path + (query.map { "?" + $0 } ?? "")
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (header, value) in headers { request.headers.add(name: header, value: value) }
        request.headers.replaceOrAdd(name: "apikey", value: serviceKey)
        request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(serviceKey)")
        if let body { request.body = .bytes(body) }
        do {
            let seconds = Double(deadline.components.seconds) + Double(deadline.components.attoseconds) / 1e18
            let response = try await OutboundSpan.execute(UpstreamSource.client, request, timeout: .milliseconds(Int64(max(0.05, seconds) * 1000)))
            let collected = try await response.body.collect(upTo: UpstreamSource.maxResponseBytes)
            breaker.record(success: response.status.code < 500)
            let passed = ["Content-Range", "Preference-Applied", "Location", "Content-Location"].compactMap { name in
                response.headers.first(name: name).map { (name, $0) }
            }
            return (
                UpstreamSource.Answer(
                    status: Int(response.status.code), contentType: response.headers.first(name: "Content-Type"), cacheControl: nil, body: collected,
                    age: nil), passed
            )
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            breaker.record(success: false)
            throw .timedOut
        } catch {
            breaker.record(success: false)
            throw .unreachable("\(error)")
        }
    }
}
