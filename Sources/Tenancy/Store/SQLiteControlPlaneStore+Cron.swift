import Foundation
import Runtime
import SQLiteNIO

/// Scheduled jobs in the embedded control plane.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date?) -> SQLiteData { date.map { .integer(Int(StoreCoding.milliseconds($0))) } ?? .null }

    public func createCron(_ cron: CronRecord) async throws {
        try await transaction { db in
            guard try db.rows("SELECT 1 FROM cron_jobs WHERE tenant = ? AND name = ?", [.text(cron.tenant), .text(cron.name)]).isEmpty
            else { throw ControlPlaneError.duplicate("cron job '\(cron.name)'") }
            _ = try db.rows(
                "INSERT INTO cron_jobs (tenant, name, spec, secrets, next_run_at_ms, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(cron.tenant), .text(cron.name), .text(StoreCoding.encodeDocument(cron.spec)), .text(StoreCoding.encodeDocument(cron.secrets)),
                 Self.ms(cron.nextRunAt), Self.ms(cron.createdAt), Self.ms(cron.updatedAt)])
        }
    }

    public func cronJobs(tenant: String) async throws -> [CronRecord] {
        try await read("SELECT * FROM cron_jobs WHERE tenant = ? ORDER BY name", [.text(tenant)]).map(Self.cron(from:))
    }

    public func cronJob(tenant: String, name: String) async throws -> CronRecord? {
        try await read("SELECT * FROM cron_jobs WHERE tenant = ? AND name = ?", [.text(tenant), .text(name)]).first.map(Self.cron(from:))
    }

    public func updateCron(_ cron: CronRecord) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                "UPDATE cron_jobs SET spec = ?, secrets = ?, next_run_at_ms = ?, updated_at_ms = ? WHERE tenant = ? AND name = ? RETURNING 1",
                [.text(StoreCoding.encodeDocument(cron.spec)), .text(StoreCoding.encodeDocument(cron.secrets)), Self.ms(cron.nextRunAt),
                 Self.ms(cron.updatedAt), .text(cron.tenant), .text(cron.name)])).isEmpty
        }
    }

    public func deleteCron(tenant: String, name: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows("DELETE FROM cron_jobs WHERE tenant = ? AND name = ? RETURNING 1", [.text(tenant), .text(name)])).isEmpty
        }
    }

    public func advanceCron(tenant: String, name: String, expected: Date?, next: Date?) async throws -> Bool {
        try await transaction { db in
            !(try db.rows(
                "UPDATE cron_jobs SET next_run_at_ms = ? WHERE tenant = ? AND name = ? AND next_run_at_ms IS ? RETURNING 1",
                [Self.ms(next), .text(tenant), .text(name), Self.ms(expected)])).isEmpty
        }
    }

    private static func cron(from row: SQLiteResultRow) throws -> CronRecord {
        guard let tenant = row.column("tenant")?.string, let name = row.column("name")?.string, let spec = row.column("spec")?.string,
            let secrets = row.column("secrets")?.string
        else { throw ControlPlaneError.corrupt("cron row") }
        return CronRecord(
            tenant: tenant, name: name, spec: try StoreCoding.decodeDocument(CronSpec.self, spec),
            secrets: try StoreCoding.decodeDocument([SealedWebhookSecret].self, secrets),
            nextRunAt: row.column("next_run_at_ms")?.integer.map { StoreCoding.date(milliseconds: Int64($0)) },
            createdAt: StoreCoding.date(milliseconds: Int64(row.column("created_at_ms")?.integer ?? 0)),
            updatedAt: StoreCoding.date(milliseconds: Int64(row.column("updated_at_ms")?.integer ?? 0)))
    }
}
