import Foundation

/// Where the node keeps what it must not forget: tenants, their sealed secrets, sources, settings and
/// the audit log. Two implementations — SQLite for the embedded node, PostgreSQL for a cluster — pass
/// the same test suite. Every change that is audited writes its audit line in the same transaction,
/// so an action is either recorded and done, or neither.
public protocol ControlPlaneStore: AuthStore, StorageStore, JobStore, WebhookStore, QueueStore, CronStore, EmailTemplateStore, FunctionStore, SearchIndexStore, VectorStore {
    /// Applies pending versioned migrations; safe to call from several nodes at once.
    func migrate() async throws

    func createTenant(_ tenant: Tenant, secret: SealedJWTSecret, audit: AuditEntry) async throws
    func tenant(_ slug: String) async throws -> Tenant?
    func listTenants() async throws -> [Tenant]
    /// Returns false when there was no such tenant.
    func updateTenant(_ tenant: Tenant, audit: AuditEntry) async throws -> Bool
    /// Removes the tenant with its secrets and sources. Returns false when there was no such tenant.
    func deleteTenant(_ slug: String, audit: AuditEntry) async throws -> Bool

    /// Unrevoked and revoked secrets, newest first.
    func jwtSecrets(_ slug: String) async throws -> [SealedJWTSecret]
    /// Adds a signing secret (rotation). Returns false when there is no such tenant.
    func addJWTSecret(_ slug: String, secret: SealedJWTSecret, audit: AuditEntry) async throws -> Bool
    /// Marks a secret revoked; refuses (`ControlPlaneError.duplicate`-free) to revoke the last
    /// active one. Returns false when there is no such secret.
    func revokeJWTSecret(_ slug: String, kid: String, at: Date, audit: AuditEntry) async throws -> Bool

    func createSource(_ source: SourceRecord, audit: AuditEntry) async throws
    func sources(_ slug: String) async throws -> [SourceRecord]
    func deleteSource(tenant: String, name: String, audit: AuditEntry) async throws -> Bool
    /// Replaces a source's model after re-introspection. Returns false when there is no such source.
    func updateSourceModel(tenant: String, name: String, model: String, audit: AuditEntry) async throws -> Bool

    /// The tenant's policy document (JSON), nil when none was ever set.
    func policies(_ slug: String) async throws -> String?
    /// Replaces the whole policy document at once. Returns false when there is no such tenant.
    func setPolicies(_ slug: String, document: String, audit: AuditEntry) async throws -> Bool

    func appendAudit(_ entry: AuditEntry) async throws
    /// Newest first.
    func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry]

    func setting(_ key: String) async throws -> String?
    func setSetting(_ key: String, to value: String) async throws

    /// A cheap round trip, for readiness.
    func ping() async throws
    func close() async
}

public enum ControlPlaneError: Error, Equatable, CustomStringConvertible {
    case duplicate(String)
    case notFound(String)
    case unavailable(String)
    case corrupt(String)
    case lastActiveSecret
    /// A per-tenant count limit (`what` names it).
    case limitReached(String)

    public var description: String {
        switch self {
        case .duplicate(let what): "\(what) already exists"
        case .notFound(let what): "\(what) does not exist"
        case .unavailable(let why): "control plane unavailable: \(why)"
        case .corrupt(let why): "control plane data is corrupt: \(why)"
        case .lastActiveSecret: "a tenant keeps at least one active signing secret"
        case .limitReached(let what): "\(what): limit reached"
        }
    }
}
