import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import Tenancy

/// What runs one kind of job (a webhook delivery, a cron run, an e-mail).
public protocol JobHandler: Sendable {
    func run(_ job: JobRecord) async -> JobResult
    /// The attempt with its log entry, stored with the attempt's settle in one transaction.
    func runLogged(_ job: JobRecord) async -> (JobResult, JobAttempt?)
    /// When this job's failed attempts are retried; nil for the workers' default.
    func retrySchedule(for job: JobRecord) -> RetrySchedule?
}

extension JobHandler {
    public func retrySchedule(for job: JobRecord) -> RetrySchedule? { nil }
    public func runLogged(_ job: JobRecord) async -> (JobResult, JobAttempt?) { (await run(job), nil) }
    public func run(_ job: JobRecord) async -> JobResult { await runLogged(job).0 }
}

/// How one attempt went, as its handler saw it.
public enum JobResult: Sendable, Equatable {
    case done
    /// Worth another attempt (a timeout, a 5xx); `retryAfter` when the other side asked.
    case retry(error: String, retryAfter: Duration? = nil)
    /// Never worth another attempt (a 4xx, a refused target): straight to the failed set.
    case fail(error: String)
}

/// One tenant's job workers: claims its due jobs from the durable store under the tenant's
/// current fencing token, runs at most the tenant's `maxInFlight` at a time and starts at most
/// `perSecond`, each in one of the node's shared slots, and settles each attempt — retried on the
/// schedule, failed (the dead-letter set) when attempts run out. Claims made under an older fence
/// (a previous owner, this node before a restart) are taken back when the workers start. While the
/// node does not hold the tenant's lease (`fence` answers nil) nothing is claimed.
public final class JobWorkers: Sendable {
    public struct Settings: Sendable {
        /// How long a claimed job stays invisible to other claimers.
        public var visibility: Duration = .seconds(60)
        /// How often to look for due work when nobody rings while jobs run or are due.
        public var pollInterval: Duration = .seconds(1)
        /// With nothing due, the workers sleep until the store's next due time (a retry, a
        /// scheduled send, a claim that lapses), and at most this long (or `pollInterval`, if
        /// longer): new work rings them at once, so this only bounds a missed ring. Polling every
        /// second instead cost an idle node with 1,000 active tenants a third of a core.
        public var idlePoll: Duration = .seconds(5)
        public var schedule: RetrySchedule = .standard
        public init() {}
    }

    let tenant: String
    let store: any JobStore
    let fence: @Sendable () -> Int64?
    let limits: @Sendable () -> JobLimits
    let slots: JobSlots
    let handlers: [String: any JobHandler]
    let settings: Settings
    let logger: Logger
    /// A ring that came while nobody waited is kept, so no wake-up is lost.
    private enum Bell {
        case quiet
        case rung
        case waiting(CheckedContinuation<Void, Never>)
    }
    private let bell = NIOLockedValueBox(Bell.quiet)
    private let inFlight = NIOLockedValueBox(0)
    /// Settles waiting for the next group commit, and whether a flush is under way: attempts that
    /// end while one transaction runs are settled together in the next.
    private struct SettleQueue {
        var waiting: [(JobSettle, CheckedContinuation<Bool, any Error>)] = []
        var flushing = false
    }
    private let settleQueue = NIOLockedValueBox(SettleQueue())
    private let rate: TokenBucket
    /// Jobs whose payload names the same `order` key run one at a time, in claim order.
    let lanes = OrderedLanes()
    /// The payload field holding a job's ordering key.
    public static let orderingKey = "order"
    let metrics: JobMetrics

    public init(
        tenant: String, store: any JobStore, fence: @escaping @Sendable () -> Int64?, limits: @escaping @Sendable () -> JobLimits, slots: JobSlots,
        handlers: [String: any JobHandler], settings: Settings = .init(), logger: Logger
    ) {
        self.tenant = tenant
        self.store = store
        self.fence = fence
        self.limits = limits
        self.slots = slots
        self.handlers = handlers
        self.settings = settings
        self.logger = logger
        let current = limits()
        self.rate = TokenBucket(rate: current.perSecond, capacity: max(1, Int(current.perSecond)))
        self.metrics = JobMetrics(tenant: tenant)
    }

    /// Jobs of this tenant running now.
    public var running: Int { inFlight.withLockedValue { $0 } }

    /// New work is there (or a slot freed): look now rather than at the next poll.
    public func ring() {
        let waiting = bell.withLockedValue { bell -> CheckedContinuation<Void, Never>? in
            if case .waiting(let continuation) = bell {
                bell = .quiet
                return continuation
            }
            bell = .rung
            return nil
        }
        waiting?.resume()
    }

    /// Runs until cancelled (the tree stops).
    public func run() async {
        var releasedFor: Int64?
        var lastGauges = ContinuousClock.now - .seconds(60)
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                if ContinuousClock.now - lastGauges >= .seconds(5) {
                    lastGauges = .now
                    await refreshGauges()
                }
                guard let fence = fence() else {
                    await waitForRing(at: settings.pollInterval)
                    continue
                }
                if releasedFor != fence {
                    // A new owner (or this node after a restart) takes earlier claims back at once.
                    do {
                        let released = try await store.releaseClaims(tenant: tenant, olderThan: fence)
                        if released > 0 { logger.info("took back jobs claimed by an earlier owner", metadata: ["jobs": .stringConvertible(released)]) }
                        releasedFor = fence
                    } catch {
                        logger.warning("cannot take back earlier claims", metadata: ["error": .string("\(error)")])
                    }
                }
                let limits = limits()
                rate.reconfigure(rate: limits.perSecond, capacity: max(1, Int(limits.perSecond)))
                let running = inFlight.withLockedValue { $0 }
                let free = limits.maxInFlight - running
                // While jobs run, claim in batches of a quarter of the limit: each claim is a
                // transaction, and one per finished job would cost more than the jobs.
                guard free >= (running == 0 ? 1 : max(1, limits.maxInFlight / 4)) else {
                    await waitForRing(at: settings.pollInterval)
                    continue
                }
                // The node's slots first (in turn with other tenants), then this tenant's rate.
                guard await slots.acquire() else { break }
                var held = 1
                while held < free, slots.tryAcquire() { held += 1 }
                var allowed = 0
                var nextToken: Double = 0
                while allowed < held {
                    if case .limited(let after) = rate.take() {
                        nextToken = after
                        break
                    }
                    allowed += 1
                }
                var claimed: [JobRecord] = []
                if allowed > 0 {
                    let now = Date()
                    do {
                        claimed = try await store.claim(
                            tenant: tenant, fence: fence, limit: allowed, now: now,
                            visibleAgainAt: now.addingTimeInterval(Double(settings.visibility.components.seconds)))
                    } catch {
                        logger.warning("cannot claim jobs", metadata: ["error": .string("\(error)")])
                    }
                }
                // Unused tokens and slots go back.
                if allowed > claimed.count { rate.giveBack(allowed - claimed.count) }
                for _ in min(claimed.count, held)..<held { slots.release() }
                for job in claimed {
                    inFlight.withLockedValue { $0 += 1 }
                    // The ticket is taken here, in claim order; the tasks may start in any order.
                    let lane = job.payload[Self.orderingKey]?.stringValue.map { ($0, lanes.enter($0)) }
                    group.addTask {
                        if let (key, ticket) = lane {
                            if await self.lanes.wait(key, ticket: ticket) { await self.attempt(job, fence: fence) }
                            self.lanes.leave(key, ticket: ticket)
                        } else {
                            await self.attempt(job, fence: fence)
                        }
                        self.inFlight.withLockedValue { $0 -= 1 }
                        self.slots.release()
                        self.ring()
                    }
                }
                if allowed == 0 {
                    // Out of tokens: back when the next one is there.
                    try? await Task.sleep(for: .milliseconds(max(1, Int(nextToken * 1000))))
                    continue
                }
                // A full batch may mean more is due: claim again at once.
                if claimed.count == allowed { continue }
                await waitForRing(at: claimed.isEmpty && running == 0 ? await idleWait() : settings.pollInterval)
            }
            group.cancelAll()
        }
    }

    /// The backlog, failed set and running jobs, read from the store every few seconds.
    func refreshGauges() async {
        metrics.running.record(running)
        guard let counts = try? await store.jobCounts(tenant: tenant) else { return }
        metrics.pending.record((counts[.pending] ?? 0) + (counts[.running] ?? 0))
        metrics.failedSet.record(counts[.failed] ?? 0)
    }

    /// How long workers with nothing to run wait for a ring: until the tenant's next job is due,
    /// at most the idle poll. A job due already (claimed by nobody just now: a race) or a store
    /// that cannot answer keeps the ordinary poll.
    func idleWait() async -> Duration {
        let longest = max(settings.pollInterval, settings.idlePoll)
        let due: Date?
        do {
            due = try await store.nextDue(tenant: tenant)
        } catch {
            return settings.pollInterval
        }
        guard let due else { return longest }
        let seconds = due.timeIntervalSinceNow
        guard seconds > 0 else { return settings.pollInterval }
        // A few milliseconds late rather than early: an early wake would claim nothing yet.
        return min(longest, .milliseconds(Int64((seconds * 1000).rounded(.up)) + 5))
    }

    /// Until a ring (new work, a freed slot) or the poll interval, whichever comes first.
    private func waitForRing(at poll: Duration) async {
        // Only a timer that ran its course rings: a cancelled one ringing would wake the next wait
        // at once, and the loop would spin.
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: poll)) != nil else { return }
            ring()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let rung = bell.withLockedValue { bell -> Bool in
                    if case .rung = bell {
                        bell = .quiet
                        return true
                    }
                    bell = .waiting(continuation)
                    return false
                }
                if rung { continuation.resume() }
            }
        } onCancel: { [self] in
            ring()
        }
        timer.cancel()
    }

    func attempt(_ job: JobRecord, fence: Int64) async {
        let outcome: JobOutcome
        var log: JobAttempt?
        if let handler = handlers[job.kind] {
            let (result, entry) = await handler.runLogged(job)
            log = entry
            switch result {
            case .done:
                outcome = .succeeded
            case .fail(let error):
                outcome = .failed(error: error)
            case .retry(let error, let retryAfter):
                let schedule = handler.retrySchedule(for: job) ?? settings.schedule
                if job.attempt < job.maxAttempts, let at = schedule.next(after: job.attempt, now: Date(), retryAfter: retryAfter) {
                    outcome = .retry(at: at, error: error)
                } else {
                    outcome = .failed(error: error)
                }
            }
        } else {
            outcome = .failed(error: "no handler for jobs of kind '\(job.kind)'")
        }
        do {
            let settled = try await settleGrouped(JobSettle(tenant: tenant, id: job.id, fence: fence, attempt: job.attempt, outcome: outcome, log: log))
            if settled {
                metrics.settled(job, outcome: outcome)
            } else {
                logger.notice("a job's claim was lost before it was settled; its new claimant runs it", metadata: ["job": .string(job.id)])
            }
        } catch {
            logger.warning("cannot settle a job; it runs again when its claim lapses", metadata: ["job": .string(job.id), "error": .string("\(error)")])
        }
    }
}

extension JobWorkers {
    /// Settles with others that end about now, in one transaction.
    func settleGrouped(_ settle: JobSettle) async throws -> Bool {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            let startFlush = settleQueue.withLockedValue { queue -> Bool in
                queue.waiting.append((settle, continuation))
                guard !queue.flushing else { return false }
                queue.flushing = true
                return true
            }
            // The flush runs outside the settling job's task: a job cancelled now (the tree
            // stops) must not leave the others' settles unanswered.
            if startFlush { Task { await self.flushSettles() } }
        }
    }

    private func flushSettles() async {
        while true {
            let batch = settleQueue.withLockedValue { queue -> [(JobSettle, CheckedContinuation<Bool, any Error>)] in
                let batch = queue.waiting
                queue.waiting = []
                if batch.isEmpty { queue.flushing = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let results = try await store.settle(batch.map(\.0))
                for (index, entry) in batch.enumerated() { entry.1.resume(returning: index < results.count ? results[index] : false) }
            } catch {
                for entry in batch { entry.1.resume(throwing: error) }
            }
        }
    }
}

/// Per-tenant job figures on `/metrics`: counters of jobs enqueued, delivered, retried and dead
/// (sent to the failed set), enqueue-to-delivery latency, and gauges of the backlog (pending),
/// the failed set's size and the jobs running now.
public struct JobMetrics: Sendable {
    let delivered: Counter
    let retried: Counter
    let dead: Counter
    let latency: Metrics.Timer
    let pending: Gauge
    let failedSet: Gauge
    let running: Gauge

    init(tenant: String) {
        let dimensions = [("tenant", tenant)]
        delivered = Counter(label: "minibaas_jobs_delivered_total", dimensions: dimensions)
        retried = Counter(label: "minibaas_jobs_retried_total", dimensions: dimensions)
        dead = Counter(label: "minibaas_jobs_dead_total", dimensions: dimensions)
        latency = Metrics.Timer(label: "minibaas_jobs_latency_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        pending = Gauge(label: "minibaas_jobs_pending", dimensions: dimensions)
        failedSet = Gauge(label: "minibaas_jobs_failed", dimensions: dimensions)
        running = Gauge(label: "minibaas_jobs_in_flight", dimensions: dimensions)
    }

    /// Counts jobs stored for `tenant`, by kind.
    public static func enqueued(tenant: String, kind: String, count: Int = 1) {
        guard count > 0 else { return }
        Counter(label: "minibaas_jobs_enqueued_total", dimensions: [("tenant", tenant), ("kind", kind)]).increment(by: count)
    }

    /// Latency is from the job's creation to its successful settle: enqueue to delivery.
    func settled(_ job: JobRecord, outcome: JobOutcome) {
        switch outcome {
        case .succeeded:
            delivered.increment()
            latency.recordNanoseconds(Int64(max(0, Date().timeIntervalSince(job.createdAt)) * 1e9))
        case .retry: retried.increment()
        case .failed: dead.increment()
        case .cancelled: break
        }
    }
}
