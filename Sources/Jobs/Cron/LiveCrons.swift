import Crypto
import Foundation
import NIOConcurrencyHelpers
import Runtime
import Tenancy

/// A scheduled job ready to run: its schedule parsed in its zone, its secrets opened.
public struct LiveCron: Sendable {
    public let record: CronRecord
    public let schedule: CronSchedule
    public let signer: WebhookSigner
    public let retries: RetrySchedule
    /// A run is retried at most twice by default (5 s, then 5 min): a job that keeps failing
    /// should not still be retrying when its next run is due.
    public static let defaultRetries = RetrySchedule(delays: [.zero, .seconds(5), .seconds(300)])

    public init(record: CronRecord, secretBox: SecretBox, now: Date = Date()) throws {
        self.record = record
        self.schedule = try CronSchedule(record.spec.schedule, timeZone: record.spec.timezone)
        self.signer = try WebhookSigner(opening: record.secrets, context: Self.secretContext(record), secretBox: secretBox, now: now)
        self.retries = record.spec.retrySchedule.map(RetrySchedule.init(retryDelaysMilliseconds:)) ?? Self.defaultRetries
    }

    public static func secretContext(_ record: CronRecord) -> String { "cron:\(record.tenant):\(record.name)" }

    /// What a run's jobs are filed under.
    public static func subject(_ name: String) -> String { "cron:\(name)" }

    /// The run's id (its `webhook-id`): one per job and scheduled time, so a scheduler that fires
    /// the same time twice (a restart, a race) stores one run.
    public static func runID(name: String, scheduledAt: Date) -> String {
        let digest = SHA256.hash(data: Array("\(name)\u{0}\(Int64(scheduledAt.timeIntervalSince1970 * 1000))".utf8))
        return "run_" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}

/// A tenant's scheduled jobs as its tree runs them (loaded when the tree starts).
public final class LiveCrons: Sendable {
    public let tenant: String
    private let crons: NIOLockedValueBox<[LiveCron]>

    public init(tenant: String, crons: [LiveCron]) {
        self.tenant = tenant
        self.crons = NIOLockedValueBox(crons)
    }

    public var all: [LiveCron] { crons.withLockedValue { $0 } }
    public func cron(_ name: String) -> LiveCron? { crons.withLockedValue { $0.first { $0.record.name == name } } }
}
