import Foundation
import Functions
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Tenancy
import TenantRuntime

/// `{apiUrl}/functions/v1/{name}[/subpath]`, any of GET POST PUT PATCH DELETE OPTIONS HEAD, on the
/// tenant's owner (the gate forwards like any tenant request). The active version runs in a fresh
/// WebAssembly instance with the WAGI ABI (contract "ABI"): CGI variables, `HTTP_*` headers, the
/// caller's identity as `MB_*`, `SUPABASE_URL` and keys as allowed, then the function's env and
/// secrets; the body on stdin; stdout's header block and body become the answer. `verifyJwt`
/// functions need the tenant's API key as REST does; others take keyless calls (webhooks), a
/// presented token still setting the role.
struct FunctionsAPI {
    let node: NodeServices

    /// The node's function threads (`MINIBAAS_FUNCTION_THREADS`, default 4 × cores) and memory for
    /// running calls (`MINIBAAS_FUNCTION_MEMORY_MB`, default 1,024), shared by every tenant; each
    /// tenant's turn at them is its functions subsystem's gate.
    static let runner = FunctionRunner(
        threads: ProcessInfo.processInfo.environment["MINIBAAS_FUNCTION_THREADS"].flatMap(Int.init) ?? 4 * ProcessInfo.processInfo.activeProcessorCount,
        memoryBytes: (ProcessInfo.processInfo.environment["MINIBAAS_FUNCTION_MEMORY_MB"].flatMap(Int.init) ?? 1_024) << 20)

    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .options, .head]

    func register(on router: Router<EdgeContext>) {
        let group = router.group("t/:slug/functions/v1").add(
            middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, apiKeyOptional: true))
        for method in Self.methods {
            group.on(":name", method: method, use: invoke)
            group.on(":name/**", method: method, use: invoke)
        }
    }

    /// Headers never passed to the guest: hop-by-hop ones and the node's own.
    static let hiddenHeaders: Set<String> = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization"]

    @Sendable func invoke(_ request: Request, context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        let name = context.name("name") ?? ""
        let active = try await activeFunction(name, tree: tree)
        let function = active.record
        let version = active.version
        let settings = version.settings
        if settings.verifyJwt && !context.presentedKey {
            throw APIError(status: .unauthorized, code: "MB201", message: "no API key in the request", hint: "this function verifies JWTs: send apikey and Authorization")
        }
        let limits = tree.tenant.limits.functions
        let module: FunctionModule
        do {
            module = try tree.functions.module(version, memoryLimitBytes: settings.memoryLimitMb << 20)
        } catch {
            throw APIError(error)
        }
        let environment = try environment(request, context: context, tree: tree, caller: caller, function: function, version: version)
            + active.fixedEnvironment
        var body = request.body
        let stdin = Array(try await body.collect(upTo: tree.tenant.limits.maxBodyBytes).readableBytesView)
        let invocation = Invocation(
            arguments: [name], environment: environment, stdin: stdin, timeoutMs: settings.timeoutMs, memoryLimitBytes: settings.memoryLimitMb << 20,
            maxOutputBytes: limits.maxOutputBytes)
        let queued = ContinuousClock.now
        let outcome: InvocationOutcome
        do {
            outcome = try await tree.functions.invoke(module, invocation, runner: Self.runner)
        } catch let error as FunctionError {
            throw APIError(error)
        }
        let queueMs = max(0, Double((ContinuousClock.now - queued).components.attoseconds) / 1e15 + Double((ContinuousClock.now - queued).components.seconds) * 1000 - outcome.durationMs)
        let response: Response
        var failure: FunctionError?
        switch outcome.result {
        case .success(let cgi):
            var fields = HTTPFields()
            for (header, value) in cgi.headers {
                guard let field = HTTPField.Name(header) else { continue }
                fields.append(HTTPField(name: field, value: value))
            }
            response = Response(
                status: HTTPResponse.Status(code: cgi.status), headers: fields,
                body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: cgi.body)))
        case .failure(let error):
            failure = error
            response = APIError(error).render()
        }
        tree.functions.record(FunctionLogEntry(
            requestID: context.requestID, at: Date(), function: name, version: version.version, method: request.method.rawValue,
            path: request.uri.path, status: failure?.status ?? response.status.code, code: failure?.code, durationMs: outcome.durationMs,
            queueMs: queueMs, fuel: outcome.fuel, memoryBytes: outcome.memoryBytes, stderr: outcome.stderr))
        return response
    }

    /// The function's active version, its keys, env and opened secrets: from the tree's cache, or
    /// read from the control plane (at most once a second per function).
    func activeFunction(_ name: String, tree: TenantTree) async throws -> ActiveFunction {
        if let cached = tree.functions.activeFunction(name) { return cached }
        guard let function = try await node.store.function(tenant: tree.slug, name: name),
            let version = try await node.store.functionVersion(tenant: tree.slug, name: name, version: function.activeVersion)
        else { throw FunctionAdminAPI.notFound(name) }
        var fixed: [(String, String)] = []
        if let keyRing = try? await node.directory.keyRing(for: tree.slug) {
            fixed.append(("SUPABASE_ANON_KEY", keyRing.apiKey(role: "anon", issuedAt: tree.tenant.createdAt)))
            if version.settings.serviceRole {
                fixed.append(("SUPABASE_SERVICE_ROLE_KEY", keyRing.apiKey(role: "service_role", issuedAt: tree.tenant.createdAt)))
            }
        }
        for key in version.settings.env.keys.sorted() { fixed.append((key, version.settings.env[key] ?? "")) }
        let secrets = try FunctionAdminAPI(node: node).openSecrets(function)
        for key in secrets.keys.sorted() { fixed.append((key, secrets[key] ?? "")) }
        let active = ActiveFunction(record: function, version: version, fixedEnvironment: fixed.map { "\($0.0)=\($0.1.replacingOccurrences(of: "\0", with: ""))" })
        tree.functions.remember(active)
        return active
    }

    /// The request's part of the guest's environment (contract "ABI"), in order: CGI, `HTTP_*`,
    /// identity, `SUPABASE_URL`; `ActiveFunction.fixedEnvironment` (keys, env, secrets) follows.
    func environment(
        _ request: Request, context: EdgeContext, tree: TenantTree, caller: Caller, function: FunctionRecord, version: FunctionVersionRecord
    ) throws -> [String] {
        let name = function.name
        let script = "/functions/v1/\(name)"
        let path = request.uri.path
        let prefix = "/t/\(tree.slug)\(script)"
        let pathInfo = path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : ""
        let query = (request.uri.query ?? "").split(separator: "&").filter { !$0.hasPrefix("forceFunctionRegion=") }.joined(separator: "&")
        var variables: [(String, String)] = [
            ("REQUEST_METHOD", request.method.rawValue), ("SCRIPT_NAME", script), ("PATH_INFO", pathInfo), ("QUERY_STRING", query),
            ("CONTENT_TYPE", request.headers.value(.contentType) ?? ""), ("CONTENT_LENGTH", request.headers.value(.contentLength) ?? "0"),
            ("SERVER_NAME", request.head.authority ?? "localhost"), ("SERVER_PORT", String(node.configuration.port)),
            ("SERVER_PROTOCOL", "HTTP/1.1"), ("GATEWAY_INTERFACE", "CGI/1.1"), ("REMOTE_ADDR", context.remoteAddress),
            ("X_FULL_URL", node.apiURL(for: tree.slug) + script + pathInfo + (query.isEmpty ? "" : "?" + query)),
            ("X_MATCHED_ROUTE", script + "/..."),
        ]
        var headerBytes = 0
        for field in request.headers {
            let lower = field.name.canonicalName
            guard !Self.hiddenHeaders.contains(lower), !lower.hasPrefix("x-minibaas-") else { continue }
            let key = "HTTP_" + lower.uppercased().replacingOccurrences(of: "-", with: "_")
            headerBytes += key.utf8.count + field.value.utf8.count + 2
            variables.append((key, field.value))
        }
        guard headerBytes <= 64 * 1024 else {
            throw APIError(status: HTTPResponse.Status(code: 431), code: "MB878", message: "the request's headers are too large for a function", details: "limit 64 KiB")
        }
        let claims = caller.claims
        variables += [
            ("MB_TENANT", tree.slug), ("MB_FUNCTION", name), ("MB_VERSION", String(version.version)), ("MB_REQUEST_ID", context.requestID),
            ("MB_ROLE", caller.role), ("MB_USER_ID", claims["sub"]?.stringValue ?? ""), ("MB_USER_EMAIL", claims["email"]?.stringValue ?? ""),
            ("MB_JWT_CLAIMS", JSONValue.object(claims).jsonString),
            ("MB_DEADLINE_MS", String(Int64(Date().timeIntervalSince1970 * 1000) + Int64(version.settings.timeoutMs))),
            ("SUPABASE_URL", node.apiURL(for: tree.slug)),
        ]
        // A value may not carry NUL (it would cut the variable short in the guest's libc).
        return variables.map { "\($0.0)=\($0.1.replacingOccurrences(of: "\0", with: ""))" }
    }
}
