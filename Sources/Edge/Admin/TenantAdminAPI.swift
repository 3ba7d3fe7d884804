import Foundation
import Storage
import Hummingbird
import Runtime
import Tenancy

/// `/admin/v1/tenants…`: register, list, read, change, restart and delete tenants (DESIGN.md §3).
struct TenantAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.post("tenants", use: create)
        group.get("tenants", use: list)
        group.get("tenants/:slug", use: get)
        group.patch("tenants/:slug", use: update)
        group.delete("tenants/:slug", use: delete)
        group.post("tenants/:slug/restart", use: restart)
        group.get("tenants/:slug/audit", use: tenantAudit)
        group.get("audit", use: audit)
    }

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        try body.allowOnly(["slug", "name", "limits"])
        let slug = try body.requiredString("slug")
        guard Slug.isValid(slug) else {
            throw APIError.invalidField("slug", "must match \(Slug.pattern) (3–40 characters: lowercase letters, digits and '-')")
        }
        let name = try Self.validName(try body.requiredString("name"))
        let limits = try Self.limits(from: try body.object("limits"), base: .default)

        do {
            let (tenant, keyRing) = try await node.registrar.create(
                slug: slug, name: name, limits: limits, actor: "admin", requestID: context.requestID)
            return try jsonResponse(view(tenant, keyRing: keyRing), status: .created)
        } catch ControlPlaneError.duplicate {
            throw APIError.tenantExists(slug)
        }
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenants = try await node.store.listTenants()
        return try jsonResponse(.array(tenants.map { view($0, keyRing: nil) }))
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let keyRing = try await node.directory.keyRing(for: tenant.slug)
        return try jsonResponse(view(tenant, keyRing: keyRing))
    }

    @Sendable func update(_ request: Request, context: EdgeContext) async throws -> Response {
        var tenant = try await node.existingTenant(context)
        let previousTimeout = tenant.limits.requestTimeoutMs
        let body = try await JSONBody.read(request)
        try body.allowOnly(["name", "status", "limits"])
        if let name = try body.string("name") { tenant.name = try Self.validName(name) }
        if let status = try body.string("status") {
            guard let parsed = TenantStatus(rawValue: status) else {
                throw APIError.invalidField("status", "must be 'active' or 'disabled'")
            }
            tenant.status = parsed
        }
        tenant.limits = try Self.limits(from: try body.object("limits"), base: tenant.limits)
        var detail = JSONObject()
        for key in body.object.keys { detail[key] = body.object[key] }
        guard try await node.store.updateTenant(tenant, audit: audit(context, "tenant.update", tenant: tenant.slug, detail: detail)) else {
            throw APIError.tenantNotFound(tenant.slug)
        }
        if tenant.limits.requestTimeoutMs != previousTimeout {
            // Source pools carry the statement timeout on their connections: start them afresh.
            await node.tenantChanged(tenant.slug)
        } else {
            try await node.directory.refresh(tenant.slug)
            await node.cluster.publish(.tenantChanged, slug: tenant.slug)
        }
        return try jsonResponse(view(tenant, keyRing: nil))
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = context.parameters.get("slug") ?? ""
        let sources = Slug.isValid(slug) ? try await node.store.sources(slug) : []
        guard Slug.isValid(slug), try await node.store.deleteTenant(slug, audit: audit(context, "tenant.delete", tenant: slug)) else {
            throw APIError.tenantNotFound(slug)
        }
        await node.tenantChanged(slug, deleted: true)
        for record in sources { await node.sourceCatalog.dropProvisioned(record) }
        node.configuration.sqliteFiles?.removeTenantDirectory(slug)
        // The rows went with the tenant; its objects' bytes go now.
        await node.blobs?.deleteAll(tenant: slug)
        return Response(status: .noContent)
    }

    @Sendable func restart(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        await node.tenantChanged(tenant.slug)
        try await node.store.appendAudit(audit(context, "tenant.restart", tenant: tenant.slug))
        return try jsonResponse(["slug": .string(tenant.slug), "restarted": true])
    }

    @Sendable func tenantAudit(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try await auditResponse(request, tenant: tenant.slug)
    }

    @Sendable func audit(_ request: Request, context: EdgeContext) async throws -> Response {
        try await auditResponse(request, tenant: request.uri.queryParameters.get("tenant"))
    }

    // MARK: - Helpers

    private func auditResponse(_ request: Request, tenant: String?) async throws -> Response {
        var limit = 100
        if let text = request.uri.queryParameters.get("limit") {
            guard let parsed = Int(text), (1...1000).contains(parsed) else {
                throw APIError.invalidField("limit", "must be a whole number from 1 to 1000")
            }
            limit = parsed
        }
        let entries = try await node.store.auditLog(tenant: tenant, limit: limit)
        return try jsonResponse(.array(entries.map { entry in
            var object = JSONObject()
            object["id"] = entry.id.map(JSONValue.integer) ?? .null
            object["at"] = .string(ISO8601DateFormatter().string(from: entry.at))
            object["actor"] = .string(entry.actor)
            object["action"] = .string(entry.action)
            object["tenant"] = entry.tenant.map(JSONValue.string) ?? .null
            object["requestId"] = entry.requestID.map(JSONValue.string) ?? .null
            object["detail"] = .object(entry.detail)
            return .object(object)
        }))
    }

    private func audit(_ context: EdgeContext, _ action: String, tenant: String?, detail: JSONObject = JSONObject()) -> AuditEntry {
        AuditEntry(at: Date(), actor: "admin", action: action, tenant: tenant, requestID: context.requestID, detail: detail)
    }

    private func view(_ tenant: Tenant, keyRing: TenantKeyRing?) -> JSONValue {
        var object = JSONObject()
        object["slug"] = .string(tenant.slug)
        object["name"] = .string(tenant.name)
        object["status"] = .string(tenant.status.rawValue)
        object["createdAt"] = .string(ISO8601DateFormatter().string(from: tenant.createdAt))
        object["apiUrl"] = .string(node.apiURL(for: tenant.slug))
        object["limits"] = Self.limitsJSON(tenant.limits)
        if let keyRing {
            object["anonKey"] = .string(keyRing.apiKey(role: "anon", issuedAt: tenant.createdAt))
            object["serviceKey"] = .string(keyRing.apiKey(role: "service_role", issuedAt: tenant.createdAt))
        }
        return .object(object)
    }

    static func validName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(trimmed.count) else { throw APIError.invalidField("name", "must be 1 to 200 characters") }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.invalidField("name", "must not contain control characters")
        }
        return trimmed
    }

    static let limitFields = ["requestsPerSecond", "burst", "maxConcurrent", "maxQueued", "maxBodyBytes", "requestTimeoutMs", "realtime", "storage", "jobs", "functions"]

    /// Applies the given fields onto `base`; every field is checked for type and range.
    static func limits(from object: JSONObject?, base: TenantLimits) throws -> TenantLimits {
        guard let object else { return base }
        let fields = try LimitFields(object, path: "limits", allowed: limitFields)
        var limits = base
        if let value = try fields.number("requestsPerSecond") { limits.requestsPerSecond = value }
        if let value = try fields.integer("burst") { limits.burst = value }
        if let value = try fields.integer("maxConcurrent") { limits.maxConcurrent = value }
        if let value = try fields.integer("maxQueued") { limits.maxQueued = value }
        if let value = try fields.integer("maxBodyBytes") { limits.maxBodyBytes = value }
        if let value = try fields.integer("requestTimeoutMs") { limits.requestTimeoutMs = value }
        if let value = object["realtime"] {
            guard case .object(let realtime) = value else { throw APIError.invalidField("limits.realtime", "expected an object") }
            limits.realtime = try realtimeLimits(realtime, base: limits.realtime)
        }
        if let value = object["storage"] {
            guard case .object(let storage) = value else { throw APIError.invalidField("limits.storage", "expected an object") }
            let fields = try LimitFields(storage, path: "limits.storage", allowed: ["maxBytes", "maxObjectBytes", "maxBuckets"])
            if let value = try fields.integer("maxBytes") { limits.storage.maxBytes = value }
            if let value = try fields.integer("maxObjectBytes") { limits.storage.maxObjectBytes = value }
            if let value = try fields.integer("maxBuckets") { limits.storage.maxBuckets = value }
        }
        if let value = object["jobs"] {
            guard case .object(let jobs) = value else { throw APIError.invalidField("limits.jobs", "expected an object") }
            let fields = try LimitFields(jobs, path: "limits.jobs", allowed: ["maxInFlight", "perSecond", "maxPending"])
            if let value = try fields.integer("maxInFlight") { limits.jobs.maxInFlight = value }
            if let value = try fields.number("perSecond") { limits.jobs.perSecond = value }
            if let value = try fields.integer("maxPending") { limits.jobs.maxPending = value }
        }
        if let value = object["functions"] {
            guard case .object(let functions) = value else { throw APIError.invalidField("limits.functions", "expected an object") }
            let fields = try LimitFields(
                functions, path: "limits.functions",
                allowed: ["maxConcurrent", "maxQueued", "maxTimeoutMs", "maxMemoryMb", "maxModuleBytes", "maxFunctions", "maxOutputBytes"])
            if let value = try fields.integer("maxConcurrent") { limits.functions.maxConcurrent = value }
            if let value = try fields.integer("maxQueued") { limits.functions.maxQueued = value }
            if let value = try fields.integer("maxTimeoutMs") { limits.functions.maxTimeoutMs = value }
            if let value = try fields.integer("maxMemoryMb") { limits.functions.maxMemoryMb = value }
            if let value = try fields.integer("maxModuleBytes") { limits.functions.maxModuleBytes = value }
            if let value = try fields.integer("maxFunctions") { limits.functions.maxFunctions = value }
            if let value = try fields.integer("maxOutputBytes") { limits.functions.maxOutputBytes = value }
        }
        let problems = limits.problems()
        if !problems.isEmpty { throw APIError.invalidField("limits", problems.joined(separator: "; ")) }
        return limits
    }

    static let realtimeFields = ["maxConnections", "maxChannelsPerClient", "joinsPerSecond", "eventsPerSecond", "maxPayloadBytes", "outboundQueue"]

    static func realtimeLimits(_ object: JSONObject, base: RealtimeLimits) throws -> RealtimeLimits {
        let fields = try LimitFields(object, path: "limits.realtime", allowed: realtimeFields)
        var limits = base
        if let value = try fields.integer("maxConnections") { limits.maxConnections = value }
        if let value = try fields.integer("maxChannelsPerClient") { limits.maxChannelsPerClient = value }
        if let value = try fields.number("joinsPerSecond") { limits.joinsPerSecond = value }
        if let value = try fields.number("eventsPerSecond") { limits.eventsPerSecond = value }
        if let value = try fields.integer("maxPayloadBytes") { limits.maxPayloadBytes = value }
        if let value = try fields.integer("outboundQueue") { limits.outboundQueue = value }
        return limits
    }

    /// One object of limit fields: unknown names refused, each value read with its type checked
    /// and its full path in the error.
    struct LimitFields {
        let object: JSONObject
        let path: String

        init(_ object: JSONObject, path: String, allowed: [String]) throws {
            let unknown = object.keys.filter { !allowed.contains($0) }
            if !unknown.isEmpty { throw APIError.unknownFields(unknown.map { "\(path).\($0)" }, allowed: allowed) }
            self.object = object
            self.path = path
        }

        func integer(_ key: String) throws -> Int? {
            guard let value = object[key] else { return nil }
            guard let int = value.intValue, let small = Int(exactly: int) else {
                throw APIError.invalidField("\(path).\(key)", "expected a whole number, got \(value.typeName)")
            }
            return small
        }

        func number(_ key: String) throws -> Double? {
            guard let value = object[key] else { return nil }
            guard let number = value.doubleValue else {
                throw APIError.invalidField("\(path).\(key)", "expected a number, got \(value.typeName)")
            }
            return number
        }
    }

    static func limitsJSON(_ limits: TenantLimits) -> JSONValue {
        [
            "realtime": [
                "maxConnections": .integer(Int64(limits.realtime.maxConnections)),
                "maxChannelsPerClient": .integer(Int64(limits.realtime.maxChannelsPerClient)),
                "joinsPerSecond": .number(limits.realtime.joinsPerSecond), "eventsPerSecond": .number(limits.realtime.eventsPerSecond),
                "maxPayloadBytes": .integer(Int64(limits.realtime.maxPayloadBytes)),
                "outboundQueue": .integer(Int64(limits.realtime.outboundQueue)),
            ],
            "storage": [
                "maxBytes": .integer(Int64(limits.storage.maxBytes)), "maxObjectBytes": .integer(Int64(limits.storage.maxObjectBytes)),
                "maxBuckets": .integer(Int64(limits.storage.maxBuckets)),
            ],
            "jobs": [
                "maxInFlight": .integer(Int64(limits.jobs.maxInFlight)), "perSecond": .number(limits.jobs.perSecond),
                "maxPending": .integer(Int64(limits.jobs.maxPending)),
            ],
            "functions": [
                "maxConcurrent": .integer(Int64(limits.functions.maxConcurrent)), "maxQueued": .integer(Int64(limits.functions.maxQueued)),
                "maxTimeoutMs": .integer(Int64(limits.functions.maxTimeoutMs)), "maxMemoryMb": .integer(Int64(limits.functions.maxMemoryMb)),
                "maxModuleBytes": .integer(Int64(limits.functions.maxModuleBytes)), "maxFunctions": .integer(Int64(limits.functions.maxFunctions)),
                "maxOutputBytes": .integer(Int64(limits.functions.maxOutputBytes)),
            ],
            "requestsPerSecond": .number(limits.requestsPerSecond), "burst": .integer(Int64(limits.burst)),
            "maxConcurrent": .integer(Int64(limits.maxConcurrent)), "maxQueued": .integer(Int64(limits.maxQueued)),
            "maxBodyBytes": .integer(Int64(limits.maxBodyBytes)), "requestTimeoutMs": .integer(Int64(limits.requestTimeoutMs)),
        ]
    }
}

func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    jsonResponse(bytes: value.encoded(), status: status, headers: headers)
}

/// A JSON answer already written as bytes (a large one, written entry by entry).
func jsonResponse(bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var headers = headers
    if headers.value(.contentType) == nil { headers[.contentType] = "application/json; charset=utf-8" }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}
