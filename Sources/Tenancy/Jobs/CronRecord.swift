import Foundation
import Runtime

/// Where a scheduled job sends: an HTTP request (a function target comes with functions).
public struct CronTarget: Sendable, Equatable, Codable {
    public var kind: String
    public var url: String
    public var method: String
    public var headers: [String: String]
    /// The body as sent (JSON text), nil for none.
    public var body: String?

    public init(kind: String, url: String, method: String, headers: [String: String], body: String?) {
        self.kind = kind
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
    }
}

/// A scheduled job's settings, stored as one document.
public struct CronSpec: Sendable, Equatable, Codable {
    public var schedule: String
    public var timezone: String
    public var target: CronTarget
    public var retrySchedule: [Int]?
    public var enabled: Bool

    public init(schedule: String, timezone: String, target: CronTarget, retrySchedule: [Int]?, enabled: Bool) {
        self.schedule = schedule
        self.timezone = timezone
        self.target = target
        self.retrySchedule = retrySchedule
        self.enabled = enabled
    }
}

/// A tenant's scheduled job as stored: its name is its handle.
public struct CronRecord: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var spec: CronSpec
    public var secrets: [SealedWebhookSecret]
    /// When it runs next; nil until the scheduler first looks at it.
    public var nextRunAt: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(tenant: String, name: String, spec: CronSpec, secrets: [SealedWebhookSecret], nextRunAt: Date?, createdAt: Date, updatedAt: Date) {
        self.tenant = tenant
        self.name = name
        self.spec = spec
        self.secrets = secrets
        self.nextRunAt = nextRunAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Scheduled jobs in the control plane; their runs are jobs (subject `cron:{name}`).
public protocol CronStore: Sendable {
    /// Throws `ControlPlaneError.duplicate` when the name is taken.
    func createCron(_ cron: CronRecord) async throws
    func cronJobs(tenant: String) async throws -> [CronRecord]
    func cronJob(tenant: String, name: String) async throws -> CronRecord?
    func updateCron(_ cron: CronRecord) async throws -> Bool
    func deleteCron(tenant: String, name: String) async throws -> Bool
    /// Moves the next run on, only if it is still `expected` (a second scheduler that raced
    /// this one finds it moved and fires nothing).
    func advanceCron(tenant: String, name: String, expected: Date?, next: Date?) async throws -> Bool
}
