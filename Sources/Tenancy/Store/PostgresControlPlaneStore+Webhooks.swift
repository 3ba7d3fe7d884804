import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// Webhooks and job logs in the cluster's control plane.
extension PostgresControlPlaneStore {
    private typealias WebhookRow = (String, String, String, String, String, Date, Date)
    private static let webhookColumns = "tenant, id, name, spec::text, secrets::text, created_at, updated_at"

    public func createWebhook(_ webhook: WebhookRecord) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                """
                INSERT INTO minibaas.webhooks (tenant, id, name, spec, secrets, created_at, updated_at)
                VALUES (\(webhook.tenant), \(webhook.id), \(webhook.name), \(StoreCoding.encodeDocument(webhook.spec))::jsonb,
                        \(StoreCoding.encodeDocument(webhook.secrets))::jsonb, \(webhook.createdAt), \(webhook.updatedAt))
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("webhook '\(webhook.name)'")
        }
    }

    public func webhooks(tenant: String) async throws -> [WebhookRecord] {
        try await webhooks(client.query(
            "SELECT \(unescaped: Self.webhookColumns) FROM minibaas.webhooks WHERE tenant = \(tenant) ORDER BY name", logger: logger))
    }

    public func webhook(tenant: String, id: String) async throws -> WebhookRecord? {
        try await webhooks(client.query(
            "SELECT \(unescaped: Self.webhookColumns) FROM minibaas.webhooks WHERE tenant = \(tenant) AND id = \(id)", logger: logger)).first
    }

    public func updateWebhook(_ webhook: WebhookRecord) async throws -> Bool {
        do {
            return try await Self.hasRow(client.query(
                """
                UPDATE minibaas.webhooks SET name = \(webhook.name), spec = \(StoreCoding.encodeDocument(webhook.spec))::jsonb,
                  secrets = \(StoreCoding.encodeDocument(webhook.secrets))::jsonb, updated_at = \(webhook.updatedAt)
                WHERE tenant = \(webhook.tenant) AND id = \(webhook.id) RETURNING 1
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("webhook '\(webhook.name)'")
        }
    }

    public func deleteWebhook(tenant: String, id: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.webhooks WHERE tenant = \(tenant) AND id = \(id) RETURNING 1", logger: logger))
    }

    public func tenantsWithJobWork() async throws -> [String] {
        var slugs: [String] = []
        for try await slug in try await client.query(
            """
            SELECT tenant FROM minibaas.webhooks UNION SELECT tenant FROM minibaas.cron_jobs
            UNION SELECT DISTINCT tenant FROM minibaas.jobs WHERE status IN ('pending', 'running') ORDER BY 1
            """, logger: logger
        ).decode(String.self) { slugs.append(slug) }
        return slugs
    }

    // MARK: - Job logs

    public func enqueue(_ jobs: [JobRecord]) async throws -> Int {
        guard !jobs.isEmpty else { return 0 }
        // One transaction for the batch: a feed's changes are confirmed only once all are stored.
        return try await client.withTransaction(logger: logger) { db in
            var count = 0
            for job in jobs {
                for try await _ in try await db.query(
                    """
                    INSERT INTO minibaas.jobs (tenant, id, kind, dedupe_key, subject, payload, status, attempt, max_attempts, run_at, last_error,
                      created_at, updated_at)
                    VALUES (\(job.tenant), \(job.id), \(job.kind), \(job.key), \(job.subject), \(StoreCoding.encodeObject(job.payload))::jsonb,
                            \(job.status.rawValue), \(job.attempt), \(job.maxAttempts), \(job.runAt), \(job.lastError), \(job.createdAt), \(job.updatedAt))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger) { count += 1 }
            }
            return count
        }
    }

    public func jobs(tenant: String, subject: String, status: JobRecord.Status?, before: Date?, limit: Int) async throws -> [JobRecord] {
        try await jobs(client.query(
            """
            SELECT \(unescaped: Self.jobColumns) FROM minibaas.jobs
            WHERE tenant = \(tenant) AND subject = \(subject) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
              AND (\(before)::timestamptz IS NULL OR created_at < \(before))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """, logger: logger))
    }

    public func jobIDs(tenant: String, subject: String, status: JobRecord.Status, since: Date?, limit: Int) async throws -> [String] {
        var ids: [String] = []
        for try await id in try await client.query(
            """
            SELECT id FROM minibaas.jobs WHERE tenant = \(tenant) AND subject = \(subject) AND status = \(status.rawValue)
              AND created_at >= \(since ?? .distantPast) ORDER BY created_at LIMIT \(limit)
            """, logger: logger
        ).decode(String.self) { ids.append(id) }
        return ids
    }

    public func recordAttempt(_ attempt: JobAttempt) async throws {
        _ = try await Self.hasRow(client.query(Self.attemptInsert(attempt), logger: logger))
    }

    /// Numbered in the log across replays: a replayed job's attempts continue its history.
    static func attemptInsert(_ attempt: JobAttempt) -> PostgresQuery {
        """
        INSERT INTO minibaas.job_attempts (tenant, job_id, attempt, at, http_status, latency_ms, error, response_body)
        SELECT \(attempt.tenant), \(attempt.job), coalesce(max(attempt), 0) + 1, \(attempt.at), \(attempt.httpStatus), \(attempt.latencyMs),
          \(attempt.error), \(attempt.responseBody)
        FROM minibaas.job_attempts WHERE tenant = \(attempt.tenant) AND job_id = \(attempt.job)
        """
    }

    public func attempts(tenant: String, job: String) async throws -> [JobAttempt] {
        var attempts: [JobAttempt] = []
        for try await (number, at, status, latency, error, body) in try await client.query(
            """
            SELECT attempt, at, http_status, latency_ms, error, response_body FROM minibaas.job_attempts
            WHERE tenant = \(tenant) AND job_id = \(job) ORDER BY attempt
            """, logger: logger
        ).decode((Int, Date, Int?, Int, String?, String?).self) {
            attempts.append(JobAttempt(tenant: tenant, job: job, attempt: number, at: at, httpStatus: status, latencyMs: latency, error: error, responseBody: body))
        }
        return attempts
    }

    public func unsettledCount(tenant: String) async throws -> Int {
        var count = 0
        for try await n in try await client.query(
            "SELECT count(*)::bigint FROM minibaas.jobs WHERE tenant = \(tenant) AND status IN ('pending', 'running')", logger: logger
        ).decode(Int.self) { count = n }
        return count
    }

    public func pruneJobs(succeededBefore: Date, failedBefore: Date) async throws -> Int {
        var count = 0
        for try await _ in try await client.query(
            """
            DELETE FROM minibaas.jobs
            WHERE (status IN ('succeeded', 'cancelled') AND updated_at < \(succeededBefore)) OR (status = 'failed' AND updated_at < \(failedBefore))
            RETURNING 1
            """, logger: logger) { count += 1 }
        return count
    }

    private func webhooks(_ rows: PostgresRowSequence) async throws -> [WebhookRecord] {
        var found: [WebhookRecord] = []
        for try await row in rows.decode(WebhookRow.self) {
            found.append(WebhookRecord(
                tenant: row.0, id: row.1, name: row.2, spec: try StoreCoding.decodeDocument(WebhookSpec.self, row.3),
                secrets: try StoreCoding.decodeDocument([SealedWebhookSecret].self, row.4), createdAt: row.5, updatedAt: row.6))
        }
        return found
    }
}

/// Single jobs by key, cancelled or moved while pending.
extension PostgresControlPlaneStore {
    public func job(tenant: String, key: String) async throws -> JobRecord? {
        try await jobs(client.query(
            "SELECT \(unescaped: Self.jobColumns) FROM minibaas.jobs WHERE tenant = \(tenant) AND dedupe_key = \(key)", logger: logger)).first
    }

    public func cancelPending(tenant: String, id: String, kind: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.jobs SET status = 'cancelled', updated_at = \(Date())
            WHERE tenant = \(tenant) AND id = \(id) AND kind = \(kind) AND status = 'pending' RETURNING 1
            """, logger: logger))
    }

    public func reschedule(tenant: String, id: String, kind: String, at: Date) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.jobs SET run_at = \(at), updated_at = \(Date())
            WHERE tenant = \(tenant) AND id = \(id) AND kind = \(kind) AND status = 'pending' RETURNING 1
            """, logger: logger))
    }
}

/// E-mail templates in the cluster's control plane.
extension PostgresControlPlaneStore {
    private typealias TemplateRow = (String, String, String, Date, Date)

    public func createEmailTemplate(_ template: EmailTemplateRecord) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                """
                INSERT INTO minibaas.email_templates (tenant, id, alias, content, created_at, updated_at)
                VALUES (\(template.tenant), \(template.id), \(template.content.alias), \(StoreCoding.encodeDocument(template.content))::jsonb,
                        \(template.createdAt), \(template.updatedAt))
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("template alias '\(template.content.alias ?? "")'")
        }
    }

    public func emailTemplates(tenant: String) async throws -> [EmailTemplateRecord] {
        try await templates(client.query(
            "SELECT tenant, id, content::text, created_at, updated_at FROM minibaas.email_templates WHERE tenant = \(tenant) ORDER BY created_at DESC, id",
            logger: logger))
    }

    public func emailTemplate(tenant: String, idOrAlias: String) async throws -> EmailTemplateRecord? {
        try await templates(client.query(
            """
            SELECT tenant, id, content::text, created_at, updated_at FROM minibaas.email_templates
            WHERE tenant = \(tenant) AND (id = \(idOrAlias) OR alias = \(idOrAlias))
            """, logger: logger)).first
    }

    public func updateEmailTemplate(_ template: EmailTemplateRecord) async throws -> Bool {
        do {
            return try await Self.hasRow(client.query(
                """
                UPDATE minibaas.email_templates SET alias = \(template.content.alias), content = \(StoreCoding.encodeDocument(template.content))::jsonb,
                  updated_at = \(template.updatedAt)
                WHERE tenant = \(template.tenant) AND id = \(template.id) RETURNING 1
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("template alias '\(template.content.alias ?? "")'")
        }
    }

    public func deleteEmailTemplate(tenant: String, id: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.email_templates WHERE tenant = \(tenant) AND id = \(id) RETURNING 1", logger: logger))
    }

    private func templates(_ rows: PostgresRowSequence) async throws -> [EmailTemplateRecord] {
        var found: [EmailTemplateRecord] = []
        for try await row in rows.decode(TemplateRow.self) {
            found.append(EmailTemplateRecord(
                tenant: row.0, id: row.1, content: try StoreCoding.decodeDocument(EmailTemplateContent.self, row.2), createdAt: row.3, updatedAt: row.4))
        }
        return found
    }
}
