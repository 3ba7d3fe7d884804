import Foundation
import Runtime

/// GoTrue's admin routes (`/auth/v1/admin/users…`), for the tenant's service role only: what
/// `supabase.auth.admin` and the dashboard use to list, create, change and delete end users.
/// Unlike a user's own update, an admin sets an address or a password directly: no e-mail link.
extension AuthService {
    public struct AdminChanges: Sendable {
        public var email: String?
        public var password: String?
        public var emailConfirm: Bool?
        public var userMetadata: JSONObject?
        public var appMetadata: JSONObject?

        public init(email: String? = nil, password: String? = nil, emailConfirm: Bool? = nil, userMetadata: JSONObject? = nil, appMetadata: JSONObject? = nil) {
            self.email = email
            self.password = password
            self.emailConfirm = emailConfirm
            self.userMetadata = userMetadata
            self.appMetadata = appMetadata
        }
    }

    /// GoTrue's bound on `per_page`.
    public static let adminPageLimit = 1000

    public func adminListUsers(page: Int, perPage: Int) async throws -> (users: [JSONObject], total: Int) {
        guard page >= 1, perPage >= 1 else { throw AuthFailure.validation("page and per_page must be positive integers") }
        let size = min(perPage, Self.adminPageLimit)
        let (offset, overflow) = (page - 1).multipliedReportingOverflow(by: size)
        guard !overflow else { throw AuthFailure.validation("page is too large") }
        let listed = try await store.users(tenant: slug, limit: size, offset: offset)
        var users: [JSONObject] = []
        for user in listed.users { users.append(try await userJSON(user)) }
        return (users, listed.total)
    }

    public func adminUser(id: String) async throws -> JSONObject {
        try await userJSON(try await adminExisting(id))
    }

    public func adminCreateUser(_ changes: AdminChanges) async throws -> JSONObject {
        guard let rawEmail = changes.email else {
            throw AuthFailure(400, "validation_failed", "An e-mail address is required; phone users are not supported")
        }
        let email = try Self.normalizedEmail(rawEmail)
        let at = now()
        var profile = AuthUser.Profile(updatedAt: at, appMetadata: ["provider": "email", "providers": ["email"]], userMetadata: [:])
        Self.merge(changes.userMetadata, into: &profile.userMetadata)
        Self.merge(changes.appMetadata, into: &profile.appMetadata)
        if let password = changes.password {
            try Self.checkPassword(password)
            profile.passwordHash = try await hasher.hash(password)
        }
        if changes.emailConfirm == true {
            profile.emailConfirmedAt = at
            profile.emailVerifiedAt = at
        }
        let user = AuthUser(tenant: slug, id: UUID().uuidString.lowercased(), email: email, createdAt: at, profile: profile)
        do {
            try await store.createUser(user, token: nil)
        } catch ControlPlaneError.duplicate {
            throw AuthFailure.emailExists
        }
        return try await userJSON(user)
    }

    public func adminUpdateUser(id: String, _ changes: AdminChanges) async throws -> JSONObject {
        var user = try await adminExisting(id)
        let at = now()
        if let rawEmail = changes.email {
            let email = try Self.normalizedEmail(rawEmail)
            if email != user.email {
                user.email = email
                user.profile.newEmail = nil
            }
        }
        if let password = changes.password {
            try Self.checkPassword(password)
            user.profile.passwordHash = try await hasher.hash(password)
        }
        if let confirm = changes.emailConfirm {
            user.profile.emailConfirmedAt = confirm ? (user.profile.emailConfirmedAt ?? at) : nil
            if confirm { user.profile.emailVerifiedAt = user.profile.emailVerifiedAt ?? at }
        }
        Self.merge(changes.userMetadata, into: &user.profile.userMetadata)
        Self.merge(changes.appMetadata, into: &user.profile.appMetadata)
        user.profile.updatedAt = at
        do {
            guard try await store.updateUser(user) else { throw AuthFailure.userNotFound }
        } catch ControlPlaneError.duplicate {
            throw AuthFailure.emailExists
        }
        if changes.password != nil {
            // As for a user's own change: whoever knew the old password is signed out.
            try await store.revokeSessions(tenant: slug, userID: user.id, scope: .all, at: at)
        }
        return try await userJSON(user)
    }

    public func adminDeleteUser(id: String) async throws {
        let user = try await adminExisting(id)
        try await store.deleteUser(tenant: slug, id: user.id)
    }

    private func adminExisting(_ id: String) async throws -> AuthUser {
        // GoTrue answers a malformed id as it answers an unknown one.
        guard UUID(uuidString: id) != nil, let user = try await store.user(tenant: slug, id: id.lowercased()) else {
            throw AuthFailure.userNotFound
        }
        return user
    }

    /// GoTrue merges metadata by top-level key; a null removes the key.
    private static func merge(_ changes: JSONObject?, into metadata: inout JSONObject) {
        for (key, value) in changes ?? [:] { metadata[key] = value.nonNull }
    }
}
