import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// Scheduled jobs in the cluster's control plane.
extension PostgresControlPlaneStore {
    private typealias CronRow = (String, String, String, String, Date?, Date, Date)
    private static let cronColumns = "tenant, name, spec::text, secrets::text, next_run_at, created_at, updated_at"

    public func createCron(_ cron: CronRecord) async throws {
        do {
            _ = try await Self.hasRow(client.query(
                """
                INSERT INTO minibaas.cron_jobs (tenant, name, spec, secrets, next_run_at, created_at, updated_at)
                VALUES (\(cron.tenant), \(cron.name), \(StoreCoding.encodeDocument(cron.spec))::jsonb, \(StoreCoding.encodeDocument(cron.secrets))::jsonb,
                        \(cron.nextRunAt), \(cron.createdAt), \(cron.updatedAt))
                """, logger: logger))
        } catch where Self.sqlState(of: error) == "23505" {
            throw ControlPlaneError.duplicate("cron job '\(cron.name)'")
        }
    }

    public func cronJobs(tenant: String) async throws -> [CronRecord] {
        try await crons(client.query(
            "SELECT \(unescaped: Self.cronColumns) FROM minibaas.cron_jobs WHERE tenant = \(tenant) ORDER BY name", logger: logger))
    }

    public func cronJob(tenant: String, name: String) async throws -> CronRecord? {
        try await crons(client.query(
            "SELECT \(unescaped: Self.cronColumns) FROM minibaas.cron_jobs WHERE tenant = \(tenant) AND name = \(name)", logger: logger)).first
    }

    public func updateCron(_ cron: CronRecord) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.cron_jobs SET spec = \(StoreCoding.encodeDocument(cron.spec))::jsonb, secrets = \(StoreCoding.encodeDocument(cron.secrets))::jsonb,
              next_run_at = \(cron.nextRunAt), updated_at = \(cron.updatedAt)
            WHERE tenant = \(cron.tenant) AND name = \(cron.name) RETURNING 1
            """, logger: logger))
    }

    public func deleteCron(tenant: String, name: String) async throws -> Bool {
        try await Self.hasRow(client.query(
            "DELETE FROM minibaas.cron_jobs WHERE tenant = \(tenant) AND name = \(name) RETURNING 1", logger: logger))
    }

    public func advanceCron(tenant: String, name: String, expected: Date?, next: Date?) async throws -> Bool {
        try await Self.hasRow(client.query(
            """
            UPDATE minibaas.cron_jobs SET next_run_at = \(next)
            WHERE tenant = \(tenant) AND name = \(name) AND next_run_at IS NOT DISTINCT FROM \(expected) RETURNING 1
            """, logger: logger))
    }

    private func crons(_ rows: PostgresRowSequence) async throws -> [CronRecord] {
        var found: [CronRecord] = []
        for try await row in rows.decode(CronRow.self) {
            found.append(CronRecord(
                tenant: row.0, name: row.1, spec: try StoreCoding.decodeDocument(CronSpec.self, row.2),
                secrets: try StoreCoding.decodeDocument([SealedWebhookSecret].self, row.3), nextRunAt: row.4, createdAt: row.5, updatedAt: row.6))
        }
        return found
    }
}
