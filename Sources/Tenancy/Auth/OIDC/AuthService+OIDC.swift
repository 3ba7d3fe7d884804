import Crypto
import Foundation
import Runtime

/// "Sign in with …" over OpenID Connect, as GoTrue's `/authorize` and `/callback` do. The flow's
/// state (provider, nonce, our PKCE verifier, where to land, the client's own PKCE challenge) is
/// sealed into the `state` parameter itself, so any node of a cluster can finish a flow another
/// began, and nothing is stored for flows that are abandoned.
extension AuthService {
    static let flowLifetime: TimeInterval = 600

    struct FlowState {
        var provider: String
        var nonce: String
        var verifier: String
        var redirectTo: String
        var clientChallenge: PKCEChallenge?
        var expires: Date
    }

    /// The provider's authorization URL to send the browser to, and the value the browser must
    /// bring back (in a cookie) to `/callback`: it ties the flow to the browser that began it, so
    /// a callback URL sent to someone else cannot sign them into the sender's account.
    public func beginSignIn(
        provider name: String, redirectTo: String?, pkce: PKCEChallenge?, scopes: String?
    ) async throws -> (url: String, browserBinding: String) {
        let provider = try provider(named: name)
        let endpoints: OIDCRelyingParty.Endpoints
        do {
            endpoints = try await oidc().endpoints(issuer: provider.issuer)
        } catch {
            throw AuthFailure(502, "oauth_provider_unavailable", "The identity provider cannot be reached", hint: "\(error)")
        }
        let state = FlowState(
            provider: provider.name, nonce: Self.newSecret(), verifier: Self.newSecret(), redirectTo: redirect(redirectTo), clientChallenge: pkce,
            expires: now().addingTimeInterval(Self.flowLifetime))
        var requested = provider.scopes
        for scope in (scopes ?? "").split(separator: " ").map(String.init) where !requested.contains(scope) { requested.append(scope) }
        if !requested.contains("openid") { requested.insert("openid", at: 0) }
        guard var url = URLComponents(string: endpoints.authorization) else {
            throw AuthFailure(502, "oauth_provider_unavailable", "The identity provider's authorization endpoint is not a URL")
        }
        let sealed = try seal(state)
        url.queryItems = (url.queryItems ?? []) + [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: provider.clientID),
            URLQueryItem(name: "redirect_uri", value: callbackURL), URLQueryItem(name: "scope", value: requested.joined(separator: " ")),
            URLQueryItem(name: "state", value: sealed), URLQueryItem(name: "nonce", value: state.nonce),
            URLQueryItem(name: "code_challenge", value: Base64URL.encode(Array(SHA256.hash(data: Array(state.verifier.utf8))))),
            URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        return (url.string ?? endpoints.authorization, Self.digest(sealed))
    }

    /// Where the browser lands after the provider; `target` is where to send it next, with the
    /// result (or, when `target` is nil, the state was unusable and there is nowhere safe to go).
    public func finishSignIn(
        code: String?, state sealed: String, providerError: String?, browserBinding: String?
    ) async -> (target: String?, result: Result<Verified, AuthFailure>) {
        guard let browserBinding, PasswordHasher.constantTimeEquals(Array(browserBinding.utf8), Array(Self.digest(sealed).utf8)),
            let state = try? open(sealed), state.expires > now()
        else {
            return (nil, .failure(AuthFailure(400, "bad_oauth_state", OIDCError.invalidState.description)))
        }
        do {
            if let providerError { throw AuthFailure(403, "oauth_provider_refused", "The identity provider refused: \(providerError)") }
            guard let code, !code.isEmpty else { throw AuthFailure(400, "bad_oauth_callback", "The provider sent no authorization code") }
            let provider = try provider(named: state.provider)
            let claims: JSONObject
            do {
                let idToken = try await oidc().exchange(code: code, verifier: state.verifier, redirectURI: callbackURL, provider: provider)
                let keys = try await oidc().keys(issuer: provider.issuer, refreshFor: Self.keyID(of: idToken))
                claims = try IDTokenVerifier.verify(idToken, keys: keys, issuer: provider.issuer, clientID: provider.clientID, nonce: state.nonce, now: now())
            } catch let error as OIDCError {
                throw AuthFailure(403, "oauth_id_token_rejected", "Sign-in with \(provider.name) failed: \(error)")
            }
            let user = try await linkedUser(provider: provider.name, claims: claims)
            if let challenge = state.clientChallenge {
                let authCode = Self.newSecret()
                try await store.putToken(AuthToken(
                    tenant: slug, hash: Self.digest(authCode), kind: .authCode, userID: user.id,
                    data: ["challenge": .string(challenge.value), "method": .string(challenge.method), "method_used": "oauth"], createdAt: now()))
                return (state.redirectTo, .success(.authCode(authCode)))
            }
            return (state.redirectTo, .success(.session(try await issueSession(for: user, method: "oauth"))))
        } catch let failure as AuthFailure {
            return (state.redirectTo, .failure(failure))
        } catch {
            return (state.redirectTo, .failure(AuthFailure(500, "unexpected_failure", "Sign-in could not be completed")))
        }
    }

    /// The user this identity belongs to: the one already linked, else the account with the same
    /// provider-verified e-mail, else a new account.
    private func linkedUser(provider: String, claims: JSONObject) async throws -> AuthUser {
        let subject = claims["sub"]?.stringValue ?? ""
        var data = JSONObject()
        for key in ["sub", "iss", "email", "email_verified", "name", "given_name", "family_name", "picture", "preferred_username"] {
            if let value = claims[key] { data[key] = value }
        }
        let at = now()
        if let id = try await store.identityUser(tenant: slug, provider: provider, subject: subject),
            let user = try await store.user(tenant: slug, id: id)
        {
            try await store.linkIdentity(tenant: slug, provider: provider, subject: subject, userID: user.id, data: data, at: at)
            return user
        }
        guard let rawEmail = claims["email"]?.stringValue, let email = try? Self.normalizedEmail(rawEmail) else {
            throw AuthFailure(422, "email_address_not_provided", "The identity provider did not share a usable e-mail address")
        }
        let verified = claims["email_verified"]?.boolValue ?? (claims["email_verified"]?.stringValue == "true")
        if var existing = try await store.user(tenant: slug, email: email) {
            // Both sides must have proven the address: an unverified claim at the provider would
            // take over the account, and an account whose address was never proven may belong to
            // someone who registered another person's address with a password of their own.
            guard verified, existing.profile.emailVerifiedAt != nil else {
                throw AuthFailure(
                    422, "email_exists", "An account with this e-mail exists and cannot be linked automatically",
                    hint: "sign in with the account's password first; its address must be confirmed and verified by the provider")
            }
            existing.profile.emailVerifiedAt = existing.profile.emailVerifiedAt ?? at
            var providers = existing.profile.appMetadata["providers"]?.arrayValue ?? []
            if !providers.contains(.string(provider)) { providers.append(.string(provider)) }
            existing.profile.appMetadata["providers"] = .array(providers)
            if existing.profile.emailConfirmedAt == nil { existing.profile.emailConfirmedAt = at }
            _ = try await store.updateUser(existing)
            try await store.linkIdentity(tenant: slug, provider: provider, subject: subject, userID: existing.id, data: data, at: at)
            return existing
        }
        // An address nobody verified would put a stranger's e-mail into `auth.email` for policies.
        guard verified || settings.autoconfirm else {
            throw AuthFailure(
                422, "provider_email_needs_verification", "The identity provider has not verified this e-mail address",
                hint: "verify the address at the provider, or enable autoconfirm for this tenant")
        }
        var profile = AuthUser.Profile(
            updatedAt: at, appMetadata: ["provider": .string(provider), "providers": [.string(provider)]], userMetadata: data)
        profile.emailConfirmedAt = at
        profile.emailVerifiedAt = verified ? at : nil
        let user = AuthUser(tenant: slug, id: UUID().uuidString.lowercased(), email: email, createdAt: at, profile: profile)
        do {
            try await store.createUser(user, token: nil)
        } catch ControlPlaneError.duplicate {
            throw AuthFailure.emailExists
        }
        try await store.linkIdentity(tenant: slug, provider: provider, subject: subject, userID: user.id, data: data, at: at)
        return user
    }

    private var callbackURL: String { authURL + "/callback" }

    private func provider(named name: String) throws -> OIDCProviderSettings {
        guard let provider = settings.providers.first(where: { $0.name == name }) else {
            throw AuthFailure(400, "validation_failed", "Unsupported provider: provider '\(name)' is not enabled for this tenant")
        }
        return provider
    }

    private func oidc() throws -> OIDCRelyingParty {
        guard let relyingParty else { throw AuthFailure(501, "oauth_unavailable", "OIDC sign-in is not available on this node") }
        return relyingParty
    }

    private static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".").first.flatMap(Base64URL.decode), let object = try? JSONValue.parse(header).objectValue
        else { return nil }
        return object["kid"]?.stringValue
    }

    // MARK: Sealed state

    private var stateContext: String { "tenant:\(slug):oidc-state" }

    private func seal(_ state: FlowState) throws -> String {
        guard let secretBox else { throw AuthFailure(501, "oauth_unavailable", "OIDC sign-in is not available on this node") }
        var object: JSONObject = [
            "p": .string(state.provider), "n": .string(state.nonce), "v": .string(state.verifier), "r": .string(state.redirectTo),
            "e": .integer(Int64(state.expires.timeIntervalSince1970)),
        ]
        if let challenge = state.clientChallenge {
            object["c"] = .string(challenge.value)
            object["m"] = .string(challenge.method)
        }
        return Base64URL.encode(try secretBox.seal(JSONValue.object(object).encoded(), context: stateContext))
    }

    private func open(_ sealed: String) throws -> FlowState {
        guard let secretBox, sealed.utf8.count < 4096, let bytes = Base64URL.decode(Substring(sealed)) else { throw OIDCError.invalidState }
        let object = try StoreCoding.decodeObject(String(decoding: try secretBox.open(bytes, context: stateContext), as: UTF8.self))
        guard let provider = object["p"]?.stringValue, let nonce = object["n"]?.stringValue, let verifier = object["v"]?.stringValue,
            let redirectTo = object["r"]?.stringValue, let expires = object["e"]?.doubleValue
        else { throw OIDCError.invalidState }
        let challenge = object["c"]?.stringValue.map { PKCEChallenge(value: $0, method: object["m"]?.stringValue ?? "s256") }
        return FlowState(
            provider: provider, nonce: nonce, verifier: verifier, redirectTo: redirectTo, clientChallenge: challenge,
            expires: Date(timeIntervalSince1970: expires))
    }
}
