import Foundation
import Runtime
import SQLiteNIO

/// Webhooks and job logs in the embedded control plane.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }

    public func createWebhook(_ webhook: WebhookRecord) async throws {
        try await transaction { db in
            guard try db.rows("SELECT 1 FROM webhooks WHERE tenant = ? AND name = ?", [.text(webhook.tenant), .text(webhook.name)]).isEmpty
            else { throw ControlPlaneError.duplicate("webhook '\(webhook.name)'") }
            _ = try db.rows(
                "INSERT INTO webhooks (tenant, id, name, spec, secrets, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(webhook.tenant), .text(webhook.id), .text(webhook.name), .text(StoreCoding.encodeDocument(webhook.spec)),
                 .text(StoreCoding.encodeDocument(webhook.secrets)), Self.ms(webhook.createdAt), Self.ms(webhook.updatedAt)])
        }
    }

    public func webhooks(tenant: String) async throws -> [WebhookRecord] {
        try await read("SELECT * FROM webhooks WHERE tenant = ? ORDER BY name", [.text(tenant)]).map(Self.webhook(from:))
    }

    public func webhook(tenant: String, id: String) async throws -> WebhookRecord? {
        try await read("SELECT * FROM webhooks WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)]).first.map(Self.webhook(from:))
    }

    public func updateWebhook(_ webhook: WebhookRecord) async throws -> Bool {
        try await transaction { db in
            guard try db.rows(
                "SELECT 1 FROM webhooks WHERE tenant = ? AND name = ? AND id <> ?", [.text(webhook.tenant), .text(webhook.name), .text(webhook.id)]
            ).isEmpty else { throw ControlPlaneError.duplicate("webhook '\(webhook.name)'") }
            return !(try db.rows(
                "UPDATE webhooks SET name = ?, spec = ?, secrets = ?, updated_at_ms = ? WHERE tenant = ? AND id = ? RETURNING 1",
                [.text(webhook.name), .text(StoreCoding.encodeDocument(webhook.spec)), .text(StoreCoding.encodeDocument(webhook.secrets)),
                 Self.ms(webhook.updatedAt), .text(webhook.tenant), .text(webhook.id)])).isEmpty
        }
    }

    public func deleteWebhook(tenant: String, id: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows("DELETE FROM webhooks WHERE tenant = ? AND id = ? RETURNING 1", [.text(tenant), .text(id)])).isEmpty
        }
    }

    public func tenantsWithJobWork() async throws -> [String] {
        try await read(
            """
            SELECT tenant FROM webhooks UNION SELECT tenant FROM cron_jobs UNION SELECT DISTINCT tenant FROM jobs WHERE status IN ('pending', 'running') ORDER BY 1
            """
        ).compactMap { $0.column("tenant")?.string }
    }

    // MARK: - Job logs

    public func enqueue(_ jobs: [JobRecord]) async throws -> Int {
        guard !jobs.isEmpty else { return 0 }
        return try await transaction(lane: jobs[0].tenant) { db in
            var added = 0
            for job in jobs {
                added += try db.rows(
                    """
                    INSERT INTO jobs (tenant, id, kind, dedupe_key, subject, payload, status, attempt, max_attempts, run_at_ms, last_error,
                      created_at_ms, updated_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1
                    """,
                    [.text(job.tenant), .text(job.id), .text(job.kind), job.key.map { .text($0) } ?? .null, job.subject.map { .text($0) } ?? .null,
                     .text(StoreCoding.encodeObject(job.payload)), .text(job.status.rawValue), .integer(job.attempt), .integer(job.maxAttempts),
                     Self.ms(job.runAt), job.lastError.map { .text($0) } ?? .null, Self.ms(job.createdAt), Self.ms(job.updatedAt)]
                ).count
            }
            return added
        }
    }

    public func jobs(tenant: String, subject: String, status: JobRecord.Status?, before: Date?, limit: Int) async throws -> [JobRecord] {
        var sql = "SELECT * FROM jobs WHERE tenant = ? AND subject = ?"
        var binds: [SQLiteData] = [.text(tenant), .text(subject)]
        if let status {
            sql += " AND status = ?"
            binds.append(.text(status.rawValue))
        }
        if let before {
            sql += " AND created_at_ms < ?"
            binds.append(Self.ms(before))
        }
        sql += " ORDER BY created_at_ms DESC, id DESC LIMIT ?"
        binds.append(.integer(limit))
        return try await read(sql, binds).map(Self.job(from:))
    }

    public func jobIDs(tenant: String, subject: String, status: JobRecord.Status, since: Date?, limit: Int) async throws -> [String] {
        try await read(
            "SELECT id FROM jobs WHERE tenant = ? AND subject = ? AND status = ? AND created_at_ms >= ? ORDER BY created_at_ms LIMIT ?",
            [.text(tenant), .text(subject), .text(status.rawValue), Self.ms(since ?? .distantPast), .integer(limit)]
        ).compactMap { $0.column("id")?.string }
    }

    public func recordAttempt(_ attempt: JobAttempt) async throws {
        try await transaction { db in try Self.insertAttempt(attempt, into: db) }
    }

    /// Numbered in the log across replays: a replayed job's attempts continue its history.
    static func insertAttempt(_ attempt: JobAttempt, into db: SQLiteSession) throws {
        _ = try db.rows(
            """
            INSERT INTO job_attempts (tenant, job_id, attempt, at_ms, http_status, latency_ms, error, response_body)
            SELECT ?, ?, coalesce(max(attempt), 0) + 1, ?, ?, ?, ?, ? FROM job_attempts WHERE tenant = ? AND job_id = ?
            """,
            [.text(attempt.tenant), .text(attempt.job), Self.ms(attempt.at), attempt.httpStatus.map { .integer($0) } ?? .null,
             .integer(attempt.latencyMs), attempt.error.map { .text($0) } ?? .null, attempt.responseBody.map { .text($0) } ?? .null,
             .text(attempt.tenant), .text(attempt.job)])
    }

    /// Many log entries in one statement (each job appears once: a batch settles a job once).
    static func insertAttempts(_ attempts: [JobAttempt], into db: SQLiteSession) throws {
        guard !attempts.isEmpty else { return }
        if attempts.count == 1 { return try insertAttempt(attempts[0], into: db) }
        var binds: [SQLiteData] = []
        for attempt in attempts {
            binds += [.text(attempt.tenant), .text(attempt.job), Self.ms(attempt.at), attempt.httpStatus.map { .integer($0) } ?? .null,
                      .integer(attempt.latencyMs), attempt.error.map { .text($0) } ?? .null, attempt.responseBody.map { .text($0) } ?? .null]
        }
        _ = try db.rows(
            """
            INSERT INTO job_attempts (tenant, job_id, attempt, at_ms, http_status, latency_ms, error, response_body)
            SELECT v.column1, v.column2,
              coalesce((SELECT max(a.attempt) FROM job_attempts a WHERE a.tenant = v.column1 AND a.job_id = v.column2), 0) + 1,
              v.column3, v.column4, v.column5, v.column6, v.column7
            FROM (VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: attempts.count).joined(separator: ", "))) AS v
            """, binds)
    }

    public func attempts(tenant: String, job: String) async throws -> [JobAttempt] {
        try await read("SELECT * FROM job_attempts WHERE tenant = ? AND job_id = ? ORDER BY attempt", [.text(tenant), .text(job)]).map { row in
            JobAttempt(
                tenant: tenant, job: job, attempt: row.column("attempt")?.integer ?? 0,
                at: StoreCoding.date(milliseconds: Int64(row.column("at_ms")?.integer ?? 0)), httpStatus: row.column("http_status")?.integer,
                latencyMs: row.column("latency_ms")?.integer ?? 0, error: row.column("error")?.string, responseBody: row.column("response_body")?.string)
        }
    }

    public func unsettledCount(tenant: String) async throws -> Int {
        try await read("SELECT count(*) AS n FROM jobs WHERE tenant = ? AND status IN ('pending', 'running')", [.text(tenant)])
            .first?.column("n")?.integer ?? 0
    }

    public func pruneJobs(succeededBefore: Date, failedBefore: Date) async throws -> Int {
        try await transaction { db in
            try db.rows(
                """
                DELETE FROM jobs WHERE (status IN ('succeeded', 'cancelled') AND updated_at_ms < ?) OR (status = 'failed' AND updated_at_ms < ?)
                RETURNING 1
                """, [Self.ms(succeededBefore), Self.ms(failedBefore)]
            ).count
        }
    }

    private static func webhook(from row: SQLiteResultRow) throws -> WebhookRecord {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let name = row.column("name")?.string,
            let spec = row.column("spec")?.string, let secrets = row.column("secrets")?.string
        else { throw ControlPlaneError.corrupt("webhook row") }
        return WebhookRecord(
            tenant: tenant, id: id, name: name, spec: try StoreCoding.decodeDocument(WebhookSpec.self, spec),
            secrets: try StoreCoding.decodeDocument([SealedWebhookSecret].self, secrets),
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
            updatedAt: StoreCoding.date(milliseconds: Int64(row.column("updated_at_ms")?.integer ?? 0)))
    }
}

/// Single jobs by key, cancelled or moved while pending.
extension SQLiteControlPlaneStore {
    public func job(tenant: String, key: String) async throws -> JobRecord? {
        try await read("SELECT * FROM jobs WHERE tenant = ? AND dedupe_key = ?", [.text(tenant), .text(key)]).first.map(Self.job(from:))
    }

    public func cancelPending(tenant: String, id: String, kind: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                "UPDATE jobs SET status = 'cancelled', updated_at_ms = ? WHERE tenant = ? AND id = ? AND kind = ? AND status = 'pending' RETURNING 1",
                [.integer(Int(StoreCoding.milliseconds(Date()))), .text(tenant), .text(id), .text(kind)])).isEmpty
        }
    }

    public func reschedule(tenant: String, id: String, kind: String, at: Date) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                "UPDATE jobs SET run_at_ms = ?, updated_at_ms = ? WHERE tenant = ? AND id = ? AND kind = ? AND status = 'pending' RETURNING 1",
                [.integer(Int(StoreCoding.milliseconds(at))), .integer(Int(StoreCoding.milliseconds(Date()))), .text(tenant), .text(id), .text(kind)])).isEmpty
        }
    }
}

/// E-mail templates in the embedded control plane.
extension SQLiteControlPlaneStore {
    public func createEmailTemplate(_ template: EmailTemplateRecord) async throws {
        try await transaction { db in
            if let alias = template.content.alias,
                !(try db.rows("SELECT 1 FROM email_templates WHERE tenant = ? AND alias = ?", [.text(template.tenant), .text(alias)])).isEmpty
            {
                throw ControlPlaneError.duplicate("template alias '\(alias)'")
            }
            _ = try db.rows(
                "INSERT INTO email_templates (tenant, id, alias, content, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(template.tenant), .text(template.id), template.content.alias.map { .text($0) } ?? .null,
                 .text(StoreCoding.encodeDocument(template.content)), .integer(Int(StoreCoding.milliseconds(template.createdAt))),
                 .integer(Int(StoreCoding.milliseconds(template.updatedAt)))])
        }
    }

    public func emailTemplates(tenant: String) async throws -> [EmailTemplateRecord] {
        try await read("SELECT * FROM email_templates WHERE tenant = ? ORDER BY created_at_ms DESC, id", [.text(tenant)]).map(Self.template(from:))
    }

    public func emailTemplate(tenant: String, idOrAlias: String) async throws -> EmailTemplateRecord? {
        try await read("SELECT * FROM email_templates WHERE tenant = ? AND (id = ? OR alias = ?)", [.text(tenant), .text(idOrAlias), .text(idOrAlias)])
            .first.map(Self.template(from:))
    }

    public func updateEmailTemplate(_ template: EmailTemplateRecord) async throws -> Bool {
        try await transaction { db in
            if let alias = template.content.alias,
                !(try db.rows(
                    "SELECT 1 FROM email_templates WHERE tenant = ? AND alias = ? AND id <> ?", [.text(template.tenant), .text(alias), .text(template.id)])).isEmpty
            {
                throw ControlPlaneError.duplicate("template alias '\(alias)'")
            }
            return !(try db.rows(
                "UPDATE email_templates SET alias = ?, content = ?, updated_at_ms = ? WHERE tenant = ? AND id = ? RETURNING 1",
                [template.content.alias.map { .text($0) } ?? .null, .text(StoreCoding.encodeDocument(template.content)),
                 .integer(Int(StoreCoding.milliseconds(template.updatedAt))), .text(template.tenant), .text(template.id)])).isEmpty
        }
    }

    public func deleteEmailTemplate(tenant: String, id: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows("DELETE FROM email_templates WHERE tenant = ? AND id = ? RETURNING 1", [.text(tenant), .text(id)])).isEmpty
        }
    }

    private static func template(from row: SQLiteResultRow) throws -> EmailTemplateRecord {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let content = row.column("content")?.string else {
            throw ControlPlaneError.corrupt("email template row")
        }
        return EmailTemplateRecord(
            tenant: tenant, id: id, content: try StoreCoding.decodeDocument(EmailTemplateContent.self, content),
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
            updatedAt: StoreCoding.date(milliseconds: Int64(row.column("updated_at_ms")?.integer ?? 0)))
    }
}
