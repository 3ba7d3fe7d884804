import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Runtime
import SQLiteNIO

/// The embedded node's control plane: one SQLite file in the data dir. SQLite allows one writer,
/// and one connection serialises statements but not transactions, so every write takes the
/// writer connection exclusively for its whole transaction. Reads outside transactions use a few
/// reader connections beside it (WAL): they are on every storage and auth request.
public final class SQLiteControlPlaneStore: ControlPlaneStore {
    private let connection: SQLiteHandle
    private let exclusive = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: .max)
    /// The writer, in turn by lane; `exclusive` still serialises reads of an in-memory store.
    private let writer = FairWriterGate()
    private let readers: [SQLiteHandle]
    private let readerGate: ConcurrencyLimiter
    private let idleReaders: NIOLockedValueBox<[SQLiteHandle]>
    static let readerCount = 4

    public static func open(path: String) async throws -> SQLiteControlPlaneStore {
        let connection = try await SQLiteHandle.open(path: path, busyTimeoutMs: 5_000)
        try await connection.perform { session in
            try session.execute("PRAGMA journal_mode = WAL")
            // In WAL mode NORMAL loses nothing committed when the process dies (kill -9): only a
            // power cut may take the last commits. FULL would fsync every job's claim and settle.
            try session.execute("PRAGMA synchronous = NORMAL")
            try session.execute("PRAGMA foreign_keys = ON")
        }
        var readers: [SQLiteHandle] = []
        for _ in 0..<readerCount {
            let reader = try await SQLiteHandle.open(path: path, busyTimeoutMs: 5_000)
            try await reader.perform { try $0.execute("PRAGMA query_only = ON") }
            readers.append(reader)
        }
        return SQLiteControlPlaneStore(connection: connection, readers: readers)
    }

    public static func inMemory() async throws -> SQLiteControlPlaneStore {
        let connection = try await SQLiteHandle.open(path: ":memory:")
        try await connection.perform { try $0.execute("PRAGMA foreign_keys = ON") }
        // An in-memory database is private to its connection: no readers beside it.
        return SQLiteControlPlaneStore(connection: connection, readers: [])
    }

    private init(connection: SQLiteHandle, readers: [SQLiteHandle]) {
        self.connection = connection
        self.readers = readers
        self.readerGate = ConcurrencyLimiter(maxConcurrent: max(1, readers.count), maxQueued: .max)
        self.idleReaders = NIOLockedValueBox(readers)
    }

    // MARK: - Transactions

    /// One write transaction, BEGIN to COMMIT in one trip to the blocking pool (its statements
    /// stay prepared on the writer). `lane` groups a tenant's job traffic, so lanes take turns
    /// for the single writer (see `FairWriterGate`); everything else shares one lane. Once
    /// begun, it runs to its COMMIT or ROLLBACK even if the caller is cancelled.
    func transaction<T: Sendable>(lane: String = "", _ body: @escaping @Sendable (SQLiteSession) throws -> T) async throws -> T {
        await writer.acquire(lane: lane)
        defer { writer.release() }
        return try await exclusive.withPermit { [connection] in
            try await connection.perform { session in try session.transaction { try body(session) } }
        }
    }

    /// One statement on the writer in its own (implicit) transaction: what a single statement
    /// does is atomic without BEGIN and COMMIT.
    func statement(lane: String = "", _ sql: String, _ binds: [SQLiteData]) async throws -> [SQLiteResultRow] {
        await writer.acquire(lane: lane)
        defer { writer.release() }
        return try await exclusive.withPermit { [connection] in try await connection.query(sql, binds) }
    }

    func read(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteResultRow] {
        guard !readers.isEmpty else { return try await exclusive.withPermit { try await connection.query(sql, binds) } }
        return try await readerGate.withPermit {
            // The gate admits no more callers than there are readers: one is always idle here.
            let reader = idleReaders.withLockedValue { $0.removeLast() }
            defer { idleReaders.withLockedValue { $0.append(reader) } }
            return try await reader.query(sql, binds)
        }
    }

    // MARK: - Migrations

    public func migrate() async throws {
        try await transaction { db in
            // DDL through `execute`: run once, not worth keeping prepared.
            try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)")
            let applied = Set(try db.rows("SELECT version FROM schema_migrations").compactMap { $0.column("version")?.integer })
            for step in Migrations.sqlite where !applied.contains(step.version) {
                for statement in step.statements { try db.execute(statement) }
                _ = try db.rows(
                    "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?, ?)",
                    [.integer(step.version), .integer(Int(StoreCoding.milliseconds(Date())))])
            }
        }
    }

    // MARK: - Tenants

    public func createTenant(_ tenant: Tenant, secret: SealedJWTSecret, audit: AuditEntry) async throws {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(tenant.slug)])
            guard existing.isEmpty else { throw ControlPlaneError.duplicate("tenant \(tenant.slug)") }
            _ = try db.rows(
                "INSERT INTO tenants (slug, name, status, created_at_ms, limits) VALUES (?, ?, ?, ?, ?)",
                [.text(tenant.slug), .text(tenant.name), .text(tenant.status.rawValue),
                 .integer(Int(StoreCoding.milliseconds(tenant.createdAt))), .text(StoreCoding.encodeLimits(tenant.limits))])
            _ = try db.rows(
                "INSERT INTO tenant_jwt_secrets (tenant, kid, sealed, created_at_ms) VALUES (?, ?, ?, ?)",
                [.text(tenant.slug), .text(secret.kid), .blob(ByteBuffer(bytes: secret.sealed)),
                 .integer(Int(StoreCoding.milliseconds(secret.createdAt)))])
            try Self.insertAudit(audit, into: db)
        }
    }

    public func tenant(_ slug: String) async throws -> Tenant? {
        try await read("SELECT * FROM tenants WHERE slug = ?", [.text(slug)]).first.map(Self.tenant(from:))
    }

    public func listTenants() async throws -> [Tenant] {
        try await read("SELECT * FROM tenants ORDER BY slug").map(Self.tenant(from:))
    }

    public func updateTenant(_ tenant: Tenant, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(tenant.slug)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows(
                "UPDATE tenants SET name = ?, status = ?, limits = ? WHERE slug = ?",
                [.text(tenant.name), .text(tenant.status.rawValue), .text(StoreCoding.encodeLimits(tenant.limits)), .text(tenant.slug)])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    public func deleteTenant(_ slug: String, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(slug)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows("DELETE FROM tenant_jwt_secrets WHERE tenant = ?", [.text(slug)])
            _ = try db.rows("DELETE FROM sources WHERE tenant = ?", [.text(slug)])
            _ = try db.rows("DELETE FROM policies WHERE tenant = ?", [.text(slug)])
            for table in ["auth_identities", "auth_tokens", "auth_sessions", "auth_users", "auth_settings"] {
                _ = try db.rows("DELETE FROM \(table) WHERE tenant = ?", [.text(slug)])
            }
            _ = try db.rows("DELETE FROM tenants WHERE slug = ?", [.text(slug)])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    public func jwtSecrets(_ slug: String) async throws -> [SealedJWTSecret] {
        try await read(
            "SELECT * FROM tenant_jwt_secrets WHERE tenant = ? ORDER BY created_at_ms DESC, kid DESC", [.text(slug)]
        ).map { row in
            guard let kid = row.column("kid")?.string, case .blob(let sealed)? = row.column("sealed"),
                let created = row.column("created_at_ms")?.integer
            else { throw ControlPlaneError.corrupt("tenant_jwt_secrets row") }
            return SealedJWTSecret(
                kid: kid, sealed: Array(sealed.readableBytesView), createdAt: StoreCoding.date(milliseconds: Int64(created)),
                revokedAt: row.column("revoked_at_ms")?.integer.map { StoreCoding.date(milliseconds: Int64($0)) })
        }
    }

    public func addJWTSecret(_ slug: String, secret: SealedJWTSecret, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(slug)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows(
                "INSERT INTO tenant_jwt_secrets (tenant, kid, sealed, created_at_ms) VALUES (?, ?, ?, ?)",
                [.text(slug), .text(secret.kid), .blob(ByteBuffer(bytes: secret.sealed)), .integer(Int(StoreCoding.milliseconds(secret.createdAt)))])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    public func revokeJWTSecret(_ slug: String, kid: String, at: Date, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let target = try db.rows(
                "SELECT 1 FROM tenant_jwt_secrets WHERE tenant = ? AND kid = ? AND revoked_at_ms IS NULL", [.text(slug), .text(kid)])
            guard !target.isEmpty else { return false }
            let active = try db.rows(
                "SELECT count(*) AS n FROM tenant_jwt_secrets WHERE tenant = ? AND revoked_at_ms IS NULL", [.text(slug)])
            guard (active.first?.column("n")?.integer ?? 0) > 1 else { throw ControlPlaneError.lastActiveSecret }
            _ = try db.rows(
                "UPDATE tenant_jwt_secrets SET revoked_at_ms = ? WHERE tenant = ? AND kid = ?",
                [.integer(Int(StoreCoding.milliseconds(at))), .text(slug), .text(kid)])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    // MARK: - Sources

    public func createSource(_ source: SourceRecord, audit: AuditEntry) async throws {
        try await transaction { db in
            let tenant = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(source.tenant)])
            guard !tenant.isEmpty else { throw ControlPlaneError.notFound("tenant \(source.tenant)") }
            let existing = try db.rows(
                "SELECT 1 FROM sources WHERE tenant = ? AND name = ?", [.text(source.tenant), .text(source.name)])
            guard existing.isEmpty else { throw ControlPlaneError.duplicate("source \(source.name)") }
            _ = try db.rows(
                "INSERT INTO sources (tenant, name, kind, config, sealed_secrets, model, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(source.tenant), .text(source.name), .text(source.kind), .text(StoreCoding.encodeObject(source.config)),
                 .blob(ByteBuffer(bytes: source.sealedSecrets)), .text(source.model),
                 .integer(Int(StoreCoding.milliseconds(source.createdAt))), .integer(Int(StoreCoding.milliseconds(source.updatedAt)))])
            try Self.insertAudit(audit, into: db)
        }
    }

    public func sources(_ slug: String) async throws -> [SourceRecord] {
        try await read("SELECT * FROM sources WHERE tenant = ? ORDER BY name", [.text(slug)]).map { row in
            guard let tenant = row.column("tenant")?.string, let name = row.column("name")?.string,
                let kind = row.column("kind")?.string, let config = row.column("config")?.string,
                case .blob(let sealed)? = row.column("sealed_secrets"),
                let created = row.column("created_at_ms")?.integer, let updated = row.column("updated_at_ms")?.integer,
                let model = row.column("model")?.string
            else { throw ControlPlaneError.corrupt("sources row") }
            return SourceRecord(
                tenant: tenant, name: name, kind: kind, config: try StoreCoding.decodeObject(config),
                sealedSecrets: Array(sealed.readableBytesView), model: model,
                createdAt: StoreCoding.date(milliseconds: Int64(created)), updatedAt: StoreCoding.date(milliseconds: Int64(updated)))
        }
    }

    public func deleteSource(tenant: String, name: String, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM sources WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows("DELETE FROM sources WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    public func updateSourceModel(tenant: String, name: String, model: String, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM sources WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows(
                "UPDATE sources SET model = ?, updated_at_ms = ? WHERE tenant = ? AND name = ?",
                [.text(model), .integer(Int(StoreCoding.milliseconds(Date()))), .text(tenant), .text(name)])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    public func policies(_ slug: String) async throws -> String? {
        try await read("SELECT document FROM policies WHERE tenant = ?", [.text(slug)]).first?.column("document")?.string
    }

    public func setPolicies(_ slug: String, document: String, audit: AuditEntry) async throws -> Bool {
        try await transaction { db in
            let existing = try db.rows("SELECT 1 FROM tenants WHERE slug = ?", [.text(slug)])
            guard !existing.isEmpty else { return false }
            _ = try db.rows(
                "INSERT INTO policies (tenant, document, updated_at_ms) VALUES (?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET document = excluded.document, updated_at_ms = excluded.updated_at_ms",
                [.text(slug), .text(document), .integer(Int(StoreCoding.milliseconds(Date())))])
            try Self.insertAudit(audit, into: db)
            return true
        }
    }

    // MARK: - Audit and settings

    public func appendAudit(_ entry: AuditEntry) async throws {
        try await transaction { db in try Self.insertAudit(entry, into: db) }
    }

    public func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry] {
        let rows: [SQLiteResultRow]
        if let tenant {
            rows = try await read("SELECT * FROM audit_log WHERE tenant = ? ORDER BY id DESC LIMIT ?", [.text(tenant), .integer(limit)])
        } else {
            rows = try await read("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", [.integer(limit)])
        }
        return try rows.map { row in
            guard let id = row.column("id")?.integer, let at = row.column("at_ms")?.integer,
                let actor = row.column("actor")?.string, let action = row.column("action")?.string,
                let detail = row.column("detail")?.string
            else { throw ControlPlaneError.corrupt("audit_log row") }
            return AuditEntry(
                id: Int64(id), at: StoreCoding.date(milliseconds: Int64(at)), actor: actor, action: action,
                tenant: row.column("tenant")?.string, requestID: row.column("request_id")?.string,
                detail: try StoreCoding.decodeObject(detail))
        }
    }

    public func setting(_ key: String) async throws -> String? {
        try await read("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string
    }

    public func setSetting(_ key: String, to value: String) async throws {
        try await transaction { db in
            _ = try db.rows(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [.text(key), .text(value)])
        }
    }

    public func ping() async throws {
        _ = try await read("SELECT 1")
    }

    /// For tests that check what the database itself refuses.
    func executeForTesting(_ sql: String) async throws {
        _ = try await exclusive.withPermit { [connection] in try await connection.perform { try $0.execute(sql) } }
    }

    public func close() async {
        for reader in readers { await reader.close() }
        await connection.close()
    }

    // MARK: - Rows

    static func insertAudit(_ entry: AuditEntry, into db: SQLiteSession) throws {
        _ = try db.rows(
            "INSERT INTO audit_log (at_ms, actor, action, tenant, request_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
            [.integer(Int(StoreCoding.milliseconds(entry.at))), .text(entry.actor), .text(entry.action),
             entry.tenant.map { .text($0) } ?? .null, entry.requestID.map { .text($0) } ?? .null,
             .text(StoreCoding.encodeObject(entry.detail))])
    }

    private static func tenant(from row: SQLiteResultRow) throws -> Tenant {
        guard let slug = row.column("slug")?.string, let name = row.column("name")?.string,
            let status = row.column("status")?.string, let created = row.column("created_at_ms")?.integer,
            let limits = row.column("limits")?.string
        else { throw ControlPlaneError.corrupt("tenants row") }
        return Tenant(
            slug: slug, name: name, status: try StoreCoding.status(status),
            createdAt: StoreCoding.date(milliseconds: Int64(created)), limits: StoreCoding.decodeLimits(limits))
    }
}
