import Foundation
import NIOCore
import Runtime
import SQLiteNIO

/// End-user auth in the embedded control plane. Each method is one transaction.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }
    private static func date(_ row: SQLiteResultRow, _ column: String) -> Date? {
        row.column(column)?.integer.map { StoreCoding.date(milliseconds: Int64($0)) }
    }

    public func authSettings(_ slug: String) async throws -> (document: String, sealedSecrets: [UInt8])? {
        guard let row = try await read("SELECT document, sealed_secrets FROM auth_settings WHERE tenant = ?", [.text(slug)]).first,
            let document = row.column("document")?.string, let sealed = row.column("sealed_secrets")?.blob
        else { return nil }
        return (document, Array(buffer: sealed))
    }

    public func setAuthSettings(_ slug: String, document: String, sealedSecrets: [UInt8], audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            guard !(try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(slug)])).isEmpty else { return false }
            _ = try db.rows(
                """
                INSERT INTO auth_settings (tenant, document, sealed_secrets, updated_at_ms) VALUES (?, ?, ?, ?)
                ON CONFLICT (tenant) DO UPDATE SET document = excluded.document, sealed_secrets = excluded.sealed_secrets,
                  updated_at_ms = excluded.updated_at_ms
                """,
                [.text(slug), .text(document), .blob(ByteBuffer(bytes: sealedSecrets)), Self.ms(Date())])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    // MARK: Users

    public func createUser(_ user: AuthUser, token: AuthToken?) async throws {
        try await transaction { db in
            let taken = try db.rows("SELECT 1 FROM auth_users WHERE tenant = ? AND email = ?", [.text(user.tenant), .text(user.email)])
            guard taken.isEmpty else { throw ControlPlaneError.duplicate("user \(user.email)") }
            _ = try db.rows(
                "INSERT INTO auth_users (tenant, id, email, profile, created_at_ms) VALUES (?, ?, ?, ?, ?)",
                [.text(user.tenant), .text(user.id), .text(user.email), .text(user.profile.encoded()), Self.ms(user.createdAt)])
            if let token { try Self.insertToken(token, into: db) }
        }
    }

    public func user(tenant: String, id: String) async throws -> AuthUser? {
        try await read("SELECT * FROM auth_users WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)]).first.map(Self.user(from:))
    }

    public func users(tenant: String, limit: Int, offset: Int) async throws -> (users: [AuthUser], total: Int) {
        let total = try await read("SELECT count(*) AS n FROM auth_users WHERE tenant = ?", [.text(tenant)]).first?.column("n")?.integer ?? 0
        let rows = try await read(
            "SELECT * FROM auth_users WHERE tenant = ? ORDER BY created_at_ms, id LIMIT ? OFFSET ?", [.text(tenant), .integer(limit), .integer(offset)])
        return (try rows.map(Self.user(from:)), total)
    }

    public func user(tenant: String, email: String) async throws -> AuthUser? {
        try await read("SELECT * FROM auth_users WHERE tenant = ? AND email = ?", [.text(tenant), .text(email)]).first.map(Self.user(from:))
    }

    private static func user(from row: SQLiteResultRow) throws -> AuthUser {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let email = row.column("email")?.string,
            let profile = row.column("profile")?.string, let createdAt = date(row, "created_at_ms")
        else { throw ControlPlaneError.corrupt("auth user row") }
        return AuthUser(tenant: tenant, id: id, email: email, createdAt: createdAt, profile: try .decode(profile))
    }

    public func updateUser(_ user: AuthUser) async throws -> Bool {
        try await transaction { db in
            let taken = try db.rows(
                "SELECT 1 FROM auth_users WHERE tenant = ? AND email = ? AND id <> ?", [.text(user.tenant), .text(user.email), .text(user.id)])
            guard taken.isEmpty else { throw ControlPlaneError.duplicate("user \(user.email)") }
            let rows = try db.rows(
                "UPDATE auth_users SET email = ?, profile = ? WHERE tenant = ? AND id = ? RETURNING 1",
                [.text(user.email), .text(user.profile.encoded()), .text(user.tenant), .text(user.id)])
            return !rows.isEmpty
        }
    }

    public func mergeUserProfile(tenant: String, id: String, fields: JSONObject) async throws {
        try await transaction { db in
            _ = try db.rows(
                "UPDATE auth_users SET profile = json_patch(profile, ?) WHERE tenant = ? AND id = ?",
                [.text(StoreCoding.encodeObject(fields)), .text(tenant), .text(id)])
        }
    }

    public func deleteUser(tenant: String, id: String) async throws {
        try await transaction { db in
            for table in ["auth_identities", "auth_tokens", "auth_sessions"] {
                _ = try db.rows("DELETE FROM \(table) WHERE tenant = ? AND user_id = ?", [.text(tenant), .text(id)])
            }
            _ = try db.rows("DELETE FROM auth_users WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])
        }
    }

    // MARK: Tokens and sessions

    private static func insertToken(_ token: AuthToken, into db: SQLiteSession) throws {
        _ = try db.rows(
            "INSERT INTO auth_tokens (tenant, hash, kind, user_id, session_id, data, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(token.tenant), .text(token.hash), .text(token.kind.rawValue), .text(token.userID),
             token.sessionID.map(SQLiteData.text) ?? .null, .text(StoreCoding.encodeObject(token.data)), ms(token.createdAt)])
    }

    public func putToken(_ token: AuthToken) async throws {
        try await transaction { db in
            _ = try db.rows(
                "DELETE FROM auth_tokens WHERE tenant = ? AND user_id = ? AND kind = ?",
                [.text(token.tenant), .text(token.userID), .text(token.kind.rawValue)])
            try Self.insertToken(token, into: db)
        }
    }

    public func takeToken(tenant: String, hash: String, kind: AuthToken.Kind, notBefore: Date) async throws -> AuthToken? {
        try await transaction { db in
            let rows = try db.rows(
                "DELETE FROM auth_tokens WHERE tenant = ? AND hash = ? AND kind = ? RETURNING user_id, session_id, data, created_at_ms",
                [.text(tenant), .text(hash), .text(kind.rawValue)])
            guard let row = rows.first, let userID = row.column("user_id")?.string, let createdAt = Self.date(row, "created_at_ms"),
                createdAt >= notBefore
            else { return nil }
            return AuthToken(
                tenant: tenant, hash: hash, kind: kind, userID: userID, sessionID: row.column("session_id")?.string,
                data: try StoreCoding.decodeObject(row.column("data")?.string ?? "{}"), createdAt: createdAt)
        }
    }

    public func createSession(tenant: String, id: String, userID: String, refresh: AuthToken) async throws {
        try await transaction { db in
            _ = try db.rows(
                "INSERT INTO auth_sessions (tenant, id, user_id, created_at_ms) VALUES (?, ?, ?, ?)",
                [.text(tenant), .text(id), .text(userID), Self.ms(refresh.createdAt)])
            try Self.insertToken(refresh, into: db)
        }
    }

    public func rotateRefreshToken(tenant: String, hash: String, nextHash: String, at: Date, graceSince: Date) async throws -> RefreshRotation {
        try await transaction { db in
            let rows = try db.rows(
                """
                SELECT t.user_id, t.session_id, t.spent_at_ms, s.revoked_at_ms FROM auth_tokens t
                JOIN auth_sessions s ON s.tenant = t.tenant AND s.id = t.session_id
                WHERE t.tenant = ? AND t.hash = ? AND t.kind = 'refresh'
                """, [.text(tenant), .text(hash)])
            guard let row = rows.first, let userID = row.column("user_id")?.string, let sessionID = row.column("session_id")?.string,
                row.column("revoked_at_ms")?.integer == nil
            else { return .invalid }
            if let spent = row.column("spent_at_ms")?.integer, Int64(spent) < StoreCoding.milliseconds(graceSince) {
                _ = try db.rows(
                    "UPDATE auth_sessions SET revoked_at_ms = ? WHERE tenant = ? AND id = ?", [Self.ms(at), .text(tenant), .text(sessionID)])
                return .reused
            }
            _ = try db.rows(
                "UPDATE auth_tokens SET spent_at_ms = coalesce(spent_at_ms, ?) WHERE tenant = ? AND hash = ?", [Self.ms(at), .text(tenant), .text(hash)])
            try Self.insertToken(
                AuthToken(tenant: tenant, hash: nextHash, kind: .refresh, userID: userID, sessionID: sessionID, createdAt: at), into: db)
            return .rotated(userID: userID, sessionID: sessionID)
        }
    }

    public func sessionIsActive(tenant: String, id: String) async throws -> Bool {
        !(try await read("SELECT 1 FROM auth_sessions WHERE tenant = ? AND id = ? AND revoked_at_ms IS NULL", [.text(tenant), .text(id)]))
            .isEmpty
    }

    public func revokeSessions(tenant: String, userID: String, scope: SessionScope, at: Date) async throws {
        let (condition, binds): (String, [SQLiteData]) =
            switch scope {
            case .only(let id): ("AND id = ?", [.text(id)])
            case .all: ("", [])
            case .allBut(let id): ("AND id <> ?", [.text(id)])
            }
        try await transaction { db in
            _ = try db.rows(
                "UPDATE auth_sessions SET revoked_at_ms = ? WHERE tenant = ? AND user_id = ? AND revoked_at_ms IS NULL \(condition)",
                [Self.ms(at), .text(tenant), .text(userID)] + binds)
        }
    }

    // MARK: Identities

    public func identityUser(tenant: String, provider: String, subject: String) async throws -> String? {
        try await read(
            "SELECT user_id FROM auth_identities WHERE tenant = ? AND provider = ? AND subject = ?",
            [.text(tenant), .text(provider), .text(subject)]
        ).first?.column("user_id")?.string
    }

    public func linkIdentity(tenant: String, provider: String, subject: String, userID: String, data: JSONObject, at: Date) async throws {
        try await transaction { db in
            _ = try db.rows(
                """
                INSERT INTO auth_identities (tenant, provider, subject, user_id, data, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (tenant, provider, subject) DO UPDATE SET data = excluded.data
                """,
                [.text(tenant), .text(provider), .text(subject), .text(userID), .text(StoreCoding.encodeObject(data)), Self.ms(at)])
        }
    }

    public func identities(tenant: String, userID: String) async throws -> [AuthIdentity] {
        try await read(
            "SELECT provider, subject, data, created_at_ms FROM auth_identities WHERE tenant = ? AND user_id = ? ORDER BY created_at_ms",
            [.text(tenant), .text(userID)]
        ).map { row in
            AuthIdentity(
                provider: row.column("provider")?.string ?? "", subject: row.column("subject")?.string ?? "",
                data: try StoreCoding.decodeObject(row.column("data")?.string ?? "{}"), createdAt: Self.date(row, "created_at_ms") ?? Date())
        }
    }
}
