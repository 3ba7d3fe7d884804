import Connectors
import Foundation
import Jobs
import Logging
import NIOConcurrencyHelpers
import Runtime
import Storage
import Tenancy

/// What a tree's job workers need from the node.
public struct JobsEnvironment: Sendable {
    public var store: any ControlPlaneStore
    public var secretBox: SecretBox
    public var client: OutboundClient
    /// The node's job slots, shared by all tenants.
    public var slots: JobSlots
    /// The tenant's fencing token while this node holds its lease; nil otherwise.
    public var fence: @Sendable (String) -> Int64?
    public var settings: JobWorkers.Settings

    public init(
        store: any ControlPlaneStore, secretBox: SecretBox, client: OutboundClient, slots: JobSlots, fence: @escaping @Sendable (String) -> Int64?,
        settings: JobWorkers.Settings = .init()
    ) {
        self.store = store
        self.secretBox = secretBox
        self.client = client
        self.slots = slots
        self.fence = fence
        self.settings = settings
    }
}

/// The tenant's durable jobs: its webhooks (fed by the realtime hub's change feeds, or by REST
/// writes where a source has none) and the workers that deliver them, as a supervised child.
/// Later job kinds (cron runs, queue work, e-mails, image jobs) register their handlers here.
public final class JobsSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    public let webhooks: LiveWebhooks
    public let crons: LiveCrons
    /// nil on a node built without jobs (some unit tests).
    public let workers: JobWorkers?
    public let delivery: WebhookDelivery?
    let environment: JobsEnvironment?
    let logger: Logger
    private let captureBox = NIOLockedValueBox<[String: PostgresChangeFeed.Capability]>([:])

    /// How each webhook source's changes are captured, once the workers started.
    public var capture: [String: PostgresChangeFeed.Capability] { captureBox.withLockedValue { $0 } }

    init(
        supervisor: SubsystemSupervisor, webhooks: LiveWebhooks, crons: LiveCrons, workers: JobWorkers?, delivery: WebhookDelivery?,
        environment: JobsEnvironment?, logger: Logger
    ) {
        self.supervisor = supervisor
        self.webhooks = webhooks
        self.crons = crons
        self.workers = workers
        self.delivery = delivery
        self.environment = environment
        self.logger = logger
    }

    /// Loads the tenant's webhooks (one that cannot be opened is logged and left out, the others
    /// run) and builds the workers.
    static func make(
        tenant: String, supervisor: SubsystemSupervisor, environment: JobsEnvironment?, storage: TenantStorage?,
        limits: @escaping @Sendable () -> JobLimits, logger: Logger
    ) async throws -> JobsSubsystem {
        guard let environment else {
            return JobsSubsystem(
                supervisor: supervisor, webhooks: LiveWebhooks(tenant: tenant, webhooks: []), crons: LiveCrons(tenant: tenant, crons: []), workers: nil,
                delivery: nil, environment: nil, logger: logger)
        }
        var live: [LiveWebhook] = []
        for record in try await environment.store.webhooks(tenant: tenant) {
            do {
                live.append(try LiveWebhook(record: record, secretBox: environment.secretBox))
            } catch {
                logger.error("a webhook cannot be loaded; it delivers nothing", metadata: ["webhook": .string(record.name), "error": .string("\(error)")])
            }
        }
        let webhooks = LiveWebhooks(tenant: tenant, webhooks: live)
        var scheduled: [LiveCron] = []
        for record in try await environment.store.cronJobs(tenant: tenant) {
            do {
                scheduled.append(try LiveCron(record: record, secretBox: environment.secretBox))
            } catch {
                logger.error("a scheduled job cannot be loaded; it does not run", metadata: ["cron": .string(record.name), "error": .string("\(error)")])
            }
        }
        let crons = LiveCrons(tenant: tenant, crons: scheduled)
        let delivery = WebhookDelivery(webhooks: webhooks, client: environment.client)
        let fence = environment.fence
        var handlers: [String: any JobHandler] = [
            WebhookDelivery.kind: delivery,
            CronRun.kind: CronRun(crons: crons, client: environment.client),
            EmailDelivery.kind: EmailDelivery(store: environment.store, secretBox: environment.secretBox),
        ]
        if let storage { handlers[ImageVariantJob.kind] = ImageVariantJob(storage: storage) }
        let workers = JobWorkers(
            tenant: tenant, store: environment.store, fence: { fence(tenant) }, limits: limits, slots: environment.slots,
            handlers: handlers, settings: environment.settings, logger: logger)
        return JobsSubsystem(
            supervisor: supervisor, webhooks: webhooks, crons: crons, workers: workers, delivery: delivery, environment: environment, logger: logger)
    }

    /// Starts capture for the webhooks' sources and the workers.
    func start(hub: RealtimeHub) async {
        guard let workers, let environment else { return }
        if !webhooks.all.isEmpty {
            let webhooks = self.webhooks
            let store = environment.store
            let logger = self.logger
            let sources = hub.data.sources
            let capture = await hub.watch(webhooks.sources, as: "webhooks") { [weak workers] source, changes in
                let model = sources.source(named: source)?.model
                let jobs = webhooks.deliveries(source: source, changes: changes) { schema, table in
                    model?.entities.first { $0.schema == schema && $0.name == table }?.primaryKey ?? []
                }
                guard !jobs.isEmpty else { return }
                // Stored before the feed moves on; a control plane that is down holds the feed
                // back (its changes wait in the slot) rather than losing them.
                // In chunks: one transaction of 10,000 inserts would hold the embedded control
                // plane's single writer, and every other tenant's claims and settles, behind it.
                for start in stride(from: 0, to: jobs.count, by: 256) {
                    let chunk = Array(jobs[start..<min(start + 256, jobs.count)])
                    var pause = Duration.milliseconds(100)
                    while !Task.isCancelled {
                        do {
                            JobMetrics.enqueued(tenant: webhooks.tenant, kind: WebhookDelivery.kind, count: try await store.enqueue(chunk))
                            workers?.ring()
                            break
                        } catch {
                            logger.warning("cannot store webhook deliveries; trying again", metadata: ["error": .string("\(error)")])
                            try? await Task.sleep(for: pause)
                            pause = min(pause * 2, .seconds(5))
                        }
                    }
                }
            }
            captureBox.withLockedValue { $0 = capture }
            for (source, capability) in capture where capability != .available {
                logger.notice("webhooks on a source without change capture see REST writes only", metadata: ["source": .string(source)])
            }
        }
        await supervisor.start(ChildSpec(name: "job-workers") { [weak workers] in await workers?.run() })
        if !crons.all.isEmpty {
            let fence = environment.fence
            let tenant = crons.tenant
            let scheduler = CronScheduler(
                crons: crons, store: environment.store, fence: { fence(tenant) }, ring: { [weak workers] in workers?.ring() }, logger: logger)
            await supervisor.start(ChildSpec(name: "cron-scheduler") { try await scheduler.run() })
        }
    }

    /// Webhooks, jobs running now, and the store's counts by status.
    public func details() async -> [String: String] {
        guard let workers, let environment else { return [:] }
        var details = ["webhooks": String(webhooks.all.count), "cron": String(crons.all.count), "running": String(workers.running)]
        if let counts = try? await environment.store.jobCounts(tenant: webhooks.tenant) {
            for (status, count) in counts { details["jobs.\(status.rawValue)"] = String(count) }
        }
        return details
    }

    /// Whether the tree must stay up though nobody calls its API: webhooks listen, or jobs run.
    public var keepsTreeAlive: Bool {
        !webhooks.all.isEmpty || !crons.all.isEmpty || (workers?.running ?? 0) > 0
    }
}
