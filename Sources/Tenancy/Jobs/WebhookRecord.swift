import Foundation
import Runtime

/// What a database webhook listens to and where it sends: the admin API's fields, stored as one
/// document so a new field needs no migration.
public struct WebhookSpec: Sendable, Equatable, Codable {
    public var source: String
    public var schema: String
    public var table: String
    /// `INSERT`, `UPDATE`, `DELETE`.
    public var events: [String]
    /// The realtime filter grammar (`status=eq.paid`), on the new row (the old one for DELETE).
    public var filter: String?
    public var url: String
    public var headers: [String: String]
    public var timeoutMs: Int
    /// Delays between attempts, in milliseconds; the first is the delay before the first retry.
    public var retrySchedule: [Int]?
    public var maxInFlight: Int
    public var enabled: Bool

    public init(
        source: String, schema: String, table: String, events: [String], filter: String?, url: String, headers: [String: String], timeoutMs: Int,
        retrySchedule: [Int]?, maxInFlight: Int, enabled: Bool
    ) {
        self.source = source
        self.schema = schema
        self.table = table
        self.events = events
        self.filter = filter
        self.url = url
        self.headers = headers
        self.timeoutMs = timeoutMs
        self.retrySchedule = retrySchedule
        self.maxInFlight = maxInFlight
        self.enabled = enabled
    }
}

/// A signing secret of a webhook, sealed with the node's master key. A rotated-out secret keeps
/// co-signing until `retiresAt`, so receivers can switch over without missing a delivery.
public struct SealedWebhookSecret: Sendable, Equatable, Codable {
    public var sealed: [UInt8]
    public var retiresAt: Date?

    public init(sealed: [UInt8], retiresAt: Date?) {
        self.sealed = sealed
        self.retiresAt = retiresAt
    }
}

/// A tenant's database webhook as stored.
public struct WebhookRecord: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var name: String
    public var spec: WebhookSpec
    /// The current secret first, then any still co-signing.
    public var secrets: [SealedWebhookSecret]
    public var createdAt: Date
    public var updatedAt: Date

    public init(tenant: String, id: String, name: String, spec: WebhookSpec, secrets: [SealedWebhookSecret], createdAt: Date, updatedAt: Date) {
        self.tenant = tenant
        self.id = id
        self.name = name
        self.spec = spec
        self.secrets = secrets
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One attempt of a job as its log shows it; `attempt` counts across replays (the store numbers it).
public struct JobAttempt: Sendable, Equatable {
    public var tenant: String
    public var job: String
    public var attempt: Int
    public var at: Date
    public var httpStatus: Int?
    public var latencyMs: Int
    public var error: String?
    /// The receiver's answer, at most 4 KiB.
    public var responseBody: String?

    public init(tenant: String, job: String, attempt: Int, at: Date, httpStatus: Int?, latencyMs: Int, error: String?, responseBody: String?) {
        self.tenant = tenant
        self.job = job
        self.attempt = attempt
        self.at = at
        self.httpStatus = httpStatus
        self.latencyMs = latencyMs
        self.error = error
        self.responseBody = responseBody
    }
}

/// Webhooks in the control plane: one row per webhook, its name unique in the tenant.
public protocol WebhookStore: Sendable {
    /// Throws `ControlPlaneError.duplicate` when the name is taken.
    func createWebhook(_ webhook: WebhookRecord) async throws
    func webhooks(tenant: String) async throws -> [WebhookRecord]
    func webhook(tenant: String, id: String) async throws -> WebhookRecord?
    /// False when it no longer exists; throws `duplicate` when renamed onto a taken name.
    func updateWebhook(_ webhook: WebhookRecord) async throws -> Bool
    func deleteWebhook(tenant: String, id: String) async throws -> Bool
    /// Tenants with webhooks, scheduled jobs or jobs not yet settled: their workers must run somewhere
    /// even when nobody calls their API.
    func tenantsWithJobWork() async throws -> [String]
}
