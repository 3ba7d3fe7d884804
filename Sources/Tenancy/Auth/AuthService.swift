import Crypto
import Foundation
import Logging
import Runtime

/// GoTrue's behaviour for one tenant: sign-up, password and refresh-token grants, e-mail links,
/// the user's own record, sign-out. Stateless between requests; everything lives in the store.
public struct AuthService: Sendable {
    public let slug: String
    /// `{apiUrl}/auth/v1`: the token issuer and the base of e-mail links.
    public let authURL: String
    public let store: any AuthStore
    public let keyRing: TenantKeyRing
    public let settings: AuthSettings
    public let throttle: LoginThrottle
    public let hasher: PasswordHasher
    /// For OIDC sign-in: the node's relying party and the box that seals flow state.
    public let relyingParty: OIDCRelyingParty?
    public let secretBox: SecretBox?
    public var now: @Sendable () -> Date = { Date() }
    /// Where auth mail goes: the tenant's durable e-mail jobs (retried like any send), or, when
    /// nil, straight to SMTP while the request waits.
    public var outbox: (@Sendable (MailMessage) async throws -> Void)?

    static let minPasswordLength = 6
    static let confirmationLifetime: TimeInterval = 24 * 3600
    static let recoveryLifetime: TimeInterval = 3600
    static let authCodeLifetime: TimeInterval = 600

    public init(
        slug: String, authURL: String, store: any AuthStore, keyRing: TenantKeyRing, settings: AuthSettings, throttle: LoginThrottle,
        hasher: PasswordHasher = PasswordHasher(), relyingParty: OIDCRelyingParty? = nil, secretBox: SecretBox? = nil
    ) {
        self.relyingParty = relyingParty
        self.secretBox = secretBox
        self.slug = slug
        self.authURL = authURL
        self.store = store
        self.keyRing = keyRing
        self.settings = settings
        self.throttle = throttle
        self.hasher = hasher
    }

    /// The tenant's settings as stored, secrets opened; defaults when never set.
    public static func settings(slug: String, store: any AuthStore, secretBox: SecretBox) async throws -> AuthSettings {
        guard let stored = try await store.authSettings(slug) else { return AuthSettings() }
        let document = try StoreCoding.decodeObject(stored.document)
        let secrets = try StoreCoding.decodeObject(
            String(decoding: try secretBox.open(stored.sealedSecrets, context: AuthSettings.sealingContext(slug: slug)), as: UTF8.self))
        return AuthSettings.restore(document: document, secrets: secrets)
    }

    // MARK: - Sign-up and sign-in

    public enum SignUpResult: Sendable {
        /// Confirmed at once (autoconfirm): signed in.
        case session(JSONObject)
        /// A confirmation e-mail is on its way.
        case unconfirmed(JSONObject)
    }

    public func signUp(
        email rawEmail: String, password: String, data: JSONObject, pkce: PKCEChallenge?, redirectTo: String?
    ) async throws -> SignUpResult {
        let email = try Self.normalizedEmail(rawEmail)
        try Self.checkPassword(password)
        guard settings.autoconfirm || settings.smtp != nil else { throw AuthFailure.mailUnavailable }
        let at = now()
        var profile = AuthUser.Profile(
            updatedAt: at, appMetadata: ["provider": "email", "providers": ["email"]], userMetadata: data)
        profile.passwordHash = try await hasher.hash(password)
        if settings.autoconfirm {
            profile.emailConfirmedAt = at
        } else {
            profile.confirmationSentAt = at
        }
        let user = AuthUser(tenant: slug, id: UUID().uuidString.lowercased(), email: email, createdAt: at, profile: profile)
        let link = settings.autoconfirm ? nil : OneTimeLink(kind: .confirmation, user: user, pkce: pkce, at: at)
        do {
            try await store.createUser(user, token: link?.token)
        } catch ControlPlaneError.duplicate {
            throw AuthFailure.userExists
        }
        guard let link else {
            return .session(try await issueSession(for: user, method: "password"))
        }
        do {
            try await mail(
                to: email, subject: "Confirm your sign-up",
                text: "Follow this link to confirm your e-mail address:\n\n\(link.url(authURL: authURL, type: "signup", redirectTo: redirect(redirectTo)))\n\nOr verify with token_hash \(link.secret)\n")
        } catch {
            // Nobody could ever confirm this account: take it back rather than leave it half made.
            try? await store.deleteUser(tenant: slug, id: user.id)
            throw error
        }
        return .unconfirmed(try await userJSON(user))
    }

    public func signIn(email rawEmail: String, password: String, clientAddress: String) async throws -> JSONObject {
        guard let email = try? Self.normalizedEmail(rawEmail) else { throw AuthFailure.invalidCredentials }
        if let wait = throttle.attempt(tenant: slug, email: email, address: clientAddress) { throw AuthFailure.throttled(retryAfter: wait) }
        let user = try await store.user(tenant: slug, email: email)
        // Checked even without a user, so that timing does not tell which e-mails are registered.
        let valid = try await hasher.verify(password, against: user?.profile.passwordHash)
        guard valid, let user else { throw AuthFailure.invalidCredentials }
        guard user.profile.emailConfirmedAt != nil else { throw AuthFailure.emailNotConfirmed }
        return try await issueSession(for: user, method: "password")
    }

    public func refresh(_ refreshToken: String) async throws -> JSONObject {
        let next = Self.newSecret()
        let at = now()
        let graceSince = at.addingTimeInterval(-TimeInterval(settings.refreshTokenReuseInterval))
        switch try await store.rotateRefreshToken(
            tenant: slug, hash: Self.digest(refreshToken), nextHash: Self.digest(next), at: at, graceSince: graceSince)
        {
        case .invalid: throw AuthFailure.refreshTokenNotFound
        case .reused: throw AuthFailure.refreshTokenReused
        case .rotated(let userID, let sessionID):
            guard let user = try await store.user(tenant: slug, id: userID) else { throw AuthFailure.refreshTokenNotFound }
            return try await sessionJSON(user: user, sessionID: sessionID, refreshToken: next, method: "token_refresh", at: at)
        }
    }

    /// `grant_type=pkce`: an authorization code from an e-mail link or an OIDC callback, with the
    /// verifier whose challenge was sent when the flow began.
    public func exchange(authCode: String, verifier: String) async throws -> JSONObject {
        guard let token = try await store.takeToken(
            tenant: slug, hash: Self.digest(authCode), kind: .authCode, notBefore: now().addingTimeInterval(-Self.authCodeLifetime))
        else { throw AuthFailure.flowStateNotFound }
        let challenge = PKCEChallenge(value: token.data["challenge"]?.stringValue ?? "", method: token.data["method"]?.stringValue ?? "")
        guard challenge.matches(verifier: verifier) else { throw AuthFailure.badCodeVerifier }
        guard let user = try await store.user(tenant: slug, id: token.userID) else { throw AuthFailure.userNotFound }
        return try await issueSession(for: user, method: token.data["method_used"]?.stringValue ?? "pkce")
    }

    // MARK: - E-mail links

    public enum VerifyKind: String, Sendable {
        case signup, email, recovery, emailChange = "email_change"

        var tokenKind: AuthToken.Kind {
            switch self {
            case .signup, .email: .confirmation
            case .recovery: .recovery
            case .emailChange: .emailChange
            }
        }
        var lifetime: TimeInterval { self == .recovery ? AuthService.recoveryLifetime : AuthService.confirmationLifetime }
    }

    public enum Verified: Sendable {
        case session(JSONObject)
        /// The flow began with a PKCE challenge: the caller gets a code to exchange, not tokens.
        case authCode(String)
    }

    /// `issueCode`: a link followed in a browser answers a PKCE flow with a code; a token posted
    /// by the client itself is answered with the session.
    public func verify(kind: VerifyKind, tokenHash: String, issueCode: Bool) async throws -> Verified {
        guard let token = try await store.takeToken(
            tenant: slug, hash: Self.digest(tokenHash), kind: kind.tokenKind, notBefore: now().addingTimeInterval(-kind.lifetime))
        else { throw AuthFailure.otpExpired }
        guard var user = try await store.user(tenant: slug, id: token.userID) else { throw AuthFailure.otpExpired }
        let at = now()
        // Following any link proves the address it was sent to.
        if user.profile.emailConfirmedAt == nil { user.profile.emailConfirmedAt = at }
        switch kind {
        case .signup, .email, .recovery:
            if user.profile.emailVerifiedAt == nil { user.profile.emailVerifiedAt = at }
        case .emailChange:
            guard let newEmail = token.data["email"]?.stringValue else { throw AuthFailure.otpExpired }
            user.email = newEmail
            user.profile.newEmail = nil
            user.profile.emailVerifiedAt = at
        }
        try await save(&user, at: at)
        let method = kind == .recovery ? "recovery" : "otp"
        if issueCode, let challenge = token.data["challenge"]?.stringValue, let challengeMethod = token.data["method"]?.stringValue {
            let code = Self.newSecret()
            try await store.putToken(AuthToken(
                tenant: slug, hash: Self.digest(code), kind: .authCode, userID: user.id,
                data: ["challenge": .string(challenge), "method": .string(challengeMethod), "method_used": .string(method)], createdAt: at))
            return .authCode(code)
        }
        return .session(try await issueSession(for: user, method: method))
    }

    /// Always succeeds for a well-formed address, whether or not it is registered, so that the
    /// endpoint does not reveal who has an account.
    public func recover(email rawEmail: String, pkce: PKCEChallenge?, redirectTo: String?, clientAddress: String) async throws {
        let email = try Self.normalizedEmail(rawEmail)
        guard settings.smtp != nil else {
            throw AuthFailure(422, "email_provider_disabled", "This tenant cannot send e-mail, so password recovery is unavailable")
        }
        if let wait = throttle.attempt(tenant: slug, email: email, address: clientAddress) { throw AuthFailure.throttled(retryAfter: wait) }
        guard let user = try await store.user(tenant: slug, email: email) else { return }
        let at = now()
        let link = OneTimeLink(kind: .recovery, user: user, pkce: pkce, at: at)
        try await store.putToken(link.token)
        try await store.mergeUserProfile(tenant: slug, id: user.id, fields: ["recoverySentAt": AuthUser.Profile.time(at)])
        let text = "Follow this link to choose a new password:\n\n\(link.url(authURL: authURL, type: "recovery", redirectTo: redirect(redirectTo)))\n\nOr verify with token_hash \(link.secret)\nThe link is valid for one hour.\n"
        // Sent after answering: waiting for SMTP (or reporting its failure) only for registered
        // addresses would tell who has an account.
        let service = self
        Task {
            do {
                try await service.mail(to: email, subject: "Reset your password", text: text)
            } catch {
                Logger(label: "minibaas.auth").warning(
                    "recovery mail not sent", metadata: ["tenant": .string(service.slug), "error": .string("\(error)")])
            }
        }
    }

    // MARK: - The signed-in user

    /// The user a bearer token names, if its session is still alive.
    public func currentUser(claims: JSONObject) async throws -> AuthUser {
        guard claims["role"]?.stringValue == "authenticated", let id = claims["sub"]?.stringValue else { throw AuthFailure.noAuthorization }
        if let session = claims["session_id"]?.stringValue, !(try await store.sessionIsActive(tenant: slug, id: session)) {
            throw AuthFailure.sessionNotFound
        }
        guard let user = try await store.user(tenant: slug, id: id) else { throw AuthFailure.userNotFound }
        return user
    }

    public func update(
        claims: JSONObject, email rawEmail: String?, password: String?, data: JSONObject?, redirectTo: String?
    ) async throws -> JSONObject {
        var user = try await currentUser(claims: claims)
        let at = now()
        if let password {
            try Self.checkPassword(password)
            user.profile.passwordHash = try await hasher.hash(password)
        }
        if let data {
            // GoTrue merges top-level keys; a null removes one.
            for (key, value) in data { user.profile.userMetadata[key] = value.nonNull }
        }
        var pendingLink: OneTimeLink?
        if let rawEmail {
            let email = try Self.normalizedEmail(rawEmail)
            if email != user.email {
                if try await store.user(tenant: slug, email: email) != nil { throw AuthFailure.emailExists }
                if settings.autoconfirm {
                    user.email = email
                } else {
                    guard settings.smtp != nil else { throw AuthFailure.mailUnavailable }
                    var link = OneTimeLink(kind: .emailChange, user: user, pkce: nil, at: at)
                    link.token.data["email"] = .string(email)
                    pendingLink = link
                    user.profile.newEmail = email
                }
            }
        }
        try await save(&user, at: at)
        if password != nil {
            // A new password ends every other session: whoever knew the old one is signed out.
            let current = claims["session_id"]?.stringValue
            try await store.revokeSessions(tenant: slug, userID: user.id, scope: current.map(SessionScope.allBut) ?? .all, at: at)
        }
        if let pendingLink, let newEmail = user.profile.newEmail {
            try await store.putToken(pendingLink.token)
            try await mail(
                to: newEmail, subject: "Confirm your new e-mail address",
                text: "Follow this link to confirm \(newEmail) as your new address:\n\n\(pendingLink.url(authURL: authURL, type: "email_change", redirectTo: redirect(redirectTo)))\n\nOr verify with token_hash \(pendingLink.secret)\n")
        }
        return try await userJSON(user)
    }

    public enum SignOutScope: String, Sendable { case global, local, others }

    public func signOut(claims: JSONObject, scope: SignOutScope) async throws {
        guard claims["role"]?.stringValue == "authenticated", let userID = claims["sub"]?.stringValue else { throw AuthFailure.noAuthorization }
        let session = claims["session_id"]?.stringValue
        let revoke: SessionScope
        switch (scope, session) {
        case (.global, _), (.local, nil): revoke = .all
        case (.local, let id?): revoke = .only(id)
        case (.others, let id?): revoke = .allBut(id)
        case (.others, nil): return
        }
        try await store.revokeSessions(tenant: slug, userID: userID, scope: revoke, at: now())
    }

    /// `GET /settings`, as GoTrue answers it.
    public func publicSettings() -> JSONObject {
        var external: JSONObject = ["email": true, "phone": false]
        for provider in settings.providers { external[provider.name] = true }
        return [
            "external": .object(external), "disable_signup": false, "mailer_autoconfirm": .bool(settings.autoconfirm),
            "phone_autoconfirm": false, "sms_provider": "", "saml_enabled": false,
        ]
    }

    // MARK: - Sessions

    /// Starts a session: a new session row with its first refresh token, and an access token.
    public func issueSession(for user: AuthUser, method: String) async throws -> JSONObject {
        let at = now()
        var user = user
        user.profile.lastSignInAt = at
        try await store.mergeUserProfile(tenant: slug, id: user.id, fields: ["lastSignInAt": AuthUser.Profile.time(at)])
        let sessionID = UUID().uuidString.lowercased()
        let refreshToken = Self.newSecret()
        try await store.createSession(
            tenant: slug, id: sessionID, userID: user.id,
            refresh: AuthToken(tenant: slug, hash: Self.digest(refreshToken), kind: .refresh, userID: user.id, sessionID: sessionID, createdAt: at))
        return try await sessionJSON(user: user, sessionID: sessionID, refreshToken: refreshToken, method: method, at: at)
    }

    private func sessionJSON(user: AuthUser, sessionID: String, refreshToken: String, method: String, at: Date) async throws -> JSONObject {
        let issued = Int64(at.timeIntervalSince1970)
        let expires = issued + Int64(settings.accessTokenTTL)
        let claims: JSONObject = [
            "iss": .string(authURL), "ref": .string(slug), "sub": .string(user.id), "aud": "authenticated", "exp": .integer(expires),
            "iat": .integer(issued), "email": .string(user.email), "phone": "", "app_metadata": .object(user.profile.appMetadata),
            "user_metadata": .object(user.profile.userMetadata), "role": "authenticated", "aal": "aal1",
            "amr": [["method": .string(method), "timestamp": .integer(issued)]], "session_id": .string(sessionID), "is_anonymous": false,
        ]
        return [
            "access_token": .string(keyRing.sign(claims)), "token_type": "bearer", "expires_in": .integer(Int64(settings.accessTokenTTL)),
            "expires_at": .integer(expires), "refresh_token": .string(refreshToken), "user": .object(try await userJSON(user)),
        ]
    }

    public func userJSON(_ user: AuthUser) async throws -> JSONObject {
        let time: (Date?) -> JSONValue = { date in date.map { .string(Self.timestamp($0)) } ?? .null }
        var identities: [JSONValue] = []
        if user.profile.passwordHash != nil {
            identities.append([
                "id": .string(user.id), "identity_id": .string(user.id), "user_id": .string(user.id), "provider": "email",
                "identity_data": ["sub": .string(user.id), "email": .string(user.email), "email_verified": .bool(user.profile.emailConfirmedAt != nil)],
                "created_at": time(user.createdAt), "updated_at": time(user.profile.updatedAt), "last_sign_in_at": time(user.profile.lastSignInAt),
            ])
        }
        for identity in try await store.identities(tenant: slug, userID: user.id) {
            identities.append([
                "id": .string(identity.subject), "identity_id": .string(Self.digest("\(identity.provider)|\(identity.subject)")),
                "user_id": .string(user.id), "provider": .string(identity.provider), "identity_data": .object(identity.data),
                "created_at": time(identity.createdAt), "updated_at": time(identity.createdAt), "last_sign_in_at": time(user.profile.lastSignInAt),
            ])
        }
        return [
            "id": .string(user.id), "aud": "authenticated", "role": "authenticated", "email": .string(user.email), "phone": "",
            "email_confirmed_at": time(user.profile.emailConfirmedAt), "confirmed_at": time(user.profile.emailConfirmedAt),
            "confirmation_sent_at": time(user.profile.confirmationSentAt), "recovery_sent_at": time(user.profile.recoverySentAt),
            "new_email": user.profile.newEmail.map(JSONValue.string) ?? .null, "last_sign_in_at": time(user.profile.lastSignInAt),
            "app_metadata": .object(user.profile.appMetadata), "user_metadata": .object(user.profile.userMetadata),
            "identities": .array(identities), "created_at": time(user.createdAt), "updated_at": time(user.profile.updatedAt),
            "is_anonymous": false,
        ]
    }

    // MARK: - Helpers

    /// Writes a changed user; an e-mail another user holds is GoTrue's `email_exists`.
    private func save(_ user: inout AuthUser, at: Date) async throws {
        user.profile.updatedAt = at
        do {
            _ = try await store.updateUser(user)
        } catch ControlPlaneError.duplicate {
            throw AuthFailure.emailExists
        }
    }

    /// Where an e-mail link lands: the requested address when it is on the tenant's site, else the site.
    /// Anything else would make our e-mails an open redirect.
    public func redirect(_ requested: String?) -> String {
        let site = settings.siteURL ?? authURL
        guard let requested, let wanted = URLComponents(string: requested), let allowed = URLComponents(string: site),
            wanted.scheme == allowed.scheme, wanted.host == allowed.host, wanted.port == allowed.port
        else { return site }
        return requested
    }

    private func mail(to: String, subject: String, text: String) async throws {
        guard let smtp = settings.smtp else { throw AuthFailure.mailUnavailable }
        do {
            if let outbox {
                try await outbox(MailMessage(to: to, subject: subject, text: text))
                return
            }
            try await SMTPMailer(settings: smtp).send(MailMessage(to: to, subject: subject, text: text))
        } catch {
            throw AuthFailure.mailFailed("\(error)")
        }
    }

    static func normalizedEmail(_ raw: String) throws -> String {
        let email = raw.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."),
            !parts[1].hasSuffix("."), SMTPMailer.isSafeAddress(email)
        else { throw AuthFailure.validation("Unable to validate email address: invalid format") }
        return email
    }

    static func checkPassword(_ password: String) throws {
        if password.count < minPasswordLength {
            var failure = AuthFailure(422, "weak_password", "Password should be at least \(minPasswordLength) characters.")
            failure.weakPasswordReasons = ["length"]
            throw failure
        }
        if password.utf8.count > PasswordHasher.maxPasswordBytes || password.utf8.contains(0) {
            throw AuthFailure.validation("Password cannot be longer than \(PasswordHasher.maxPasswordBytes) bytes or contain NUL")
        }
    }

    /// 256 random bits, URL-safe.
    static func newSecret() -> String {
        Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    static func digest(_ secret: String) -> String {
        Hex.encode(SHA256.hash(data: Array(secret.utf8)))
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// A PKCE challenge (RFC 7636) sent when a flow began; `s256` or `plain`.
public struct PKCEChallenge: Sendable, Equatable {
    public var value: String
    public var method: String

    public init(value: String, method: String) {
        self.value = value
        self.method = method.lowercased()
    }

    func matches(verifier: String) -> Bool {
        guard !value.isEmpty, (43...128).contains(verifier.utf8.count) else { return false }
        let expected: String
        switch method {
        case "s256": expected = Base64URL.encode(Array(SHA256.hash(data: Array(verifier.utf8))))
        case "plain": expected = verifier
        default: return false
        }
        return PasswordHasher.constantTimeEquals(Array(expected.utf8), Array(value.utf8))
    }
}

/// A link sent by e-mail: the secret goes into the mail, its digest into the store.
struct OneTimeLink {
    let secret: String
    var token: AuthToken

    init(kind: AuthToken.Kind, user: AuthUser, pkce: PKCEChallenge?, at: Date) {
        secret = AuthService.newSecret()
        var data = JSONObject()
        if let pkce {
            data["challenge"] = .string(pkce.value)
            data["method"] = .string(pkce.method)
        }
        token = AuthToken(tenant: user.tenant, hash: AuthService.digest(secret), kind: kind, userID: user.id, data: data, createdAt: at)
    }

    func url(authURL: String, type: String, redirectTo: String) -> String {
        var components = URLComponents(string: authURL + "/verify")!
        components.queryItems = [
            URLQueryItem(name: "token", value: secret), URLQueryItem(name: "type", value: type),
            URLQueryItem(name: "redirect_to", value: redirectTo),
        ]
        return components.string ?? authURL
    }
}
