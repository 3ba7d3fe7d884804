import Connectors
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy
import TenantRuntime

extension RestAPI {
    // MARK: - Supabase projects reached through their REST endpoint

    /// The REST proxy this request is for: the named source when it is one, or, for `/rest/v1`,
    /// the first proxy when the tenant has no database source.
    func proxy(_ context: EdgeContext) -> RestProxySource? {
        guard let sources = context.tenant?.data.sources else { return nil }
        if let name = context.name("source") { return sources.restProxy(named: name) }
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
}
