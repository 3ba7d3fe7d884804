import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// Durable jobs in the cluster's control plane: claims take due rows with `FOR UPDATE SKIP
/// LOCKED`, so concurrent claimers never block on or double-take a row.
extension PostgresControlPlaneStore {
    static let jobColumns =
        "tenant, id, kind, dedupe_key, payload::text, status, attempt, max_attempts, run_at, fence, claim_expires_at, last_error, created_at, updated_at, subject"
    private typealias JobRow = (String, String, String, String?, String, String, Int, Int, Date, Int64?, Date?, String?, Date, Date, String?)

    public func enqueue(_ job: JobRecord) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            INSERT INTO minibaas.jobs (tenant, id, kind, dedupe_key, subject, payload, status, attempt, max_attempts, run_at, created_at, updated_at)
            VALUES (\(job.tenant), \(job.id), \(job.kind), \(job.key), \(job.subject), \(StoreCoding.encodeObject(job.payload))::jsonb, \(job.status.rawValue),
                    \(job.attempt), \(job.maxAttempts), \(job.runAt), \(job.createdAt), \(job.updatedAt))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger))
    }

    public func claim(tenant: String, fence: Int64, limit: Int, now: Date, visibleAgainAt: Date) async throws -> [JobRecord] {
        // Two index walks rather than one OR, so a tenant's large backlog is never scanned; rows
        // locked beyond the limit are let go when the statement ends.
        // In the order they became due and were stored (deliveries of one batch are stored a
        // microsecond apart): RETURNING's order is not the CTE's.
        try await jobs(client.query(
            """
            WITH lapsed AS (
              SELECT tenant, id, run_at FROM minibaas.jobs WHERE tenant = \(tenant) AND status = 'running' AND claim_expires_at <= \(now)
              LIMIT \(limit) FOR UPDATE SKIP LOCKED
            ), due AS (
              SELECT tenant, id, run_at FROM minibaas.jobs WHERE tenant = \(tenant) AND status = 'pending' AND run_at <= \(now)
              ORDER BY run_at, created_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
            ), chosen AS (
              SELECT tenant, id FROM (SELECT * FROM lapsed UNION ALL SELECT * FROM due) AS both_kinds LIMIT \(limit)
            )
            UPDATE minibaas.jobs j SET status = 'running', attempt = attempt + 1, fence = \(fence), claim_expires_at = \(visibleAgainAt), updated_at = \(now)
            FROM chosen WHERE j.tenant = chosen.tenant AND j.id = chosen.id
            RETURNING \(unescaped: Self.jobColumns.split(separator: ",").map { "j." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            """, logger: logger)).sorted { ($0.runAt, $0.createdAt) < ($1.runAt, $1.createdAt) }
    }

    public func settle(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome, log: JobAttempt?) async throws -> Bool {
        let one = JobSettle(tenant: tenant, id: id, fence: fence, attempt: attempt, outcome: outcome, log: log)
        guard log != nil else { return try await Self.hasRow(client.query(Self.settleQuery(one), logger: logger)) }
        return try await settle([one])[0]
    }

    public func settle(_ settles: [JobSettle]) async throws -> [Bool] {
        guard !settles.isEmpty else { return [] }
        return try await client.withTransaction(logger: logger) { db in
            var results: [Bool] = []
            for settle in settles {
                let settled = try await Self.hasRow(db.query(Self.settleQuery(settle), logger: self.logger))
                if settled, let log = settle.log { _ = try await Self.hasRow(db.query(Self.attemptInsert(log), logger: self.logger)) }
                results.append(settled)
            }
            return results
        }
    }

    static func settleQuery(_ settle: JobSettle) -> PostgresQuery {
        let now = Date()
        let (tenant, id, fence, attempt) = (settle.tenant, settle.id, settle.fence, settle.attempt)
        switch settle.outcome {
        case .succeeded:
            return """
                UPDATE minibaas.jobs SET status = 'succeeded', fence = NULL, claim_expires_at = NULL, updated_at = \(now)
                WHERE tenant = \(tenant) AND id = \(id) AND status = 'running' AND fence = \(fence) AND attempt = \(attempt) RETURNING 1
                """
        case .retry(let at, let error):
            return """
                UPDATE minibaas.jobs SET status = 'pending', fence = NULL, claim_expires_at = NULL, run_at = \(at), last_error = \(error), updated_at = \(now)
                WHERE tenant = \(tenant) AND id = \(id) AND status = 'running' AND fence = \(fence) AND attempt = \(attempt) RETURNING 1
                """
        case .failed(let error):
            return """
                UPDATE minibaas.jobs SET status = 'failed', fence = NULL, claim_expires_at = NULL, last_error = \(error), updated_at = \(now)
                WHERE tenant = \(tenant) AND id = \(id) AND status = 'running' AND fence = \(fence) AND attempt = \(attempt) RETURNING 1
                """
        case .cancelled:
            return """
                UPDATE minibaas.jobs SET status = 'cancelled', fence = NULL, claim_expires_at = NULL, updated_at = \(now)
                WHERE tenant = \(tenant) AND id = \(id) AND status = 'running' AND fence = \(fence) AND attempt = \(attempt) RETURNING 1
                """
        }
    }

    public func releaseClaims(tenant: String, olderThan fence: Int64) async throws -> Int {
        var count = 0
        for try await _ in try await client.query(
            """
            UPDATE minibaas.jobs SET status = 'pending', fence = NULL, claim_expires_at = NULL
            WHERE tenant = \(tenant) AND status = 'running' AND fence < \(fence) RETURNING 1
            """, logger: logger) { count += 1 }
        return count
    }

    public func job(tenant: String, id: String) async throws -> JobRecord? {
        try await jobs(client.query(
            "SELECT \(unescaped: Self.jobColumns) FROM minibaas.jobs WHERE tenant = \(tenant) AND id = \(id)", logger: logger)).first
    }

    public func requeue(tenant: String, ids: [String]) async throws -> Int {
        let now = Date()
        var count = 0
        for try await _ in try await client.query(
            """
            UPDATE minibaas.jobs SET status = 'pending', attempt = 0, fence = NULL, claim_expires_at = NULL, run_at = \(now), updated_at = \(now)
            WHERE tenant = \(tenant) AND id = ANY(\(Array(Set(ids)))) AND status IN ('failed', 'succeeded', 'cancelled') RETURNING 1
            """, logger: logger) { count += 1 }
        return count
    }

    public func nextDue(tenant: String) async throws -> Date? {
        for try await due in try await client.query(
            """
            SELECT least(
              (SELECT min(run_at) FROM minibaas.jobs WHERE tenant = \(tenant) AND status = 'pending'),
              (SELECT min(claim_expires_at) FROM minibaas.jobs WHERE tenant = \(tenant) AND status = 'running'))
            """, logger: logger
        ).decode(Date?.self) {
            return due
        }
        return nil
    }

    public func jobCounts(tenant: String) async throws -> [JobRecord.Status: Int] {
        var counts: [JobRecord.Status: Int] = [:]
        for try await (status, count) in try await client.query(
            "SELECT status, count(*)::bigint FROM minibaas.jobs WHERE tenant = \(tenant) GROUP BY status", logger: logger
        ).decode((String, Int).self) {
            if let status = JobRecord.Status(rawValue: status) { counts[status] = count }
        }
        return counts
    }

    func jobs(_ rows: PostgresRowSequence) async throws -> [JobRecord] {
        var jobs: [JobRecord] = []
        for try await row in rows.decode(JobRow.self) {
            guard let status = JobRecord.Status(rawValue: row.5) else { throw ControlPlaneError.corrupt("job row") }
            jobs.append(JobRecord(
                tenant: row.0, id: row.1, kind: row.2, key: row.3, subject: row.14, payload: (try? StoreCoding.decodeObject(row.4)) ?? [:], status: status,
                attempt: row.6, maxAttempts: row.7, runAt: row.8, fence: row.9, claimExpiresAt: row.10, lastError: row.11, createdAt: row.12,
                updatedAt: row.13))
        }
        return jobs
    }
}
