import Connectors
import Hummingbird
import Runtime
import Tenancy

/// The OpenAPI 3 description of a tenant's REST surface, generated from a source's schema model:
/// one path per entity (read, and write where the entity allows it), one per function, and a
/// schema per entity.
struct TenantOpenAPIDocument {
    let tenant: Tenant
    let restURL: String
    var model = SchemaModel()

    /// The document as served. Thousands of tables make building and encoding it long: both run
    /// off the event loops.
    func response() async throws -> Response {
        let bytes = try await offloaded { json().encoded() }
        return Response(
            status: .ok, headers: [.contentType: "application/openapi+json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func json() -> JSONValue {
        var paths = JSONObject()
        var schemas = JSONObject()
        for entity in model.entities {
            schemas[entity.name] = schema(entity)
            paths["/\(entity.name)"] = .object(operations(entity))
        }
        for operation in model.operations {
            var properties = JSONObject()
            for argument in operation.arguments where !argument.name.isEmpty {
                properties[argument.name] = Self.type(argument.type, native: argument.nativeType)
            }
            let required = operation.arguments.filter { !$0.hasDefault && !$0.name.isEmpty }.map { JSONValue.string($0.name) }
            var body: JSONObject = ["type": "object", "properties": .object(properties)]
            if !required.isEmpty { body["required"] = .array(required) }
            paths["/rpc/\(operation.name)"] = [
                "post": [
                    "summary": .string(operation.comment ?? "Call \(operation.name)"),
                    "operationId": .string("rpc_\(operation.name)"),
                    "requestBody": ["required": .bool(!required.isEmpty), "content": ["application/json": ["schema": .object(body)]]],
                    "responses": ["200": ["description": "The function's result"], "204": ["description": "No result (void)"]],
                ]
            ]
        }
        return [
            "openapi": "3.0.3",
            "info": [
                "title": .string("\(tenant.name) — mini-baas REST API"),
                "version": "1",
                "description": "Generated from the tenant's data sources. Send the tenant's API key in the apikey header.",
            ],
            "servers": [["url": .string(restURL)]],
            "paths": .object(paths),
            "components": [
                "schemas": .object(schemas),
                "securitySchemes": [
                    "apikey": ["type": "apiKey", "in": "header", "name": "apikey"],
                    "bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"],
                ],
            ],
            "security": [["apikey": []], ["apikey": [], "bearer": []]],
        ]
    }

    func operations(_ entity: Entity) -> JSONObject {
        let ref: JSONValue = ["$ref": .string("#/components/schemas/\(entity.name)")]
        let rows: JSONValue = ["type": "array", "items": ref]
        let filters: [JSONValue] = entity.columns.map { column in
            ["name": .string(column.name), "in": "query", "required": false, "schema": ["type": "string"],
             "description": "PostgREST filter, e.g. eq.value"]
        }
        let common: [JSONValue] = ["select", "order", "limit", "offset"].map { name in
            ["name": .string(name), "in": "query", "required": false, "schema": ["type": "string"]]
        }
        let id = entity.name.replacingOccurrences(of: " ", with: "_")
        var operations: JSONObject = [
            "get": [
                "summary": .string(entity.comment ?? "Read \(entity.name)"), "operationId": .string("get_\(id)"),
                "parameters": .array(common + filters),
                "responses": ["200": ["description": "Rows", "content": ["application/json": ["schema": rows]]]],
            ]
        ]
        let body: JSONValue = ["required": true, "content": ["application/json": ["schema": ref]]]
        if entity.insertable {
            operations["post"] = [
                "operationId": .string("post_\(id)"), "requestBody": body,
                "responses": ["201": ["description": "Created"]],
            ]
        }
        if entity.updatable {
            operations["patch"] = [
                "operationId": .string("patch_\(id)"), "parameters": .array(filters), "requestBody": body,
                "responses": ["200": ["description": "Updated rows"], "204": ["description": "Updated"]],
            ]
        }
        if entity.deletable {
            operations["delete"] = [
                "operationId": .string("delete_\(id)"), "parameters": .array(filters),
                "responses": ["200": ["description": "Deleted rows"], "204": ["description": "Deleted"]],
            ]
        }
        return operations
    }

    func schema(_ entity: Entity) -> JSONValue {
        var properties = JSONObject()
        for column in entity.columns {
            guard case .object(var property) = Self.type(column.type, native: column.nativeType, element: column.elementType) else { continue }
            if let values = column.enumValues { property["enum"] = .array(values.map(JSONValue.string)) }
            if let comment = column.comment { property["description"] = .string(comment) }
            if column.nullable { property["nullable"] = true }
            properties[column.name] = .object(property)
        }
        let required = entity.columns.filter { !$0.nullable && $0.defaultExpression == nil && !$0.isIdentity && !$0.isGenerated }
        var schema: JSONObject = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0.name) }) }
        if let comment = entity.comment { schema["description"] = .string(comment) }
        return .object(schema)
    }

    static func type(_ type: PortableType, native: String, element: PortableType? = nil) -> JSONValue {
        switch type {
        case .integer: ["type": "integer", "format": "int32"]
        case .bigint: ["type": "integer", "format": "int64"]
        case .number: ["type": "number"]
        case .boolean: ["type": "boolean"]
        case .json: ["description": .string(native)]
        case .date: ["type": "string", "format": "date"]
        case .datetime: ["type": "string", "format": "date-time"]
        case .uuid: ["type": "string", "format": "uuid"]
        case .binary: ["type": "string", "format": "byte"]
        case .array: ["type": "array", "items": Self.type(element ?? .string, native: native)]
        default: ["type": "string", "format": .string(native)]
        }
    }
}
