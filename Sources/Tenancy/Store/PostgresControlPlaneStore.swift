import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// The cluster's control plane, in the `minibaas` schema of `DATABASE_URL`. All nodes share it;
/// migrations take an advisory lock so that nodes starting together apply each step once.
public final class PostgresControlPlaneStore: ControlPlaneStore {
    public let client: PostgresClient
    let logger: Logger

    /// The caller must keep `client.run()` running (the node adds it to its service group).
    public init(url: PostgresURL, logger: Logger) {
        var configuration = url.clientConfiguration()
        configuration.options.maximumConnections = 8
        configuration.options.connectTimeout = .seconds(5)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public func migrate() async throws {
        try await client.withTransaction(logger: logger) { db in
            try await db.query("SELECT pg_advisory_xact_lock(hashtext('minibaas.migrations'))", logger: logger)
            try await db.query("CREATE SCHEMA IF NOT EXISTS minibaas", logger: logger)
            try await db.query(
                "CREATE TABLE IF NOT EXISTS minibaas.schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var applied = Set<Int>()
            for try await version in try await db.query("SELECT version FROM minibaas.schema_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for step in Migrations.postgres where !applied.contains(step.version) {
                for statement in step.statements {
                    try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await db.query("INSERT INTO minibaas.schema_migrations (version) VALUES (\(step.version))", logger: logger)
            }
        }
    }

    // MARK: - Tenants

    public func createTenant(_ tenant: Tenant, secret: SealedJWTSecret, audit: AuditEntry) async throws {
        do {
            try await client.withTransaction(logger: logger) { db in
                let limits = StoreCoding.encodeLimits(tenant.limits)
                try await db.query(
                    """
                    INSERT INTO minibaas.tenants (slug, name, status, created_at, limits)
                    VALUES (\(tenant.slug), \(tenant.name), \(tenant.status.rawValue), \(tenant.createdAt), \(limits)::jsonb)
                    """, logger: logger)
                try await db.query(
                    """
                    INSERT INTO minibaas.tenant_jwt_secrets (tenant, kid, sealed, created_at)
                    VALUES (\(tenant.slug), \(secret.kid), \(ByteBuffer(bytes: secret.sealed)), \(secret.createdAt))
                    """, logger: logger)
                try await Self.insertAudit(audit, into: db, logger: logger)
            }
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("tenant \(tenant.slug)")
        }
    }

    public func tenant(_ slug: String) async throws -> Tenant? {
        try await tenants(PostgresQuery(
            "SELECT slug, name, status, created_at, limits::text FROM minibaas.tenants WHERE slug = \(slug)")).first
    }

    public func listTenants() async throws -> [Tenant] {
        try await tenants("SELECT slug, name, status, created_at, limits::text FROM minibaas.tenants ORDER BY slug")
    }

    private func tenants(_ query: PostgresQuery) async throws -> [Tenant] {
        var result: [Tenant] = []
        let rows = try await client.query(query, logger: logger)
        for try await (slug, name, status, createdAt, limits) in rows.decode((String, String, String, Date, String).self) {
            result.append(Tenant(
                slug: slug, name: name, status: try StoreCoding.status(status), createdAt: createdAt,
                limits: StoreCoding.decodeLimits(limits)))
        }
        return result
    }

    public func updateTenant(_ tenant: Tenant, audit: AuditEntry) async throws -> Bool {
        try await client.withTransaction(logger: logger) { db in
            let limits = StoreCoding.encodeLimits(tenant.limits)
            let rows = try await db.query(
                """
                UPDATE minibaas.tenants SET name = \(tenant.name), status = \(tenant.status.rawValue), limits = \(limits)::jsonb
                WHERE slug = \(tenant.slug) RETURNING 1
                """, logger: logger)
            guard try await Self.hasRow(rows) else { return false }
            try await Self.insertAudit(audit, into: db, logger: logger)
            return true
        }
    }

    public func deleteTenant(_ slug: String, audit: AuditEntry) async throws -> Bool {
        try await client.withTransaction(logger: logger) { db in
            let rows = try await db.query("DELETE FROM minibaas.tenants WHERE slug = \(slug) RETURNING 1", logger: logger)
            guard try await Self.hasRow(rows) else { return false }
            try await Self.insertAudit(audit, into: db, logger: logger)
            return true
        }
    }

    public func jwtSecrets(_ slug: String) async throws -> [SealedJWTSecret] {
        let rows = try await client.query(
            """
            SELECT kid, sealed, created_at, revoked_at FROM minibaas.tenant_jwt_secrets
            WHERE tenant = \(slug) ORDER BY created_at DESC, kid DESC
            """, logger: logger)
        var result: [SealedJWTSecret] = []
        for try await (kid, sealed, createdAt, revokedAt) in rows.decode((String, ByteBuffer, Date, Date?).self) {
            result.append(SealedJWTSecret(kid: kid, sealed: Array(sealed.readableBytesView), createdAt: createdAt, revokedAt: revokedAt))
        }
        return result
    }

    public func addJWTSecret(_ slug: String, secret: SealedJWTSecret, audit: AuditEntry) async throws -> Bool {
        do {
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    """
                    INSERT INTO minibaas.tenant_jwt_secrets (tenant, kid, sealed, created_at)
                    VALUES (\(slug), \(secret.kid), \(ByteBuffer(bytes: secret.sealed)), \(secret.createdAt))
                    """, logger: logger)
                try await Self.insertAudit(audit, into: db, logger: logger)
            }
            return true
        } catch where Self.sqlState(of: error) == "23503" {
            return false
        }
    }

    public func revokeJWTSecret(_ slug: String, kid: String, at: Date, audit: AuditEntry) async throws -> Bool {
        do {
            return try await revoke(slug, kid: kid, at: at, audit: audit)
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? ControlPlaneError { throw inner }
            throw error
        }
    }

    private func revoke(_ slug: String, kid: String, at: Date, audit: AuditEntry) async throws -> Bool {
        try await client.withTransaction(logger: logger) { db in
            // Lock the tenant's secrets so two concurrent revocations cannot leave none active.
            var active = 0
            var found = false
            let rows = try await db.query(
                "SELECT kid FROM minibaas.tenant_jwt_secrets WHERE tenant = \(slug) AND revoked_at IS NULL FOR UPDATE", logger: logger)
            for try await current in rows.decode(String.self) {
                active += 1
                if current == kid { found = true }
            }
            guard found else { return false }
            guard active > 1 else { throw ControlPlaneError.lastActiveSecret }
            try await db.query(
                "UPDATE minibaas.tenant_jwt_secrets SET revoked_at = \(at) WHERE tenant = \(slug) AND kid = \(kid)", logger: logger)
            try await Self.insertAudit(audit, into: db, logger: logger)
            return true
        }
    }

    // MARK: - Sources

    public func createSource(_ source: SourceRecord, audit: AuditEntry) async throws {
        do {
            try await client.withTransaction(logger: logger) { db in
                let config = StoreCoding.encodeObject(source.config)
                try await db.query(
                    """
                    INSERT INTO minibaas.sources (tenant, name, kind, config, sealed_secrets, model, created_at, updated_at)
                    VALUES (\(source.tenant), \(source.name), \(source.kind), \(config)::jsonb,
                            \(ByteBuffer(bytes: source.sealedSecrets)), \(source.model), \(source.createdAt), \(source.updatedAt))
                    """, logger: logger)
                try await Self.insertAudit(audit, into: db, logger: logger)
            }
        } catch {
            switch Self.sqlState(of: error) {
            case "23505": throw ControlPlaneError.duplicate("source \(source.name)")
            case "23503": throw ControlPlaneError.notFound("tenant \(source.tenant)")
            default: throw error
            }
        }
    }

    public func sources(_ slug: String) async throws -> [SourceRecord] {
        let rows = try await client.query(
            """
            SELECT tenant, name, kind, config::text, sealed_secrets, model, created_at, updated_at
            FROM minibaas.sources WHERE tenant = \(slug) ORDER BY name
            """, logger: logger)
        var result: [SourceRecord] = []
        for try await (tenant, name, kind, config, sealed, model, createdAt, updatedAt) in rows.decode(
            (String, String, String, String, ByteBuffer, String, Date, Date).self)
        {
            result.append(SourceRecord(
                tenant: tenant, name: name, kind: kind, config: try StoreCoding.decodeObject(config),
                sealedSecrets: Array(sealed.readableBytesView), model: model, createdAt: createdAt, updatedAt: updatedAt))
        }
        return result
    }

    public func deleteSource(tenant: String, name: String, audit: AuditEntry) async throws -> Bool {
        try await client.withTransaction(logger: logger) { db in
            let rows = try await db.query(
                "DELETE FROM minibaas.sources WHERE tenant = \(tenant) AND name = \(name) RETURNING 1", logger: logger)
            guard try await Self.hasRow(rows) else { return false }
            try await Self.insertAudit(audit, into: db, logger: logger)
            return true
        }
    }

    public func updateSourceModel(tenant: String, name: String, model: String, audit: AuditEntry) async throws -> Bool {
        try await client.withTransaction(logger: logger) { db in
            let rows = try await db.query(
                "UPDATE minibaas.sources SET model = \(model), updated_at = now() WHERE tenant = \(tenant) AND name = \(name) RETURNING 1",
                logger: logger)
            guard try await Self.hasRow(rows) else { return false }
            try await Self.insertAudit(audit, into: db, logger: logger)
            return true
        }
    }

    public func policies(_ slug: String) async throws -> String? {
        let rows = try await client.query("SELECT document::text FROM minibaas.policies WHERE tenant = \(slug)", logger: logger)
        for try await document in rows.decode(String.self) { return document }
        return nil
    }

    public func setPolicies(_ slug: String, document: String, audit: AuditEntry) async throws -> Bool {
        do {
            try await client.withTransaction(logger: logger) { db in
                try await db.query(
                    """
                    INSERT INTO minibaas.policies (tenant, document) VALUES (\(slug), \(document)::jsonb)
                    ON CONFLICT (tenant) DO UPDATE SET document = excluded.document, updated_at = now()
                    """, logger: logger)
                try await Self.insertAudit(audit, into: db, logger: logger)
            }
            return true
        } catch where Self.sqlState(of: error) == "23503" {
            return false
        }
    }

    // MARK: - Audit and settings

    public func appendAudit(_ entry: AuditEntry) async throws {
        try await client.withConnection { db in try await Self.insertAudit(entry, into: db, logger: logger) }
    }

    public func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry] {
        let query: PostgresQuery =
            if let tenant {
                "SELECT id, at, actor, action, tenant, request_id, detail::text FROM minibaas.audit_log WHERE tenant = \(tenant) ORDER BY id DESC LIMIT \(limit)"
            } else {
                "SELECT id, at, actor, action, tenant, request_id, detail::text FROM minibaas.audit_log ORDER BY id DESC LIMIT \(limit)"
            }
        var result: [AuditEntry] = []
        let rows = try await client.query(query, logger: logger)
        for try await (id, at, actor, action, tenant, requestID, detail) in rows.decode(
            (Int64, Date, String, String, String?, String?, String).self)
        {
            result.append(AuditEntry(
                id: id, at: at, actor: actor, action: action, tenant: tenant, requestID: requestID,
                detail: try StoreCoding.decodeObject(detail)))
        }
        return result
    }

    public func setting(_ key: String) async throws -> String? {
        let rows = try await client.query("SELECT value FROM minibaas.settings WHERE key = \(key)", logger: logger)
        for try await value in rows.decode(String.self) { return value }
        return nil
    }

    public func setSetting(_ key: String, to value: String) async throws {
        try await client.query(
            "INSERT INTO minibaas.settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            logger: logger)
    }

    public func ping() async throws {
        try await client.query("SELECT 1", logger: logger)
    }

    public func close() async {}

    // MARK: - Rows

    static func insertAudit(_ entry: AuditEntry, into db: PostgresConnection, logger: Logger) async throws {
        let detail = StoreCoding.encodeObject(entry.detail)
        try await db.query(
            """
            INSERT INTO minibaas.audit_log (at, actor, action, tenant, request_id, detail)
            VALUES (\(entry.at), \(entry.actor), \(entry.action), \(entry.tenant), \(entry.requestID), \(detail)::jsonb)
            """, logger: logger)
    }

    /// The SQLSTATE of a server error, also when a transaction wrapped it.
    public static func sqlState(of error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError, let inner = error.closureError { return sqlState(of: inner) }
        return nil
    }

    static func hasRow(_ rows: PostgresRowSequence) async throws -> Bool {
        var found = false
        for try await _ in rows { found = true }
        return found
    }
}
