import Foundation
import NIOCore
import Runtime
import SQLiteNIO

/// Durable jobs in the embedded control plane. SQLite has one writer, so a claim (select due
/// rows, mark them running) is one transaction and no two claims overlap.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }

    public func enqueue(_ job: JobRecord) async throws -> Bool {
        try await transaction(lane: job.tenant) { db in
            if let key = job.key,
                !(try db.rows("SELECT 1 FROM jobs WHERE tenant = ? AND dedupe_key = ?", [.text(job.tenant), .text(key)])).isEmpty
            {
                return false
            }
            _ = try db.rows(
                """
                INSERT INTO jobs (tenant, id, kind, dedupe_key, subject, payload, status, attempt, max_attempts, run_at_ms, fence, claim_expires_at_ms,
                  last_error, created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)
                """,
                [.text(job.tenant), .text(job.id), .text(job.kind), job.key.map { .text($0) } ?? .null, job.subject.map { .text($0) } ?? .null,
                 .text(StoreCoding.encodeObject(job.payload)),
                 .text(job.status.rawValue), .integer(job.attempt), .integer(job.maxAttempts), Self.ms(job.runAt), Self.ms(job.createdAt),
                 Self.ms(job.updatedAt)])
            return true
        }
    }

    public func claim(tenant: String, fence: Int64, limit: Int, now: Date, visibleAgainAt: Date) async throws -> [JobRecord] {
        // One statement, so no BEGIN/COMMIT round trips: lapsed claims first, then due jobs in
        // order. Two index walks rather than one OR: a tenant with a backlog of 100,000 pending
        // jobs must not make every claim scan it.
        let rows = try await statement(
            lane: tenant,
            """
            UPDATE jobs SET status = 'running', attempt = attempt + 1, fence = ?, claim_expires_at_ms = ?, updated_at_ms = ?
            WHERE tenant = ? AND id IN (
              SELECT id FROM (SELECT id FROM jobs WHERE tenant = ? AND status = 'running' AND claim_expires_at_ms <= ? LIMIT ?)
              UNION ALL
              SELECT id FROM (SELECT id FROM jobs WHERE tenant = ? AND status = 'pending' AND run_at_ms <= ? ORDER BY run_at_ms LIMIT ?)
              LIMIT ?)
            RETURNING rowid AS claim_order, *
            """,
            [.integer(Int(fence)), Self.ms(visibleAgainAt), Self.ms(now), .text(tenant), .text(tenant), Self.ms(now), .integer(limit),
             .text(tenant), Self.ms(now), .integer(limit), .integer(limit)])
        // In the order they became due, and in the order they were stored when that is the same
        // millisecond (a row's INSERT before its UPDATE): RETURNING follows the index it updated by.
        return try rows.map { (order: $0.column("claim_order")?.integer ?? 0, job: try Self.job(from: $0)) }
            .sorted { ($0.job.runAt, $0.order) < ($1.job.runAt, $1.order) }.map(\.job)
    }

    public func settle(tenant: String, id: String, fence: Int64, attempt: Int, outcome: JobOutcome, log: JobAttempt?) async throws -> Bool {
        try await settle([JobSettle(tenant: tenant, id: id, fence: fence, attempt: attempt, outcome: outcome, log: log)])[0]
    }

    /// Settles attempts in one transaction: the successes of each tenant in one UPDATE, other
    /// outcomes one by one, and every log entry of a settled attempt in one INSERT — a few round
    /// trips to the writer for a whole batch instead of two per job.
    public func settle(_ settles: [JobSettle]) async throws -> [Bool] {
        guard !settles.isEmpty else { return [] }
        let now = Self.ms(Date())
        return try await transaction(lane: settles[0].tenant) { db in
            var results = [Bool](repeating: false, count: settles.count)
            let succeeded = settles.indices.filter { if case .succeeded = settles[$0].outcome { true } else { false } }
            for tenant in Set(succeeded.map { settles[$0].tenant }) {
                let mine = succeeded.filter { settles[$0].tenant == tenant }
                var binds: [SQLiteData] = [now, .text(tenant)]
                for index in mine { binds += [.text(settles[index].id), .integer(Int(settles[index].fence)), .integer(settles[index].attempt)] }
                let rows = try db.rows(
                    """
                    UPDATE jobs SET status = 'succeeded', fence = NULL, claim_expires_at_ms = NULL, updated_at_ms = ?
                    WHERE tenant = ? AND status = 'running' AND (id, fence, attempt) IN (VALUES \(Array(repeating: "(?, ?, ?)", count: mine.count).joined(separator: ", ")))
                    RETURNING id
                    """, binds)
                let settledIDs = Set(rows.compactMap { $0.column("id")?.string })
                for index in mine { results[index] = settledIDs.contains(settles[index].id) }
            }
            for (index, settle) in settles.enumerated() {
                let (sql, binds): (String, [SQLiteData])
                switch settle.outcome {
                case .succeeded:
                    continue
                case .retry(let at, let error):
                    (sql, binds) = ("status = 'pending', fence = NULL, claim_expires_at_ms = NULL, run_at_ms = ?, last_error = ?, updated_at_ms = ?",
                                    [Self.ms(at), .text(error), now])
                case .failed(let error):
                    (sql, binds) = ("status = 'failed', fence = NULL, claim_expires_at_ms = NULL, last_error = ?, updated_at_ms = ?", [.text(error), now])
                case .cancelled:
                    (sql, binds) = ("status = 'cancelled', fence = NULL, claim_expires_at_ms = NULL, updated_at_ms = ?", [now])
                }
                results[index] = !(try db.rows(
                    "UPDATE jobs SET \(sql) WHERE tenant = ? AND id = ? AND status = 'running' AND fence = ? AND attempt = ? RETURNING 1",
                    binds + [.text(settle.tenant), .text(settle.id), .integer(Int(settle.fence)), .integer(settle.attempt)])).isEmpty
            }
            let logs = settles.indices.compactMap { results[$0] ? settles[$0].log : nil }
            try Self.insertAttempts(logs, into: db)
            return results
        }
    }

    public func releaseClaims(tenant: String, olderThan fence: Int64) async throws -> Int {
        try await transaction { db in
            try db.rows(
                "UPDATE jobs SET status = 'pending', fence = NULL, claim_expires_at_ms = NULL WHERE tenant = ? AND status = 'running' AND fence < ? RETURNING 1",
                [.text(tenant), .integer(Int(fence))]
            ).count
        }
    }

    public func job(tenant: String, id: String) async throws -> JobRecord? {
        try await read("SELECT * FROM jobs WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)]).first.map(Self.job(from:))
    }

    public func requeue(tenant: String, ids: [String]) async throws -> Int {
        try await transaction { db in
            var count = 0
            for id in Set(ids) {
                count += try db.rows(
                    """
                    UPDATE jobs SET status = 'pending', attempt = 0, fence = NULL, claim_expires_at_ms = NULL, run_at_ms = ?, updated_at_ms = ?
                    WHERE tenant = ? AND id = ? AND status IN ('failed', 'succeeded', 'cancelled') RETURNING 1
                    """, [Self.ms(Date()), Self.ms(Date()), .text(tenant), .text(id)]
                ).count
            }
            return count
        }
    }

    public func nextDue(tenant: String) async throws -> Date? {
        // Two walks of the (tenant, status, …) index: the first pending job by due time, and the
        // running ones (as many as the tenant runs at once).
        let rows = try await read(
            """
            SELECT min(t) AS t FROM (
              SELECT min(run_at_ms) AS t FROM jobs WHERE tenant = ? AND status = 'pending'
              UNION ALL
              SELECT min(claim_expires_at_ms) FROM jobs WHERE tenant = ? AND status = 'running')
            """, [.text(tenant), .text(tenant)])
        return rows.first?.column("t")?.integer.map { StoreCoding.date(milliseconds: Int64($0)) }
    }

    public func jobCounts(tenant: String) async throws -> [JobRecord.Status: Int] {
        var counts: [JobRecord.Status: Int] = [:]
        for row in try await read("SELECT status, count(*) AS n FROM jobs WHERE tenant = ? GROUP BY status", [.text(tenant)]) {
            if let status = row.column("status")?.string.flatMap(JobRecord.Status.init(rawValue:)) { counts[status] = row.column("n")?.integer ?? 0 }
        }
        return counts
    }

    static func job(from row: SQLiteResultRow) throws -> JobRecord {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let kind = row.column("kind")?.string,
            let status = row.column("status")?.string.flatMap(JobRecord.Status.init(rawValue:))
        else { throw ControlPlaneError.corrupt("job row") }
        func date(_ column: String) -> Date? { row.column(column)?.integer.map { StoreCoding.date(milliseconds: Int64($0)) } }
        return JobRecord(
            tenant: tenant, id: id, kind: kind, key: row.column("dedupe_key")?.string, subject: row.column("subject")?.string,
            payload: (row.column("payload")?.string).flatMap { try? StoreCoding.decodeObject($0) } ?? [:], status: status,
            attempt: row.column("attempt")?.integer ?? 0, maxAttempts: row.column("max_attempts")?.integer ?? 1, runAt: date("run_at_ms") ?? Date(),
            fence: row.column("fence")?.integer.map(Int64.init), claimExpiresAt: date("claim_expires_at_ms"), lastError: row.column("last_error")?.string,
            createdAt: date("created_at_ms") ?? Date(), updatedAt: date("updated_at_ms") ?? Date())
    }
}
