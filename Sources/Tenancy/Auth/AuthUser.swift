import Foundation
import Runtime

/// One end user of one tenant. Users never cross tenants: every lookup is keyed by the tenant.
/// Besides the columns the store indexes (`id`, `email`), a user is a JSON profile so that new
/// GoTrue fields do not need a migration.
public struct AuthUser: Sendable, Equatable {
    public var tenant: String
    public var id: String
    /// Lower-cased; unique per tenant.
    public var email: String
    public var createdAt: Date
    public var profile: Profile

    public struct Profile: Sendable, Equatable {
        public var passwordHash: String?
        public var emailConfirmedAt: Date?
        /// When the address was proven (a link followed, or a provider that verified it); unlike
        /// `emailConfirmedAt`, never set by autoconfirm. Only a proven account is linked to an
        /// OIDC identity with the same address.
        public var emailVerifiedAt: Date?
        public var confirmationSentAt: Date?
        public var recoverySentAt: Date?
        public var lastSignInAt: Date?
        public var updatedAt: Date
        public var newEmail: String?
        public var appMetadata: JSONObject
        public var userMetadata: JSONObject

        public init(updatedAt: Date, appMetadata: JSONObject, userMetadata: JSONObject) {
            self.updatedAt = updatedAt
            self.appMetadata = appMetadata
            self.userMetadata = userMetadata
        }
    }

    public init(tenant: String, id: String, email: String, createdAt: Date, profile: Profile) {
        self.tenant = tenant
        self.id = id
        self.email = email
        self.createdAt = createdAt
        self.profile = profile
    }
}

extension AuthUser.Profile {
    static func time(_ date: Date?) -> JSONValue {
        date.map { .integer(Int64(($0.timeIntervalSince1970 * 1000).rounded())) } ?? .null
    }

    private static func date(_ value: JSONValue?) -> Date? {
        value?.doubleValue.map { Date(timeIntervalSince1970: $0 / 1000) }
    }

    /// The stored form; times as epoch milliseconds.
    public func encoded() -> String {
        var object = JSONObject()
        object["passwordHash"] = passwordHash.map(JSONValue.string) ?? .null
        object["emailConfirmedAt"] = Self.time(emailConfirmedAt)
        object["emailVerifiedAt"] = Self.time(emailVerifiedAt)
        object["confirmationSentAt"] = Self.time(confirmationSentAt)
        object["recoverySentAt"] = Self.time(recoverySentAt)
        object["lastSignInAt"] = Self.time(lastSignInAt)
        object["updatedAt"] = Self.time(updatedAt)
        object["newEmail"] = newEmail.map(JSONValue.string) ?? .null
        object["appMetadata"] = .object(appMetadata)
        object["userMetadata"] = .object(userMetadata)
        return String(decoding: JSONValue.object(object).encoded(), as: UTF8.self)
    }

    public static func decode(_ text: String) throws -> AuthUser.Profile {
        guard let object = try? JSONValue.parse(Array(text.utf8)).objectValue else {
            throw ControlPlaneError.corrupt("an auth user's profile is not a JSON object")
        }
        var profile = AuthUser.Profile(
            updatedAt: date(object["updatedAt"]) ?? Date(timeIntervalSince1970: 0),
            appMetadata: object["appMetadata"]?.objectValue ?? [:], userMetadata: object["userMetadata"]?.objectValue ?? [:])
        profile.passwordHash = object["passwordHash"]?.stringValue
        profile.emailConfirmedAt = date(object["emailConfirmedAt"])
        profile.emailVerifiedAt = date(object["emailVerifiedAt"])
        profile.confirmationSentAt = date(object["confirmationSentAt"])
        profile.recoverySentAt = date(object["recoverySentAt"])
        profile.lastSignInAt = date(object["lastSignInAt"])
        profile.newEmail = object["newEmail"]?.stringValue
        return profile
    }
}

/// A secret handed to a user once (refresh token, e-mail link, authorization code). Only its
/// SHA-256 is stored, so a leaked control-plane copy gives nobody a session.
public struct AuthToken: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case refresh, confirmation, recovery, emailChange = "email_change", authCode = "auth_code"
    }

    public var tenant: String
    public var hash: String
    public var kind: Kind
    public var userID: String
    /// Refresh tokens belong to a session; reuse of a spent one revokes the session.
    public var sessionID: String?
    /// Kind-specific data (a PKCE challenge, the new address of an e-mail change …).
    public var data: JSONObject
    public var createdAt: Date

    public init(tenant: String, hash: String, kind: Kind, userID: String, sessionID: String? = nil, data: JSONObject = [:], createdAt: Date) {
        self.tenant = tenant
        self.hash = hash
        self.kind = kind
        self.userID = userID
        self.sessionID = sessionID
        self.data = data
        self.createdAt = createdAt
    }
}

/// What presenting a refresh token did.
public enum RefreshRotation: Sendable, Equatable {
    /// The token was current: it is now spent and `next` replaces it.
    case rotated(userID: String, sessionID: String)
    /// The token had been spent already: the whole session was revoked.
    case reused
    /// No such token, or its session is gone.
    case invalid
}

/// The end-user auth part of the control plane.
public protocol AuthStore: Sendable {
    /// The tenant's auth settings (public JSON) and their sealed secrets; nil when never set.
    func authSettings(_ slug: String) async throws -> (document: String, sealedSecrets: [UInt8])?
    /// Returns false when there is no such tenant.
    func setAuthSettings(_ slug: String, document: String, sealedSecrets: [UInt8], audit: AuditEntry) async throws -> Bool

    /// Throws `ControlPlaneError.duplicate` when the e-mail is taken in this tenant. The token, if
    /// any, is written in the same transaction.
    func createUser(_ user: AuthUser, token: AuthToken?) async throws
    func user(tenant: String, id: String) async throws -> AuthUser?
    func user(tenant: String, email: String) async throws -> AuthUser?
    /// Writes e-mail and profile; `ControlPlaneError.duplicate` when the new e-mail is taken.
    func updateUser(_ user: AuthUser) async throws -> Bool
    /// Sets a few profile fields in place, leaving the rest as stored: bookkeeping such as the
    /// last sign-in must never write back a profile read before a concurrent password change.
    func mergeUserProfile(tenant: String, id: String, fields: JSONObject) async throws
    func deleteUser(tenant: String, id: String) async throws
    /// One page of a tenant's users, oldest first, and how many there are in all.
    func users(tenant: String, limit: Int, offset: Int) async throws -> (users: [AuthUser], total: Int)

    /// Stores a one-time token, replacing unused ones of the same kind for the same user.
    func putToken(_ token: AuthToken) async throws
    /// Takes a one-time token: returns it and deletes it, or nil when unknown or older than `notBefore`.
    func takeToken(tenant: String, hash: String, kind: AuthToken.Kind, notBefore: Date) async throws -> AuthToken?

    /// Starts a session with its first refresh token.
    func createSession(tenant: String, id: String, userID: String, refresh: AuthToken) async throws
    /// Spends a refresh token and stores `nextHash` as its successor, atomically. A token spent
    /// at or after `graceSince` may be spent again (a client retrying a refresh whose answer it
    /// lost); one spent before revokes the session.
    func rotateRefreshToken(tenant: String, hash: String, nextHash: String, at: Date, graceSince: Date) async throws -> RefreshRotation
    /// Whether a session exists and is not revoked.
    func sessionIsActive(tenant: String, id: String) async throws -> Bool
    /// Revokes one session, all the user's sessions, or all but one.
    func revokeSessions(tenant: String, userID: String, scope: SessionScope, at: Date) async throws

    /// The user linked to an external identity, if any.
    func identityUser(tenant: String, provider: String, subject: String) async throws -> String?
    func linkIdentity(tenant: String, provider: String, subject: String, userID: String, data: JSONObject, at: Date) async throws
    /// (provider, subject, data, createdAt) of the user's identities.
    func identities(tenant: String, userID: String) async throws -> [AuthIdentity]
}

public enum SessionScope: Sendable, Equatable {
    case only(String), all, allBut(String)
}

public struct AuthIdentity: Sendable, Equatable {
    public var provider: String
    public var subject: String
    public var data: JSONObject
    public var createdAt: Date
    public init(provider: String, subject: String, data: JSONObject, createdAt: Date) {
        self.provider = provider
        self.subject = subject
        self.data = data
        self.createdAt = createdAt
    }
}
