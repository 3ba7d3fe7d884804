import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// End-user auth in the cluster's control plane. Each method is one transaction; refresh-token
/// rotation locks the token row so that two nodes presenting the same token cannot both win.
extension PostgresControlPlaneStore {
    public func authSettings(_ slug: String) async throws -> (document: String, sealedSecrets: [UInt8])? {
        let rows = try await client.query(
            "SELECT document::text, sealed_secrets FROM minibaas.auth_settings WHERE tenant = \(slug)", logger: logger)
        for try await (document, sealed) in rows.decode((String, ByteBuffer).self) { return (document, Array(buffer: sealed)) }
        return nil
    }

    public func setAuthSettings(_ slug: String, document: String, sealedSecrets: [UInt8], audit: AuditEntry) async throws -> Bool {
        do {
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    """
                    INSERT INTO minibaas.auth_settings (tenant, document, sealed_secrets)
                    VALUES (\(slug), \(document)::jsonb, \(ByteBuffer(bytes: sealedSecrets)))
                    ON CONFLICT (tenant) DO UPDATE SET document = excluded.document, sealed_secrets = excluded.sealed_secrets,
                      updated_at = now()
                    """, logger: logger)
                try await Self.insertAudit(audit, into: db, logger: logger)
            }
            return true
        } catch where Self.sqlState(of: error) == "23503" {
            return false
        }
    }

    // MARK: Users

    public func createUser(_ user: AuthUser, token: AuthToken?) async throws {
        do {
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    """
                    INSERT INTO minibaas.auth_users (tenant, id, email, profile, created_at)
                    VALUES (\(user.tenant), \(user.id), \(user.email), \(user.profile.encoded())::jsonb, \(user.createdAt))
                    """, logger: logger)
                if let token { try await Self.insertToken(token, into: db, logger: logger) }
            }
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("user \(user.email)")
        }
    }

    public func user(tenant: String, id: String) async throws -> AuthUser? {
        try await users("SELECT tenant, id, email, profile::text, created_at FROM minibaas.auth_users WHERE tenant = \(tenant) AND id = \(id)")
    }

    public func users(tenant: String, limit: Int, offset: Int) async throws -> (users: [AuthUser], total: Int) {
        // One statement, one snapshot: the page and the total agree.
        let rows = try await client.query(
            """
            SELECT tenant, id, email, profile::text, created_at, count(*) OVER () FROM minibaas.auth_users
            WHERE tenant = \(tenant) ORDER BY created_at, id LIMIT \(limit) OFFSET \(offset)
            """, logger: logger)
        var users: [AuthUser] = []
        var total = 0
        for try await (tenant, id, email, profile, createdAt, count) in rows.decode((String, String, String, String, Date, Int).self) {
            users.append(AuthUser(tenant: tenant, id: id, email: email, createdAt: createdAt, profile: try .decode(profile)))
            total = count
        }
        if users.isEmpty && offset > 0 {
            let counted = try await client.query("SELECT count(*)::int8 FROM minibaas.auth_users WHERE tenant = \(tenant)", logger: logger)
            for try await count in counted.decode(Int.self) { total = count }
        }
        return (users, total)
    }

    public func user(tenant: String, email: String) async throws -> AuthUser? {
        try await users(
            "SELECT tenant, id, email, profile::text, created_at FROM minibaas.auth_users WHERE tenant = \(tenant) AND email = \(email)")
    }

    private func users(_ query: PostgresQuery) async throws -> AuthUser? {
        let rows = try await client.query(query, logger: logger)
        for try await (tenant, id, email, profile, createdAt) in rows.decode((String, String, String, String, Date).self) {
            return AuthUser(tenant: tenant, id: id, email: email, createdAt: createdAt, profile: try .decode(profile))
        }
        return nil
    }

    public func updateUser(_ user: AuthUser) async throws -> Bool {
        do {
            let rows = try await client.query(
                """
                UPDATE minibaas.auth_users SET email = \(user.email), profile = \(user.profile.encoded())::jsonb
                WHERE tenant = \(user.tenant) AND id = \(user.id) RETURNING 1
                """, logger: logger)
            return try await Self.hasRow(rows)
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("user \(user.email)")
        }
    }

    public func mergeUserProfile(tenant: String, id: String, fields: JSONObject) async throws {
        try await client.query(
            """
            UPDATE minibaas.auth_users SET profile = profile || \(StoreCoding.encodeObject(fields))::jsonb
            WHERE tenant = \(tenant) AND id = \(id)
            """, logger: logger)
    }

    public func deleteUser(tenant: String, id: String) async throws {
        try await client.query("DELETE FROM minibaas.auth_users WHERE tenant = \(tenant) AND id = \(id)", logger: logger)
    }

    // MARK: Tokens and sessions

    private static func insertToken(_ token: AuthToken, into db: PostgresConnection, logger: Logger) async throws {
        try await db.query(
            """
            INSERT INTO minibaas.auth_tokens (tenant, hash, kind, user_id, session_id, data, created_at)
            VALUES (\(token.tenant), \(token.hash), \(token.kind.rawValue), \(token.userID), \(token.sessionID),
                    \(StoreCoding.encodeObject(token.data))::jsonb, \(token.createdAt))
            """, logger: logger)
    }

    public func putToken(_ token: AuthToken) async throws {
        try await client.withTransaction(logger: logger) { db in
            try await db.query(
                """
                DELETE FROM minibaas.auth_tokens WHERE tenant = \(token.tenant) AND user_id = \(token.userID) AND kind = \(token.kind.rawValue)
                """, logger: logger)
            try await Self.insertToken(token, into: db, logger: logger)
        }
    }

    public func takeToken(tenant: String, hash: String, kind: AuthToken.Kind, notBefore: Date) async throws -> AuthToken? {
        let rows = try await client.query(
            """
            DELETE FROM minibaas.auth_tokens WHERE tenant = \(tenant) AND hash = \(hash) AND kind = \(kind.rawValue)
            RETURNING user_id, session_id, data::text, created_at
            """, logger: logger)
        for try await (userID, sessionID, data, createdAt) in rows.decode((String, String?, String, Date).self) {
            guard createdAt >= notBefore else { return nil }
            return AuthToken(
                tenant: tenant, hash: hash, kind: kind, userID: userID, sessionID: sessionID,
                data: try StoreCoding.decodeObject(data), createdAt: createdAt)
        }
        return nil
    }

    public func createSession(tenant: String, id: String, userID: String, refresh: AuthToken) async throws {
        try await client.withTransaction(logger: logger) { db in
            try await db.query(
                """
                INSERT INTO minibaas.auth_sessions (tenant, id, user_id, created_at) VALUES (\(tenant), \(id), \(userID), \(refresh.createdAt))
                """, logger: logger)
            try await Self.insertToken(refresh, into: db, logger: logger)
        }
    }

    public func rotateRefreshToken(tenant: String, hash: String, nextHash: String, at: Date, graceSince: Date) async throws -> RefreshRotation {
        try await client.withTransaction(logger: logger) { db in
            let rows = try await db.query(
                """
                SELECT t.user_id, t.session_id, coalesce(t.spent_at < \(graceSince), false), s.revoked_at IS NOT NULL FROM minibaas.auth_tokens t
                JOIN minibaas.auth_sessions s ON s.tenant = t.tenant AND s.id = t.session_id
                WHERE t.tenant = \(tenant) AND t.hash = \(hash) AND t.kind = 'refresh'
                FOR UPDATE
                """, logger: logger)
            var found: (String, String, Bool, Bool)?
            for try await row in rows.decode((String, String, Bool, Bool).self) { found = row }
            guard let (userID, sessionID, spentBeforeGrace, revoked) = found, !revoked else { return .invalid }
            if spentBeforeGrace {
                try await db.query(
                    "UPDATE minibaas.auth_sessions SET revoked_at = \(at) WHERE tenant = \(tenant) AND id = \(sessionID)", logger: logger)
                return .reused
            }
            try await db.query(
                "UPDATE minibaas.auth_tokens SET spent_at = coalesce(spent_at, \(at)) WHERE tenant = \(tenant) AND hash = \(hash)", logger: logger)
            try await Self.insertToken(
                AuthToken(tenant: tenant, hash: nextHash, kind: .refresh, userID: userID, sessionID: sessionID, createdAt: at),
                into: db, logger: logger)
            return .rotated(userID: userID, sessionID: sessionID)
        }
    }

    public func sessionIsActive(tenant: String, id: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "SELECT 1 FROM minibaas.auth_sessions WHERE tenant = \(tenant) AND id = \(id) AND revoked_at IS NULL", logger: logger))
    }

    public func revokeSessions(tenant: String, userID: String, scope: SessionScope, at: Date) async throws {
        let query: PostgresQuery =
            switch scope {
            case .only(let id):
                "UPDATE minibaas.auth_sessions SET revoked_at = \(at) WHERE tenant = \(tenant) AND user_id = \(userID) AND revoked_at IS NULL AND id = \(id)"
            case .all:
                "UPDATE minibaas.auth_sessions SET revoked_at = \(at) WHERE tenant = \(tenant) AND user_id = \(userID) AND revoked_at IS NULL"
            case .allBut(let id):
                "UPDATE minibaas.auth_sessions SET revoked_at = \(at) WHERE tenant = \(tenant) AND user_id = \(userID) AND revoked_at IS NULL AND id <> \(id)"
            }
        try await client.query(query, logger: logger)
    }

    // MARK: Identities

    public func identityUser(tenant: String, provider: String, subject: String) async throws -> String? {
        let rows = try await client.query(
            """
            SELECT user_id FROM minibaas.auth_identities WHERE tenant = \(tenant) AND provider = \(provider) AND subject = \(subject)
            """, logger: logger)
        for try await userID in rows.decode(String.self) { return userID }
        return nil
    }

    public func linkIdentity(tenant: String, provider: String, subject: String, userID: String, data: JSONObject, at: Date) async throws {
        try await client.query(
            """
            INSERT INTO minibaas.auth_identities (tenant, provider, subject, user_id, data, created_at)
            VALUES (\(tenant), \(provider), \(subject), \(userID), \(StoreCoding.encodeObject(data))::jsonb, \(at))
            ON CONFLICT (tenant, provider, subject) DO UPDATE SET data = excluded.data
            """, logger: logger)
    }

    public func identities(tenant: String, userID: String) async throws -> [AuthIdentity] {
        let rows = try await client.query(
            """
            SELECT provider, subject, data::text, created_at FROM minibaas.auth_identities
            WHERE tenant = \(tenant) AND user_id = \(userID) ORDER BY created_at
            """, logger: logger)
        var result: [AuthIdentity] = []
        for try await (provider, subject, data, createdAt) in rows.decode((String, String, String, Date).self) {
            result.append(AuthIdentity(provider: provider, subject: subject, data: try StoreCoding.decodeObject(data), createdAt: createdAt))
        }
        return result
    }
}
