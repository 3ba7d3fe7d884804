import Foundation
import Functions
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy

/// `/admin/v1/tenants/{slug}/functions…` (contract ../shared/contracts/functions.md, "Admin"):
/// deploy a version (JSON with a base64 module, or raw `application/wasm` with settings in the
/// query), list, get with versions, roll back, delete, and read the owner's call log. Admin token
/// only: the service key lives in client backends and never deploys code. Modules are checked
/// here, at deploy; secrets are sealed per function and never answered.
struct FunctionAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.put("tenants/:slug/functions/:name", use: deploy)
        group.get("tenants/:slug/functions", use: list)
        group.get("tenants/:slug/functions/:name", use: get)
        group.delete("tenants/:slug/functions/:name", use: delete)
        group.post("tenants/:slug/functions/:name/rollback", use: rollback)
        group.get("tenants/:slug/functions/:name/logs", use: logs)
    }

    static let namePattern = "^[A-Za-z][A-Za-z0-9_-]{0,62}$"
    /// Versions kept per function (the active one among them).
    static let keptVersions = 10
    /// QuickJS starts with 34 pages (2.1 MiB) and needs room for its heap.
    static let javaScriptMinimumMemoryMb = 16

    static func validName(_ name: String) -> Bool {
        name.range(of: namePattern, options: .regularExpression) != nil
    }

    static func secretContext(tenant: String, function: String) -> String { "tenant:\(tenant):function:\(function)" }

    /// Names a function's environment may not use: the node's own (CGI, `HTTP_*`, `MB_*`,
    /// `SUPABASE_*`).
    static let reservedNames: Set<String> = [
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT",
        "SERVER_PROTOCOL", "GATEWAY_INTERFACE", "REMOTE_ADDR", "X_FULL_URL", "X_MATCHED_ROUTE", "PATH_TRANSLATED", "AUTH_TYPE", "REMOTE_USER",
    ]

    static func checkVariableName(_ name: String, field: String) throws {
        guard name.range(of: "^[A-Za-z_][A-Za-z0-9_]{0,127}$", options: .regularExpression) != nil else {
            throw APIError.invalidField(field, "'\(name)' is not an environment variable name")
        }
        let upper = name.uppercased()
        if reservedNames.contains(upper) || upper.hasPrefix("MB_") || upper.hasPrefix("SUPABASE_") || upper.hasPrefix("HTTP_") {
            throw APIError.invalidField(field, "'\(name)' is reserved for the node")
        }
    }

    // MARK: - Deploy

    @Sendable func deploy(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.name("name") ?? ""
        guard Self.validName(name) else {
            throw APIError(status: .badRequest, code: "MB872", message: "invalid function name", details: "must match \(Self.namePattern)")
        }
        let limits = tenant.limits.functions
        let current = try await node.store.function(tenant: tenant.slug, name: name)
        var settings = FunctionSettings()
        if let current, let active = try await node.store.functionVersion(tenant: tenant.slug, name: name, version: current.activeVersion) {
            settings = active.settings
        }
        var moduleBytes: [UInt8]
        var fields = JSONObject()
        var body = request.body
        let buffer = try await body.collect(upTo: limits.maxModuleBytes * 2 + (1 << 20))
        let contentType = request.headers.value(.contentType)?.lowercased() ?? ""
        var language = "wasm"
        if contentType.hasPrefix("application/javascript") || contentType.hasPrefix("text/javascript") {
            language = "javascript"
        }
        if contentType.hasPrefix("application/wasm") || language == "javascript" {
            moduleBytes = Array(buffer.readableBytesView)
            for (key, value) in request.uri.queryParameters {
                let text = String(value)
                switch String(key) {
                case "verifyJwt", "serviceRole": fields[String(key)] = .bool(text == "true")
                case "timeoutMs", "memoryLimitMb":
                    guard let number = Int64(text) else { throw APIError.invalidField(String(key), "expected a whole number") }
                    fields[String(key)] = .integer(number)
                default: throw APIError.invalidField(String(key), "not a function setting")
                }
            }
        } else {
            let value: JSONValue
            do { value = try JSONValue.parse(buffer.readableBytesView) } catch { throw APIError.invalidJSON("\(error)") }
            guard let object = value.objectValue else { throw APIError.invalidJSON("expected a JSON object") }
            fields = object
            for key in fields.keys where !["module", "source", "language", "verifyJwt", "timeoutMs", "memoryLimitMb", "env", "secrets", "serviceRole"].contains(key) {
                throw APIError(status: .badRequest, code: "MB102", message: "unknown field '\(key)'")
            }
            if let value = fields["language"] {
                guard let name = value.stringValue, ["wasm", "javascript"].contains(name) else {
                    throw APIError.invalidField("language", "must be 'wasm' or 'javascript'")
                }
                language = name
            } else if fields["source"] != nil {
                language = "javascript"
            }
            if language == "javascript" {
                guard fields["module"] == nil else { throw APIError.invalidField("module", "a JavaScript function sends its 'source', not a module") }
                guard let source = fields["source"]?.stringValue else {
                    throw APIError.invalidField("source", current == nil ? "the JavaScript source is required" : "send the source again with each version")
                }
                moduleBytes = Array(source.utf8)
            } else if fields["source"] != nil {
                throw APIError.invalidField("source", "only JavaScript functions send a source (language: javascript)")
            } else if let text = fields["module"]?.stringValue, let data = Data(base64Encoded: text) {
                moduleBytes = Array(data)
            } else {
                if current == nil || fields["module"] != nil {
                    throw APIError.invalidField("module", "a base64 WebAssembly module is required")
                }
                throw APIError.invalidField("module", "send the module again with each version")
            }
        }
        settings.language = language == "javascript" ? "javascript" : nil
        if let value = fields["verifyJwt"] {
            guard let flag = value.boolValue else { throw APIError.invalidField("verifyJwt", "expected true or false") }
            settings.verifyJwt = flag
        }
        if let value = fields["serviceRole"] {
            guard let flag = value.boolValue else { throw APIError.invalidField("serviceRole", "expected true or false") }
            settings.serviceRole = flag
        }
        if let value = fields["timeoutMs"] {
            guard let number = value.intValue, (10...Int64(limits.maxTimeoutMs)).contains(number) else {
                throw APIError.invalidField("timeoutMs", "must be a whole number from 10 to \(limits.maxTimeoutMs)")
            }
            settings.timeoutMs = Int(number)
        }
        if let value = fields["memoryLimitMb"] {
            guard let number = value.intValue, (1...Int64(limits.maxMemoryMb)).contains(number) else {
                throw APIError.invalidField("memoryLimitMb", "must be a whole number from 1 to \(limits.maxMemoryMb)")
            }
            settings.memoryLimitMb = Int(number)
        }
        settings.timeoutMs = min(settings.timeoutMs, limits.maxTimeoutMs)
        settings.memoryLimitMb = min(settings.memoryLimitMb, limits.maxMemoryMb)
        if let value = fields["env"] {
            guard let object = value.objectValue else { throw APIError.invalidField("env", "expected an object of strings") }
            var env: [String: String] = [:]
            for (key, item) in object {
                try Self.checkVariableName(key, field: "env")
                guard let text = item.stringValue, !text.contains("\0") else { throw APIError.invalidField("env", "'\(key)' must be a string without NUL") }
                env[key] = text
            }
            settings.env = env
        }
        // Secrets: merged into the function's sealed set; null deletes one.
        var sealedSecrets: String?
        // What calls will see, for a JavaScript deploy's check.
        var openedSecrets = try current.map { try openSecrets($0) } ?? [:]
        if let value = fields["secrets"] {
            guard let object = value.objectValue else { throw APIError.invalidField("secrets", "expected an object of strings") }
            var secrets = try current.map { try openSecrets($0) } ?? [:]
            for (key, item) in object {
                try Self.checkVariableName(key, field: "secrets")
                if item == .null {
                    secrets[key] = nil
                } else {
                    guard let text = item.stringValue, !text.contains("\0") else { throw APIError.invalidField("secrets", "'\(key)' must be a string") }
                    secrets[key] = text
                }
            }
            sealedSecrets = try sealSecrets(secrets, tenant: tenant.slug, function: name)
            openedSecrets = secrets
        } else if current == nil {
            sealedSecrets = try sealSecrets([:], tenant: tenant.slug, function: name)
        }
        let module: FunctionModule
        do throws(FunctionError) {
            if settings.isJavaScript {
                module = try FunctionModule(javaScript: moduleBytes, maxBytes: limits.maxModuleBytes)
                // Its top level runs once now: a syntax error or a missing handler is the deploy's 422.
                guard settings.memoryLimitMb >= Self.javaScriptMinimumMemoryMb else {
                    throw FunctionError.memoryTooLarge(Self.javaScriptMinimumMemoryMb << 20, limit: settings.memoryLimitMb << 20)
                }
                // Its top level runs once now, with the env and secrets calls will see: a syntax
                // error or a missing handler is the deploy's 422. Bounded by the tenant's own
                // longest timeout (the instance's creation is not counted).
                var environment = settings.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                environment += openedSecrets.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                environment.append("SUPABASE_URL=\(node.apiURL(for: tenant.slug))")
                try await FunctionsAPI.runner.check(
                    javaScript: module, environment: environment, timeoutMs: limits.maxTimeoutMs, memoryLimitBytes: settings.memoryLimitMb << 20)
            } else {
                module = try FunctionModule(bytes: moduleBytes, maxBytes: limits.maxModuleBytes, memoryLimitBytes: settings.memoryLimitMb << 20)
            }
        } catch {
            throw APIError(error)
        }
        let deployed: (function: FunctionRecord, version: FunctionVersionRecord, created: Bool)
        do {
            deployed = try await node.store.deployFunction(
                tenant: tenant.slug, name: name, module: moduleBytes, settings: settings, sha256: module.sha256, sealedSecrets: sealedSecrets,
                maxFunctions: limits.maxFunctions, keep: Self.keptVersions, now: Date())
        } catch ControlPlaneError.limitReached {
            throw APIError(status: .conflict, code: "MB874", message: "the tenant has as many functions as its limit allows", details: "limit \(limits.maxFunctions)")
        }
        await node.directory.active().first { $0.slug == tenant.slug }?.functions.changed(name)
        return try jsonResponse(try view(deployed.function, version: deployed.version, tenant: tenant.slug), status: deployed.created ? .created : .ok)
    }

    // MARK: - Reading and changing

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        var items: [JSONValue] = []
        for function in try await node.store.functions(tenant: tenant.slug) {
            guard let version = try await node.store.functionVersion(tenant: tenant.slug, name: function.name, version: function.activeVersion) else { continue }
            items.append(try view(function, version: version, tenant: tenant.slug))
        }
        return try jsonResponse(.array(items))
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let (function, version) = try await active(tenant.slug, context.name("name") ?? "")
        var object = try view(function, version: version, tenant: tenant.slug).objectValue ?? [:]
        object["versions"] = .array(try await node.store.functionVersions(tenant: tenant.slug, name: function.name, withModules: false).map { item in
            ["version": .integer(Int64(item.version)), "sha256": .string(item.sha256), "createdAt": .string(Self.iso(item.createdAt)),
             "active": .bool(item.version == function.activeVersion)]
        })
        return try jsonResponse(.object(object))
    }

    @Sendable func rollback(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.name("name") ?? ""
        _ = try await active(tenant.slug, name)
        let body = try await JSONBody.read(request)
        guard let version = body.object["version"]?.intValue else { throw APIError.invalidField("version", "a kept version number is required") }
        guard try await node.store.activateFunctionVersion(tenant: tenant.slug, name: name, version: Int(version), now: Date()) else {
            throw APIError(status: .notFound, code: "MB873", message: "function '\(name)' has no version \(version)", hint: "the last \(Self.keptVersions) versions are kept")
        }
        await node.directory.active().first { $0.slug == tenant.slug }?.functions.changed(name)
        let (function, active) = try await active(tenant.slug, name)
        return try jsonResponse(try view(function, version: active, tenant: tenant.slug))
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.name("name") ?? ""
        guard try await node.store.deleteFunction(tenant: tenant.slug, name: name) else { throw Self.notFound(name) }
        await node.directory.active().first { $0.slug == tenant.slug }?.functions.forget(name)
        return Response(status: .noContent)
    }

    /// The owner's log of recent calls (`limit` ≤ 1,000, `since` ISO-8601), newest first.
    @Sendable func logs(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.name("name") ?? ""
        _ = try await active(tenant.slug, name)
        let limit = min(1_000, max(1, request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100))
        let since = request.uri.queryParameters.get("since").flatMap { WebhookAdminAPI.date(String($0)) }
        let entries = await node.directory.active().first { $0.slug == tenant.slug }?.functions.logs(of: name, since: since, limit: limit) ?? []
        return try jsonResponse(["logs": .array(entries.map { entry in
            [
                "requestId": .string(entry.requestID), "at": .string(Self.iso(entry.at)), "version": .integer(Int64(entry.version)),
                "method": .string(entry.method), "path": .string(entry.path), "status": .integer(Int64(entry.status)),
                "code": entry.code.map(JSONValue.string) ?? .null, "durationMs": .number(entry.durationMs), "queueMs": .number(entry.queueMs),
                "fuel": .integer(Int64(clamping: entry.fuel)), "memoryBytes": .integer(Int64(entry.memoryBytes)), "stderr": .string(entry.stderr),
            ]
        })])
    }

    // MARK: - Helpers

    static func notFound(_ name: String) -> APIError {
        APIError(status: .notFound, code: "MB860", message: "function '\(name)' does not exist")
    }

    func active(_ tenant: String, _ name: String) async throws -> (FunctionRecord, FunctionVersionRecord) {
        guard let function = try await node.store.function(tenant: tenant, name: name),
            let version = try await node.store.functionVersion(tenant: tenant, name: name, version: function.activeVersion)
        else { throw Self.notFound(name) }
        return (function, version)
    }

    func openSecrets(_ function: FunctionRecord) throws -> [String: String] {
        guard !function.sealedSecrets.isEmpty, let sealed = Data(base64Encoded: function.sealedSecrets) else { return [:] }
        let opened = try node.secretBox.open(Array(sealed), context: Self.secretContext(tenant: function.tenant, function: function.name))
        var secrets: [String: String] = [:]
        for (key, value) in try JSONValue.parse(opened).objectValue ?? [:] { secrets[key] = value.stringValue }
        return secrets
    }

    func sealSecrets(_ secrets: [String: String], tenant: String, function: String) throws -> String {
        var object = JSONObject()
        for key in secrets.keys.sorted() { object[key] = .string(secrets[key] ?? "") }
        // Sealed bytes, kept as base64 text in the function's row.
        return Data(try node.secretBox.seal(JSONValue.object(object).encoded(), context: Self.secretContext(tenant: tenant, function: function)))
            .base64EncodedString()
    }

    func view(_ function: FunctionRecord, version: FunctionVersionRecord, tenant: String) throws -> JSONValue {
        let secretNames = (try? openSecrets(function).keys.sorted()) ?? []
        var env = JSONObject()
        for key in version.settings.env.keys.sorted() { env[key] = .string(version.settings.env[key] ?? "") }
        return [
            "name": .string(function.name), "version": .integer(Int64(version.version)), "verifyJwt": .bool(version.settings.verifyJwt),
            "timeoutMs": .integer(Int64(version.settings.timeoutMs)), "memoryLimitMb": .integer(Int64(version.settings.memoryLimitMb)),
            "env": .object(env), "secrets": .array(secretNames.map(JSONValue.string)), "serviceRole": .bool(version.settings.serviceRole),
            "language": .string(version.settings.isJavaScript ? "javascript" : "wasm"),
            "sha256": .string(version.sha256), "sizeBytes": .integer(Int64(version.module.count)),
            "url": .string(node.apiURL(for: tenant) + "/functions/v1/" + function.name),
        ]
    }

    static func iso(_ date: Date) -> String { WebhookAdminAPI.iso(date) }
}

extension APIError {
    /// A function's refusal (deploy checks, invocation outcomes) with its code; the answer also
    /// carries `sb-error-code`, which Supabase's clients read.
    init(_ error: FunctionError) {
        self.init(
            status: HTTPResponse.Status(code: error.status), code: error.code, message: error.message, details: error.details,
            headers: [HTTPField.Name("sb-error-code")!: error.code])
    }
}
