import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Runtime
import Tenancy

/// The door to every tenant route (`/t/{slug}/…`): finds the tenant's tree, authenticates the
/// caller with the tenant's keys, bounds the body, and runs the rest of the request inside the
/// tenant's request gate (rate limit, concurrency cap, deadline).
struct TenantGateMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let directory: TenantDirectory
    /// False only for the few routes a browser reaches without keys (e-mail links, OIDC
    /// redirects); their callers are `anon` and the handlers check what they need themselves.
    var requiresAPIKey = true

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        let slug = context.parameters.get("slug") ?? ""
        guard Slug.isValid(slug) else { throw APIError.tenantNotFound(slug) }
        let tree: TenantSupervisor?
        do {
            if let running = directory.runningTree(slug) {
                tree = running
            } else {
                tree = try await directory.supervisor(for: slug)
            }
        } catch {
            context.logger.error("cannot load tenant", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            throw APIError.controlPlaneUnavailable()
        }
        guard let tree else { throw APIError.tenantNotFound(slug) }
        tree.touch()
        let tenant = tree.tenant
        guard tenant.status == .active else { throw APIError.tenantDisabled(slug) }

        var context = context
        context.tenant = tree
        context.caller = requiresAPIKey ? try Self.authenticate(request, slug: slug, verify: tree.verify) : Caller(role: "anon", claims: [:])
        context.logger[metadataKey: "tenant"] = .string(slug)
        context.logger[metadataKey: "role"] = .string(context.caller?.role ?? "")

        let maxBody = tenant.limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody {
            throw APIError.bodyTooLarge(limit: maxBody)
        }
        let admitted = context
        // The gate runs the rest of the chain in a child task so its deadline can cancel it; the
        // chain closure is only ever called once, from that task, while this call waits for it.
        do {
            return try await withoutActuallyEscaping(next) { next in
            nonisolated(unsafe) let next = next
            return try await tree.gate.run {
                var request = request
                // Collected inside the gate so that slow uploads count against the deadline.
                if request.method != .get && request.method != .head {
                    do {
                        _ = try await request.collectBody(upTo: maxBody)
                    } catch {
                        throw APIError.bodyTooLarge(limit: maxBody)
                    }
                }
                return try await next(request, admitted)
            }
            }
        } catch let refusal as RequestGate.Refusal {
            switch refusal {
            case .rateLimited(let retryAfter): throw APIError.rateLimited(retryAfter: retryAfter)
            case .overloaded: throw APIError.overloaded
            case .deadlineExceeded: throw APIError.deadlineExceeded
            }
        }
    }

    /// `apikey` must be one of the tenant's keys (anon or service role); `Authorization: Bearer`,
    /// when present, decides the role, else the apikey does.
    static func authenticate(_ request: Request, slug: String, verify: (String) throws(JWTError) -> JSONObject) throws -> Caller {
        guard let apiKey = request.headers[.apikey] ?? request.uri.queryParameters.get("apikey"), !apiKey.isEmpty else {
            throw APIError.missingAPIKey
        }
        let keyClaims: JSONObject
        do {
            keyClaims = try verify(apiKey)
        } catch {
            throw APIError.invalidAPIKey("\(error)")
        }
        try checkTenant(keyClaims, slug: slug)
        guard let keyRole = keyClaims["role"]?.stringValue, keyRole == "anon" || keyRole == "service_role" else {
            throw APIError.invalidAPIKey("an API key must carry role anon or service_role")
        }
        guard let authorization = request.headers[.authorization] else {
            return Caller(role: keyRole, claims: keyClaims)
        }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.invalidJWT("Authorization header must be 'Bearer <token>'")
        }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        let claims: JSONObject
        do {
            claims = try verify(token)
        } catch .expired {
            throw APIError.jwtClaims("JWT expired")
        } catch .notYetValid {
            throw APIError.jwtClaims("JWT is not valid yet")
        } catch .invalidClaims(let why) {
            throw APIError.jwtClaims(why)
        } catch {
            throw APIError.invalidJWT("\(error)")
        }
        try checkTenant(claims, slug: slug)
        let role = claims["role"]?.stringValue ?? "anon"
        guard !role.isEmpty, role.utf8.count <= 63 else { throw APIError.jwtClaims("JWT role claim is invalid") }
        return Caller(role: role, claims: claims)
    }

    /// A token of ours names its tenant in `ref`; one naming another tenant is refused even if the
    /// secrets happened to match.
    private static func checkTenant(_ claims: JSONObject, slug: String) throws {
        if let ref = claims["ref"]?.stringValue, ref != slug {
            throw APIError.invalidJWT("JWT belongs to another tenant")
        }
    }
}

extension HTTPField.Name {
    static let apikey = HTTPField.Name("apikey")!
    static let requestID = HTTPField.Name("x-request-id")!
}
