import Foundation
import Logging
import NIOConcurrencyHelpers
import Tenancy

/// What runs one kind of job (a webhook delivery, a cron run, an e-mail).
public protocol JobHandler: Sendable {
    func run(_ job: JobRecord) async -> JobResult
}

/// How one attempt went, as its handler saw it.
public enum JobResult: Sendable, Equatable {
    case done
    /// Worth another attempt (a timeout, a 5xx); `retryAfter` when the other side asked.
    case retry(error: String, retryAfter: Duration? = nil)
    /// Never worth another attempt (a 4xx, a refused target): straight to the failed set.
    case fail(error: String)
}

/// One tenant's job workers: claims its due jobs from the durable store under the tree's
/// fencing token, runs at most `maxInFlight` at a time, and settles each attempt — retried on
/// the schedule, failed (the dead-letter set) when attempts run out. Claims made under an older
/// fence (a previous owner, this node before a restart) are taken back when the workers start.
public final class JobWorkers: Sendable {
    public struct Settings: Sendable {
        public var maxInFlight = 8
        /// How long a claimed job stays invisible to other claimers.
        public var visibility: Duration = .seconds(60)
        /// How often to look for due work when nobody rings.
        public var pollInterval: Duration = .seconds(1)
        public var schedule: RetrySchedule = .standard
        public init() {}
    }

    let tenant: String
    let store: any JobStore
    let fence: Int64
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

    public init(tenant: String, store: any JobStore, fence: Int64, handlers: [String: any JobHandler], settings: Settings = .init(), logger: Logger) {
        self.tenant = tenant
        self.store = store
        self.fence = fence
        self.handlers = handlers
        self.settings = settings
        self.logger = logger
    }

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
        do {
            let released = try await store.releaseClaims(tenant: tenant, olderThan: fence)
            if released > 0 { logger.info("took back jobs claimed by an earlier owner", metadata: ["jobs": .stringConvertible(released)]) }
        } catch {
            logger.warning("cannot take back earlier claims", metadata: ["error": .string("\(error)")])
        }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let free = settings.maxInFlight - inFlight.withLockedValue { $0 }
                var claimed: [JobRecord] = []
                if free > 0 {
                    let now = Date()
                    do {
                        claimed = try await store.claim(
                            tenant: tenant, fence: fence, limit: free, now: now,
                            visibleAgainAt: now.addingTimeInterval(Double(settings.visibility.components.seconds)))
                    } catch {
                        logger.warning("cannot claim jobs", metadata: ["error": .string("\(error)")])
                    }
                }
                for job in claimed {
                    inFlight.withLockedValue { $0 += 1 }
                    group.addTask {
                        await self.attempt(job)
                        self.inFlight.withLockedValue { $0 -= 1 }
                        self.ring()
                    }
                }
                // A full batch may mean more is due: claim again at once.
                if free > 0, claimed.count == free { continue }
                await waitForRing(at: settings.pollInterval)
            }
            group.cancelAll()
        }
    }

    /// Until a ring (new work, a freed slot) or the poll interval, whichever comes first.
    private func waitForRing(at poll: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: poll)
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

    func attempt(_ job: JobRecord) async {
        let outcome: JobOutcome
        if let handler = handlers[job.kind] {
            switch await handler.run(job) {
            case .done:
                outcome = .succeeded
            case .fail(let error):
                outcome = .failed(error: error)
            case .retry(let error, let retryAfter):
                if job.attempt < job.maxAttempts, let at = settings.schedule.next(after: job.attempt, now: Date(), retryAfter: retryAfter) {
                    outcome = .retry(at: at, error: error)
                } else {
                    outcome = .failed(error: error)
                }
            }
        } else {
            outcome = .failed(error: "no handler for jobs of kind '\(job.kind)'")
        }
        do {
            let settled = try await store.settle(tenant: tenant, id: job.id, fence: fence, attempt: job.attempt, outcome: outcome)
            if !settled {
                logger.notice("a job's claim was lost before it was settled; its new claimant runs it", metadata: ["job": .string(job.id)])
            }
        } catch {
            logger.warning("cannot settle a job; it runs again when its claim lapses", metadata: ["job": .string(job.id), "error": .string("\(error)")])
        }
    }
}
