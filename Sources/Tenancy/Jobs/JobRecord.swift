import Foundation
import Runtime

/// One unit of durable background work of a tenant (a webhook delivery, a cron run, an e-mail):
/// what to do (`kind` and `payload`), when (`runAt`), how far it got (`status`, `attempt`), and
/// who holds it (`fence`: the tenant's fencing token of the owner that claimed it, with the
/// claim's expiry). Accepted jobs live in the control plane, never only in Redis.
public struct JobRecord: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case pending, running, succeeded
        /// Out of attempts: the dead-letter set, replayable.
        case failed
        case cancelled
    }

    public var tenant: String
    public var id: String
    public var kind: String
    /// Dedupes enqueues: a second job with the same key for the tenant is not created.
    public var key: String?
    /// What the job belongs to (a webhook's id, a cron job's name), for its logs.
    public var subject: String?
    public var payload: JSONObject
    public var status: Status
    /// Attempts started so far.
    public var attempt: Int
    public var maxAttempts: Int
    public var runAt: Date
    public var fence: Int64?
    public var claimExpiresAt: Date?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenant: String, id: String, kind: String, key: String?, subject: String? = nil, payload: JSONObject, status: Status = .pending, attempt: Int = 0, maxAttempts: Int,
        runAt: Date, fence: Int64? = nil, claimExpiresAt: Date? = nil, lastError: String? = nil, createdAt: Date, updatedAt: Date
    ) {
        self.tenant = tenant
        self.id = id
        self.kind = kind
        self.key = key
        self.subject = subject
        self.payload = payload
        self.status = status
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.runAt = runAt
        self.fence = fence
        self.claimExpiresAt = claimExpiresAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The durable job store: enqueue, claim with a visibility timeout under a fencing token, and
/// settle — every settle names the fence and attempt it claimed with, so an owner that lost the
/// tenant (a newer fence) cannot complete or retry a job a second time. At-least-once.
public protocol JobStore: Sendable {
    /// Stores the job; answers false when a job with the same tenant and key exists.
    func enqueue(_ job: JobRecord) async throws -> Bool
    /// Stores all of them in one transaction, skipping those whose id or key exists; answers how
    /// many were new. A change feed's batch commits before its position is confirmed.
    func enqueue(_ jobs: [JobRecord]) async throws -> Int
    /// A subject's jobs, newest first: `before` pages by creation time.
    func jobs(tenant: String, subject: String, status: JobRecord.Status?, before: Date?, limit: Int) async throws -> [JobRecord]
    /// Ids of a subject's jobs in `status` created at or after `since`, oldest first.
    func jobIDs(tenant: String, subject: String, status: JobRecord.Status, since: Date?, limit: Int) async throws -> [String]
    func recordAttempt(_ attempt: JobAttempt) async throws
    func attempts(tenant: String, job: String) async throws -> [JobAttempt]
    /// Pending and running jobs of the tenant (the backlog bound).
    func unsettledCount(tenant: String) async throws -> Int
    /// Settled jobs (and their attempts) older than the cut-offs go; answers how many.
    func pruneJobs(succeededBefore: Date, failedBefore: Date) async throws -> Int
    /// Up to `limit` due jobs of `tenant` (pending and due, or running with a lapsed claim), now
    /// running under `fence` until `visibleAgainAt`, their attempt counted.
    func claim(tenant: String, fence: Int64, limit: Int, now: Date, visibleAgainAt: Date) async throws -> [JobRecord]
    /// Settles a claimed attempt, with its log entry in the same transaction; false (and no log)
    /// when the claim is no longer this fence's and attempt's.
    func settle(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome, log: JobAttempt?) async throws -> Bool
    /// Several settles in one transaction (the workers group the attempts that end together);
    /// answers, in order, whether each was still its claim's.
    func settle(_ settles: [JobSettle]) async throws -> [Bool]
    /// When the tenant's next job can be claimed: the earliest due time of its pending jobs or
    /// claim expiry of its running ones; nil when it has neither. Idle workers sleep until then
    /// instead of polling (a read, where a claim is a write).
    func nextDue(tenant: String) async throws -> Date?
    /// Running jobs claimed under an older fence go back to pending at once (a new owner starts).
    func releaseClaims(tenant: String, olderThan fence: Int64) async throws -> Int
    func job(tenant: String, id: String) async throws -> JobRecord?
    /// The job enqueued with this dedupe key, if any.
    func job(tenant: String, key: String) async throws -> JobRecord?
    /// A pending job of `kind` goes to cancelled; false when it is not pending (or not there).
    func cancelPending(tenant: String, id: String, kind: String) async throws -> Bool
    /// A pending job of `kind` runs at another time; false when it is not pending.
    func reschedule(tenant: String, id: String, kind: String, at: Date) async throws -> Bool
    /// Failed (or other settled) jobs back to pending, attempts reset; answers how many.
    func requeue(tenant: String, ids: [String]) async throws -> Int
    func jobCounts(tenant: String) async throws -> [JobRecord.Status: Int]
}

/// How an attempt ended.
public enum JobOutcome: Sendable, Equatable {
    case succeeded
    /// Run again at `at` (a retry), with why this attempt failed.
    case retry(at: Date, error: String)
    /// No more attempts: to the dead-letter set.
    case failed(error: String)
    case cancelled
}

extension JobStore {
    public func settle(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome) async throws -> Bool {
        try await settle(tenant: tenant, id: id, fence: fence, attempt: attempt, outcome: outcome, log: nil)
    }
}

/// One attempt's settle, as `settle(_:)` takes them in bulk.
public struct JobSettle: Sendable {
    public var tenant: String
    public var id: String
    public var fence: Int64
    public var attempt: Int
    public var outcome: JobOutcome
    public var log: JobAttempt?

    public init(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome, log: JobAttempt?) {
        self.tenant = tenant
        self.id = id
        self.fence = fence
        self.attempt = attempt
        self.outcome = outcome
        self.log = log
    }
}
