import Foundation
import Jobs
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy

/// `{apiUrl}/auth/v1/…`: GoTrue's routes, so that `supabase-auth` works unchanged. Most routes need
/// the tenant's API key like every tenant route; the e-mail link target (`GET /verify`) and the
/// OIDC redirects are opened by a browser, which has none.
struct AuthAPI {
    let node: NodeServices

    func register(keyed: RouterGroup<EdgeContext>, open: RouterGroup<EdgeContext>) {
        let keyed = keyed.group("auth/v1").add(middleware: GoTrueResponseMiddleware())
        keyed.get("settings", use: settings)
        keyed.post("signup", use: signUp)
        keyed.post("token", use: token)
        keyed.get("user", use: user)
        keyed.put("user", use: updateUser)
        keyed.post("logout", use: logout)
        keyed.post("recover", use: recover)
        keyed.post("verify", use: verifyPosted)
        registerAdmin(on: keyed)
        let open = open.add(middleware: GoTrueResponseMiddleware())
        open.get("verify", use: verifyLink)
        open.get("authorize", use: authorize)
        open.get("callback", use: callback)
    }

    func service(_ context: EdgeContext) async throws -> AuthService {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let settings = try await AuthService.settings(slug: tree.slug, store: node.store, secretBox: node.secretBox)
        var service = AuthService(
            slug: tree.slug, authURL: node.apiURL(for: tree.slug) + "/auth/v1", store: node.store, keyRing: tree.keyRing,
            settings: settings, throttle: node.loginThrottle, relyingParty: node.relyingParty, secretBox: node.secretBox)
        // Auth mail takes the tenant's e-mail path: a durable job, retried on temporary failures.
        if let workers = tree.jobs.workers {
            let store = node.store
            let slug = tree.slug
            service.outbox = { [weak workers] message in
                let now = Date()
                let job = EmailDelivery.job(
                    tenant: slug, id: UUID().uuidString.lowercased(), message: message, tags: [["name": "category", "value": "auth"]],
                    idempotencyKey: nil, bodyHash: "", at: now, now: now)
                JobMetrics.enqueued(tenant: slug, kind: EmailDelivery.kind, count: try await store.enqueue(job) ? 1 : 0)
                workers?.ring()
            }
        }
        return service
    }

    @Sendable func settings(_ request: Request, context: EdgeContext) async throws -> Response {
        try jsonResponse(.object(try await service(context).publicSettings()))
    }

    @Sendable func signUp(_ request: Request, context: EdgeContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        guard let email = try body.string("email") else {
            if try body.string("phone") != nil {
                throw AuthFailure(422, "phone_provider_disabled", "Phone sign-ups are not supported; sign up with an e-mail address")
            }
            throw AuthFailure.validationFailed("an email is required")
        }
        let password = try body.requiredString("password")
        let auth = try await service(context)
        switch try await auth.signUp(
            email: email, password: password, data: try body.object("data") ?? [:], pkce: try Self.pkce(body),
            redirectTo: request.uri.queryParameters.get("redirect_to").map { String($0) })
        {
        case .session(let session): return try jsonResponse(.object(session))
        case .unconfirmed(let user): return try jsonResponse(.object(user))
        }
    }

    @Sendable func token(_ request: Request, context: EdgeContext) async throws -> Response {
        let grant = request.uri.queryParameters.get("grant_type").map { String($0) } ?? ""
        let body = try await JSONBody.read(request)
        let auth = try await service(context)
        let session: JSONObject
        switch grant {
        case "password":
            guard let email = try body.string("email") else {
                throw AuthFailure.validationFailed("sign in with an email and a password; phone sign-in is not supported")
            }
            session = try await auth.signIn(email: email, password: try body.requiredString("password"), clientAddress: context.remoteAddress)
        case "refresh_token":
            session = try await auth.refresh(try body.requiredString("refresh_token"))
        case "pkce":
            session = try await auth.exchange(authCode: try body.requiredString("auth_code"), verifier: try body.requiredString("code_verifier"))
        default:
            throw AuthFailure(400, "unsupported_grant_type", "grant_type must be password, refresh_token or pkce")
        }
        return try jsonResponse(.object(session))
    }

    @Sendable func user(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await service(context)
        let user = try await auth.currentUser(claims: context.caller?.claims ?? [:])
        return try jsonResponse(.object(try await auth.userJSON(user)))
    }

    @Sendable func updateUser(_ request: Request, context: EdgeContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        let auth = try await service(context)
        let user = try await auth.update(
            claims: context.caller?.claims ?? [:], email: try body.string("email"), password: try body.string("password"),
            data: try body.object("data"), redirectTo: request.uri.queryParameters.get("redirect_to").map { String($0) })
        return try jsonResponse(.object(user))
    }

    @Sendable func logout(_ request: Request, context: EdgeContext) async throws -> Response {
        let scopeName = request.uri.queryParameters.get("scope").map { String($0) } ?? "global"
        guard let scope = AuthService.SignOutScope(rawValue: scopeName) else {
            throw AuthFailure.validationFailed("scope must be global, local or others")
        }
        try await service(context).signOut(claims: context.caller?.claims ?? [:], scope: scope)
        return Response(status: .noContent)
    }

    @Sendable func recover(_ request: Request, context: EdgeContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        try await service(context).recover(
            email: try body.requiredString("email"), pkce: try Self.pkce(body),
            redirectTo: request.uri.queryParameters.get("redirect_to").map { String($0) }, clientAddress: context.remoteAddress)
        return try jsonResponse(.object([:]))
    }

    /// `POST /verify {type, token_hash}`: the client verifies a token from an e-mail itself.
    @Sendable func verifyPosted(_ request: Request, context: EdgeContext) async throws -> Response {
        let body = try await JSONBody.read(request)
        let kind = try Self.verifyKind(try body.requiredString("type"))
        guard let tokenHash = try body.string("token_hash") else {
            throw AuthFailure.validationFailed("send the token_hash from the e-mail; six-digit codes are not issued by this server")
        }
        guard case .session(let session) = try await service(context).verify(kind: kind, tokenHash: tokenHash, issueCode: false) else {
            throw APIError.internalError(requestID: context.requestID)
        }
        return try jsonResponse(.object(session))
    }

    /// `GET /verify?token=…&type=…&redirect_to=…`: the link in the e-mail. Always answers with a
    /// redirect to the tenant's site: tokens (or a PKCE code) on success, the error otherwise, the
    /// way GoTrue does, so that a browser never lands on a bare JSON error.
    @Sendable func verifyLink(_ request: Request, context: EdgeContext) async throws -> Response {
        let auth = try await service(context)
        let query = request.uri.queryParameters
        let target = auth.redirect(query.get("redirect_to").map { String($0) })
        let type = query.get("type").map { String($0) } ?? ""
        do {
            let kind = try Self.verifyKind(type)
            let token = query.get("token").map { String($0) } ?? ""
            switch try await auth.verify(kind: kind, tokenHash: token, issueCode: true) {
            case .authCode(let code):
                return Self.redirect(to: target, query: ["code": code])
            case .session(let session):
                return Self.redirect(to: target, session: session, type: type)
            }
        } catch let failure as AuthFailure {
            return Self.redirect(to: target, failure: failure)
        }
    }

    /// `GET /authorize?provider=…`: off to the identity provider.
    @Sendable func authorize(_ request: Request, context: EdgeContext) async throws -> Response {
        let query = request.uri.queryParameters
        guard let provider = query.get("provider").map({ String($0) }), !provider.isEmpty else {
            throw AuthFailure.validationFailed("provider is required")
        }
        var pkce: PKCEChallenge?
        if let challenge = query.get("code_challenge").map({ String($0) }), !challenge.isEmpty {
            let method = query.get("code_challenge_method").map { String($0) } ?? "plain"
            guard ["s256", "plain"].contains(method.lowercased()) else {
                throw AuthFailure.validationFailed("code_challenge_method must be s256 or plain")
            }
            pkce = PKCEChallenge(value: challenge, method: method)
        }
        let auth = try await service(context)
        let (url, binding) = try await auth.beginSignIn(
            provider: provider, redirectTo: query.get("redirect_to").map { String($0) }, pkce: pkce,
            scopes: query.get("scopes").map { String($0) })
        let secure = auth.authURL.hasPrefix("https:") ? "; Secure" : ""
        return Response(status: .found, headers: [
            .location: url, .cacheControl: "no-store",
            .setCookie: "\(Self.flowCookie(auth.slug))=\(binding); Path=/; Max-Age=600; HttpOnly; SameSite=Lax\(secure)",
        ])
    }

    /// The cookie that ties an OIDC flow to the browser that began it.
    static func flowCookie(_ slug: String) -> String { "mb-oauth-\(slug)" }

    static func cookie(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// `GET /callback?code=…&state=…`: back from the identity provider.
    @Sendable func callback(_ request: Request, context: EdgeContext) async throws -> Response {
        let query = request.uri.queryParameters
        let auth = try await service(context)
        let providerError = query.get("error").map { String($0) }.map { error in
            query.get("error_description").map { "\(error): \($0)" } ?? error
        }
        let (target, result) = await auth.finishSignIn(
            code: query.get("code").map { String($0) }, state: query.get("state").map { String($0) } ?? "", providerError: providerError,
            browserBinding: Self.cookie(Self.flowCookie(auth.slug), in: request))
        switch result {
        case .success(.authCode(let code)): return Self.redirect(to: target ?? auth.redirect(nil), query: ["code": code])
        case .success(.session(let session)): return Self.redirect(to: target ?? auth.redirect(nil), session: session, type: "oauth")
        case .failure(let failure):
            // Without a trustworthy state there is no safe place to send the browser: answer here.
            guard let target else { throw failure }
            return Self.redirect(to: target, failure: failure)
        }
    }

    static func redirect(to target: String, session: JSONObject, type: String) -> Response {
        var fragment: [String: String] = ["token_type": "bearer", "type": type]
        for key in ["access_token", "refresh_token", "expires_in", "expires_at"] {
            if let value = session[key] { fragment[key] = value.stringValue ?? String(decoding: value.encoded(), as: UTF8.self) }
        }
        return redirect(to: target, fragment: fragment)
    }

    static func redirect(to target: String, failure: AuthFailure) -> Response {
        redirect(to: target, fragment: ["error": "access_denied", "error_code": failure.code, "error_description": failure.message])
    }

    static func redirect(to target: String, query: [String: String] = [:], fragment: [String: String] = [:]) -> Response {
        var components = URLComponents(string: target) ?? URLComponents()
        if !query.isEmpty {
            components.queryItems = (components.queryItems ?? []) + query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        if !fragment.isEmpty {
            var encoder = URLComponents()
            encoder.queryItems = fragment.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
            components.percentEncodedFragment = encoder.percentEncodedQuery
        }
        return Response(status: .seeOther, headers: [.location: components.string ?? target, .cacheControl: "no-store"])
    }

    static func verifyKind(_ type: String) throws -> AuthService.VerifyKind {
        guard let kind = AuthService.VerifyKind(rawValue: type) else {
            throw AuthFailure.validationFailed("type must be signup, email, recovery or email_change")
        }
        return kind
    }

    static func pkce(_ body: JSONBody) throws -> PKCEChallenge? {
        guard let challenge = try body.string("code_challenge"), !challenge.isEmpty else { return nil }
        let method = try body.string("code_challenge_method") ?? "plain"
        guard ["s256", "plain"].contains(method.lowercased()) else {
            throw AuthFailure.validationFailed("code_challenge_method must be s256 or plain")
        }
        return PKCEChallenge(value: challenge, method: method)
    }
}

/// Auth routes answer like GoTrue: errors carry GoTrue's codes, and the API-version header tells
/// the clients to read the code from the body's `code` field.
struct GoTrueResponseMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[.supabaseAPIVersion] = "2024-01-01"
            return response
        } catch let failure as AuthFailure {
            var error = APIError(
                status: HTTPResponse.Status(code: failure.status), code: failure.code, message: failure.message, hint: failure.hint,
                headers: [.supabaseAPIVersion: "2024-01-01"])
            if let retryAfter = failure.retryAfter { error.headers[.retryAfter] = String(retryAfter) }
            if let reasons = failure.weakPasswordReasons { error.extra["weak_password"] = ["reasons": .array(reasons.map(JSONValue.string))] }
            throw error
        } catch var error as APIError {
            error.headers[.supabaseAPIVersion] = "2024-01-01"
            throw error
        }
    }
}

extension AuthFailure {
    static func validationFailed(_ message: String) -> AuthFailure { AuthFailure(400, "validation_failed", message) }
}

extension HTTPField.Name {
    static let supabaseAPIVersion = HTTPField.Name("x-supabase-api-version")!
}
