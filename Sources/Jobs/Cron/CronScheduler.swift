import Foundation
import Logging
import Tenancy

/// Fires a tenant's scheduled jobs on the lease owner: when a job's next run is due it stores the
/// run (its id derived from the scheduled time, so firing twice stores one) and moves the next run
/// on with a compare-and-set. A run whose predecessor is still pending or running is recorded as
/// `skipped`; a run that fell due while no node ran the tenant is run once if it is at most 60 s
/// late, else recorded as `missed` and the schedule resumes from now.
public struct CronScheduler: Sendable {
    public static let lateness: TimeInterval = 60

    let crons: LiveCrons
    let store: any JobStore & CronStore
    let fence: @Sendable () -> Int64?
    let ring: @Sendable () -> Void
    let logger: Logger

    public init(crons: LiveCrons, store: any JobStore & CronStore, fence: @escaping @Sendable () -> Int64?, ring: @escaping @Sendable () -> Void, logger: Logger) {
        self.crons = crons
        self.store = store
        self.fence = fence
        self.ring = ring
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled {
            var wait: TimeInterval = 1
            if fence() != nil {
                wait = try await tick(now: Date())
            }
            try await Task.sleep(for: .milliseconds(Int(max(0.05, min(wait, 5)) * 1000)))
        }
    }

    /// Fires what is due; answers the seconds until the next run.
    func tick(now: Date) async throws -> TimeInterval {
        var soonest = TimeInterval.infinity
        let stored = Dictionary(uniqueKeysWithValues: try await store.cronJobs(tenant: crons.tenant).map { ($0.name, $0.nextRunAt) })
        for cron in crons.all where cron.record.spec.enabled {
            let name = cron.record.name
            guard stored.keys.contains(name) else { continue }
            let due = stored[name] ?? nil
            guard let due else {
                _ = try await store.advanceCron(tenant: crons.tenant, name: name, expected: nil, next: cron.schedule.next(after: now))
                soonest = 0
                continue
            }
            if due > now {
                soonest = min(soonest, due.timeIntervalSince(now))
                continue
            }
            var next = cron.schedule.next(after: due)
            if let upcoming = next, upcoming <= now { next = cron.schedule.next(after: now) }
            // Claim this scheduled time first: whoever moves it on fires it.
            guard try await store.advanceCron(tenant: crons.tenant, name: name, expected: due, next: next) else { continue }
            let run: JobRecord
            if now.timeIntervalSince(due) > Self.lateness {
                run = CronRun.job(tenant: crons.tenant, cron: cron, scheduledAt: due, status: .cancelled, why: "missed: no node ran the tenant then", now: now)
            } else if try await stillBusy(name) {
                run = CronRun.job(tenant: crons.tenant, cron: cron, scheduledAt: due, status: .cancelled, why: "skipped: the previous run has not finished", now: now)
            } else {
                run = CronRun.job(tenant: crons.tenant, cron: cron, scheduledAt: due, now: now)
            }
            JobMetrics.enqueued(tenant: crons.tenant, kind: CronRun.kind, count: try await store.enqueue([run]))
            if run.status == .pending { ring() }
            if let next { soonest = min(soonest, max(0, next.timeIntervalSince(now))) }
        }
        return soonest
    }

    private func stillBusy(_ name: String) async throws -> Bool {
        let subject = LiveCron.subject(name)
        for status in [JobRecord.Status.running, .pending] where !(try await store.jobs(tenant: crons.tenant, subject: subject, status: status, before: nil, limit: 1)).isEmpty {
            return true
        }
        return false
    }
}
