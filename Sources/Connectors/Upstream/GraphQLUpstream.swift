import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Runtime

/// A tenant's upstream GraphQL API (`kind: graphql`): introspected once into the model (object types
/// as entities, query and mutation fields as operations), then proxied at `{apiUrl}/graphql/v1` with
/// the tenant's headers, a depth and a cost limit, the tenant's deadline and a circuit breaker.
public final class GraphQLUpstream: Sendable {
    public let name: String
    public let url: String
    public let model: SchemaModel
    public let limits: GraphQLQueryAnalyzer.Limits
    private let headers: [(String, String)]
    public let breaker = CircuitBreaker()

    public init(name: String, url: String, headers: [(String, String)], model: SchemaModel, limits: GraphQLQueryAnalyzer.Limits = .init()) {
        self.name = name
        self.url = url
        self.headers = headers
        self.model = model
        self.limits = limits
    }

    static let introspectionQuery = """
        query IntrospectionQuery { __schema { queryType { name } mutationType { name }
          types { kind name description fields(includeDeprecated: true) { name description
            args { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
            type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
            enumValues(includeDeprecated: true) { name } } } }
        """

    /// Runs the introspection query and builds the model.
    public static func introspect(url: String, headers: [(String, String)]) async throws(UpstreamSource.Failure) -> SchemaModel {
        let answer = try await post(url: url, headers: headers, body: ["query": .string(introspectionQuery)], timeout: .seconds(15))
        guard answer.status == 200, let json = try? JSONValue.parse(answer.body.readableBytesView), let schema = json["data"]?["__schema"] else {
            throw .badAnswer("the introspection query did not answer with a schema (HTTP \(answer.status))")
        }
        return model(from: schema)
    }

    static func model(from schema: JSONValue) -> SchemaModel {
        let types = schema["types"]?.arrayValue ?? []
        let roots = Set([schema["queryType"]?["name"]?.stringValue, schema["mutationType"]?["name"]?.stringValue].compactMap { $0 })
        var enums: [EnumType] = []
        var entities: [Entity] = []
        var operations: [Operation] = []
        func unwrap(_ type: JSONValue?) -> (name: String, kind: String, list: Bool, nonNull: Bool) {
            var current = type
            var list = false
            var nonNull = false
            var first = true
            while let kind = current?["kind"]?.stringValue, kind == "NON_NULL" || kind == "LIST" {
                if kind == "LIST" { list = true }
                if kind == "NON_NULL" && first { nonNull = true }
                first = false
                current = current?["ofType"]
            }
            return (current?["name"]?.stringValue ?? "", current?["kind"]?.stringValue ?? "", list, nonNull)
        }
        func portable(_ name: String, _ kind: String) -> PortableType {
            switch (kind, name) {
            case ("ENUM", _): .enumeration
            case (_, "Int"): .integer
            case (_, "Float"): .number
            case (_, "Boolean"): .boolean
            case (_, "String"), (_, "ID"): .string
            default: .json
            }
        }
        for type in types {
            guard let name = type["name"]?.stringValue, !name.hasPrefix("__") else { continue }
            if type["kind"]?.stringValue == "ENUM" {
                enums.append(EnumType(schema: "graphql", name: name, values: (type["enumValues"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }))
            }
            guard type["kind"]?.stringValue == "OBJECT" else { continue }
            let fields = type["fields"]?.arrayValue ?? []
            if roots.contains(name) {
                let mutation = name == schema["mutationType"]?["name"]?.stringValue
                for field in fields {
                    guard let fieldName = field["name"]?.stringValue else { continue }
                    let result = unwrap(field["type"])
                    let arguments = (field["args"]?.arrayValue ?? []).compactMap { arg -> Operation.Argument? in
                        guard let argName = arg["name"]?.stringValue else { return nil }
                        let argType = unwrap(arg["type"])
                        return Operation.Argument(name: argName, nativeType: argType.name, type: argType.list ? .array : portable(argType.name, argType.kind), hasDefault: !argType.nonNull)
                    }
                    operations.append(Operation(
                        schema: "graphql", name: fieldName, arguments: arguments, returnType: result.name, returnsSet: result.list,
                        returnsEntity: result.kind == "OBJECT" ? EntityName(schema: "graphql", name: result.name) : nil, returnsVoid: false,
                        volatility: mutation ? .volatile : .stable, comment: field["description"]?.stringValue))
                }
                continue
            }
            let columns = fields.compactMap { field -> Column? in
                guard let fieldName = field["name"]?.stringValue else { return nil }
                let fieldType = unwrap(field["type"])
                guard fieldType.kind != "OBJECT" && fieldType.kind != "INTERFACE" && fieldType.kind != "UNION" else { return nil }
                return Column(
                    name: fieldName, type: fieldType.list ? .array : portable(fieldType.name, fieldType.kind), nativeType: fieldType.name,
                    elementType: fieldType.list ? portable(fieldType.name, fieldType.kind) : nil, nullable: !fieldType.nonNull,
                    comment: field["description"]?.stringValue)
            }
            let key = columns.first { $0.name == "id" }.map { [$0.name] } ?? []
            entities.append(Entity(
                schema: "graphql", name: name, kind: .endpoint, comment: type["description"]?.stringValue, columns: columns, primaryKey: key,
                insertable: false, updatable: false, deletable: false))
        }
        return SchemaModel(entities: entities.sorted { $0.name < $1.name }, relations: [], operations: operations.sorted { $0.name < $1.name }, enums: enums)
    }

    /// Checks a client's request against the limits, then forwards it; the upstream's answer
    /// (GraphQL errors included) goes back as it came.
    public func forward(_ body: JSONObject, deadline: Duration) async throws(UpstreamSource.Failure) -> UpstreamSource.Answer {
        guard breaker.admit() else { throw .circuitOpen }
        do {
            let answer = try await Self.post(url: url, headers: headers, body: body, timeout: deadline)
            breaker.record(success: answer.status < 500)
            return answer
        } catch {
            breaker.record(success: false)
            throw error
        }
    }

    static func post(url: String, headers: [(String, String)], body: JSONObject, timeout: Duration) async throws(UpstreamSource.Failure) -> UpstreamSource.Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: JSONValue.object(body).encoded()))
        do {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            let response = try await OutboundSpan.execute(UpstreamSource.client, request, timeout: .milliseconds(Int64(max(0.05, seconds) * 1000)))
            let collected = try await response.body.collect(upTo: UpstreamSource.maxResponseBytes)
            guard (try? JSONValue.parse(collected.readableBytesView)) != nil else {
                throw UpstreamSource.Failure.badAnswer("the GraphQL endpoint did not answer with JSON (HTTP \(response.status.code))")
            }
            return UpstreamSource.Answer(
                status: Int(response.status.code), contentType: "application/json", cacheControl: nil, body: collected, age: nil)
        } catch let failure as UpstreamSource.Failure {
            throw failure
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw .timedOut
        } catch {
            throw .unreachable("\(error)")
        }
    }
}
