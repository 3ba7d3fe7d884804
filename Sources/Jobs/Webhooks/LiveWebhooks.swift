import Connectors
import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime
import Tenancy

/// A webhook ready to use: its filter parsed, its secrets opened, its retry schedule built.
public struct LiveWebhook: Sendable {
    public let record: WebhookRecord
    let filter: ChangeFilter?
    public let signer: WebhookSigner
    public let schedule: RetrySchedule
    /// The webhook's own in-flight cap (`maxInFlight`), inside the tenant's: a receiver never
    /// sees more concurrent deliveries than its webhook allows.
    let gate: JobSlots

    public init(record: WebhookRecord, secretBox: SecretBox, now: Date = Date()) throws {
        self.record = record
        self.filter = try record.spec.filter.map { text in try ChangeFilter(parsing: text) }
        self.signer = try WebhookSigner(opening: record.secrets, context: Self.secretContext(record), secretBox: secretBox, now: now)
        self.schedule = record.spec.retrySchedule.map(RetrySchedule.init(retryDelaysMilliseconds:)) ?? .standard
        self.gate = JobSlots(capacity: max(1, record.spec.maxInFlight))
    }

    /// What a webhook's sealed secret is bound to: it cannot be moved to another webhook.
    public static func secretContext(_ record: WebhookRecord) -> String { "webhook:\(record.tenant):\(record.id)" }

    func matches(_ change: ChangeEvent, source: String) -> Bool {
        let spec = record.spec
        guard spec.enabled, spec.source == source, spec.schema == change.schema, spec.table == change.table,
            spec.events.contains(change.kind.rawValue)
        else { return false }
        if let filter, !filter.matches(change.kind == .delete ? change.oldRecord : change.record) { return false }
        return true
    }
}

/// A tenant's webhooks as its tree runs them: which changes make which deliveries. Loaded when
/// the tree starts (an admin change restarts the tree).
public final class LiveWebhooks: Sendable {
    public let tenant: String
    private let hooks: NIOLockedValueBox<[LiveWebhook]>

    public init(tenant: String, webhooks: [LiveWebhook]) {
        self.tenant = tenant
        self.hooks = NIOLockedValueBox(webhooks)
    }

    public var all: [LiveWebhook] { hooks.withLockedValue { $0 } }

    public func webhook(_ id: String) -> LiveWebhook? { hooks.withLockedValue { $0.first { $0.record.id == id } } }

    /// The sources some enabled webhook listens to: their changes must be captured.
    public var sources: Set<String> { Set(all.filter(\.record.spec.enabled).map(\.record.spec.source)) }

    /// One delivery job per change and webhook it matches, ids derived from the change. Each
    /// job names its ordering key — the webhook and the row, by `keyColumns` of the change's table
    /// (the whole table when it has no key) — so one row's changes reach a receiver in commit
    /// order while other rows' go side by side; and each is stored a microsecond after the one
    /// before, so a claim can tell their order apart.
    public func deliveries(
        source: String, changes: [ChangeEvent], now: Date = Date(), keyColumns: (_ schema: String, _ table: String) -> [String] = { _, _ in [] }
    ) -> [JobRecord] {
        let hooks = all
        guard !hooks.isEmpty else { return [] }
        var jobs: [JobRecord] = []
        var keys: [String: [String]] = [:]
        for (index, change) in changes.enumerated() {
            for hook in hooks where hook.matches(change, source: source) {
                let qualified = "\(change.schema).\(change.table)"
                let columns = keys[qualified] ?? keyColumns(change.schema, change.table)
                keys[qualified] = columns
                var job = WebhookDelivery.job(
                    tenant: tenant, webhook: hook, id: WebhookEvent.messageID(webhook: hook.record.id, change: change, index: index),
                    body: WebhookEvent.body(change), now: now)
                job.createdAt = now.addingTimeInterval(Double(jobs.count) * 1e-6)
                job.payload[JobWorkers.orderingKey] = .string(WebhookEvent.orderingKey(webhook: hook.record.id, change: change, keyColumns: columns))
                jobs.append(job)
            }
        }
        return jobs
    }
}
