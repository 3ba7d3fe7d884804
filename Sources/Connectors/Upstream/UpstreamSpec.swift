import Runtime

/// An upstream API's contract, read from its OpenAPI 3.x or Swagger 2.0 document: for each path and
/// method, the operation, its parameters and body schema — what the proxy validates a request
/// against before anything is sent upstream.
public struct UpstreamSpec: Sendable {
    public struct Parameter: Sendable {
        public enum Location: String, Sendable { case path, query, header }
        public var name: String
        public var location: Location
        public var required: Bool
        public var schema: JSONValue
    }

    public struct Route: Sendable {
        public enum Segment: Sendable, Equatable { case literal(String), parameter(String) }
        public var method: String
        public var path: String
        public var segments: [Segment]
        public var operationID: String
        public var parameters: [Parameter]
        public var body: JSONValue?
        public var bodyRequired: Bool
        public var summary: String?
        /// The entity a successful answer returns (for the model), and whether a list of it.
        public var returns: (name: String, list: Bool)?
    }

    public let document: JSONValue
    public let routes: [Route]
    public let isSwagger: Bool

    public static func parse(_ text: String) throws(UploadedSchema.Failure) -> UpstreamSpec {
        guard text.utf8.count <= UploadedSchema.maxDocumentBytes else {
            throw UploadedSchema.Failure(message: "the document is larger than 16 MiB", location: "/")
        }
        let document: JSONValue
        do {
            document = try StructuredDocument.parse(text)
        } catch {
            throw UploadedSchema.Failure(message: error.message, location: "/")
        }
        return try parse(document)
    }

    public static func parse(_ document: JSONValue) throws(UploadedSchema.Failure) -> UpstreamSpec {
        let swagger = document["swagger"]?.stringValue == "2.0"
        guard swagger || document["openapi"]?.stringValue?.hasPrefix("3.") == true else {
            throw UploadedSchema.Failure(message: "expected OpenAPI 3.x or Swagger 2.0", location: "/openapi")
        }
        guard let paths = document["paths"]?.objectValue else { throw UploadedSchema.Failure(message: "the document has no paths", location: "/paths") }
        var routes: [Route] = []
        for (path, item) in paths {
            let pointer = "/paths/" + JSONSchemaReader.escape(path)
            guard path.hasPrefix("/") else { throw UploadedSchema.Failure(message: "a path must start with '/'", location: pointer) }
            let segments: [Route.Segment] = path.split(separator: "/").map { part in
                part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
            }
            let shared = item["parameters"]?.arrayValue ?? []
            for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                guard let operation = item[method]?.objectValue else { continue }
                var parameters: [Parameter] = []
                var body: JSONValue?
                var bodyRequired = false
                for raw in shared + (operation["parameters"]?.arrayValue ?? []) {
                    var value = raw
                    if let ref = raw["$ref"]?.stringValue { value = resolve(ref, in: document) ?? raw }
                    guard let name = value["name"]?.stringValue, let location = value["in"]?.stringValue else {
                        throw UploadedSchema.Failure(message: "a parameter needs name and in", location: "\(pointer)/\(method)/parameters")
                    }
                    if location == "body" {
                        body = value["schema"]
                        bodyRequired = value["required"]?.boolValue ?? false
                        continue
                    }
                    guard let kind = Parameter.Location(rawValue: location) else { continue }
                    // Swagger 2.0 puts the type on the parameter itself.
                    var inline = JSONObject()
                    for key in ["type", "format", "enum", "items", "minimum", "maximum"] { inline[key] = value[key] }
                    let schema = value["schema"] ?? .object(inline)
                    parameters.removeAll { $0.name == name && $0.location == kind }
                    parameters.append(Parameter(name: name, location: kind, required: kind == .path || value["required"]?.boolValue == true, schema: schema))
                }
                if let requestBody = operation["requestBody"] {
                    var resolved = requestBody
                    if let ref = requestBody["$ref"]?.stringValue { resolved = resolve(ref, in: document) ?? requestBody }
                    body = resolved["content"]?["application/json"]?["schema"] ?? .object([:])
                    bodyRequired = resolved["required"]?.boolValue ?? false
                }
                let fallback = method + path.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
                let success = operation["responses"]?["200"] ?? operation["responses"]?["201"]
                let schema = swagger ? success?["schema"] : success?["content"]?["application/json"]?["schema"]
                var returns: (String, Bool)?
                if let ref = (schema?["$ref"] ?? schema?["items"]?["$ref"])?.stringValue, let name = ref.split(separator: "/").last {
                    returns = (String(name), schema?["type"]?.stringValue == "array")
                }
                routes.append(Route(
                    method: method.uppercased(), path: path, segments: segments, operationID: operation["operationId"]?.stringValue ?? fallback,
                    parameters: parameters, body: body, bodyRequired: bodyRequired, summary: operation["summary"]?.stringValue, returns: returns))
            }
        }
        // Literal segments win over parameters, as OpenAPI asks ("/users/me" before "/users/{id}").
        routes.sort { a, b in
            let aLiterals = a.segments.filter { if case .literal = $0 { true } else { false } }.count
            let bLiterals = b.segments.filter { if case .literal = $0 { true } else { false } }.count
            return aLiterals != bLiterals ? aLiterals > bLiterals : a.path < b.path
        }
        return UpstreamSpec(document: document, routes: routes, isSwagger: swagger)
    }

    static func resolve(_ ref: String, in document: JSONValue) -> JSONValue? {
        guard ref.hasPrefix("#/") else { return nil }
        var current = document
        for part in ref.dropFirst(2).split(separator: "/") {
            guard let next = current[part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")] else { return nil }
            current = next
        }
        return current
    }

    /// The route for a request, with its path parameters; nil when no path matches, and the
    /// methods the path does allow when only the method is wrong.
    public func match(method: String, path: [String]) -> (route: Route, parameters: [String: String])? {
        for route in routes where route.method == method && route.segments.count == path.count {
            var parameters: [String: String] = [:]
            var matched = true
            for (segment, part) in zip(route.segments, path) {
                switch segment {
                case .literal(let text): if text != part { matched = false }
                case .parameter(let name): parameters[name] = part
                }
                if !matched { break }
            }
            if matched { return (route, parameters) }
        }
        return nil
    }

    public func allowedMethods(path: [String]) -> [String] {
        routes.filter { route in
            route.segments.count == path.count && zip(route.segments, path).allSatisfy { segment, part in
                if case .literal(let text) = segment { return text == part }
                return true
            }
        }.map(\.method)
    }

    /// The operations, for the schema model (and `execute` policies).
    public var operations: [Operation] {
        routes.map { route in
            var arguments = route.parameters.map { parameter in
                Operation.Argument(
                    name: parameter.name, nativeType: parameter.schema["type"]?.stringValue ?? "string",
                    type: ["integer": .integer, "number": .number, "boolean": .boolean, "array": .array][parameter.schema["type"]?.stringValue ?? ""] ?? .string,
                    hasDefault: !parameter.required)
            }
            if route.body != nil { arguments.append(Operation.Argument(name: "body", nativeType: "json", type: .json, hasDefault: !route.bodyRequired)) }
            return Operation(
                schema: "api", name: route.operationID, arguments: arguments, returnType: route.returns?.name ?? "json",
                returnsSet: route.returns?.list ?? false, returnsEntity: route.returns.map { EntityName(schema: "public", name: $0.name) },
                returnsVoid: false, volatility: route.method == "GET" ? .stable : .volatile, comment: route.summary ?? "\(route.method) \(route.path)")
        }.sorted { $0.name < $1.name }
    }
}
