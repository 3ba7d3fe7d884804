import Crypto
import Foundation
import Logging
import XCTest

@testable import Jobs
@testable import Tenancy

final class CronSchedulerTests: XCTestCase {
    var store: SQLiteControlPlaneStore!
    let box = SecretBox(masterKey: SymmetricKey(size: .bits256))

    override func setUp() async throws {
        store = try await SQLiteControlPlaneStore.inMemory()
        try await store.migrate()
        try await store.createTenant(
            Tenant(slug: "acme", name: "Acme", createdAt: Date(), limits: .default),
            secret: SealedJWTSecret(kid: "k1", sealed: [1, 2, 3], createdAt: Date()),
            audit: AuditEntry(at: Date(), actor: "test", action: "tenant.create", tenant: "acme", requestID: nil))
    }

    func scheduler(nextRunAt: Date?, schedule: String = "@hourly", fence: Int64? = 1) async throws -> (CronScheduler, LiveCron) {
        var record = CronRecord(
            tenant: "acme", name: "hourly",
            spec: CronSpec(schedule: schedule, timezone: "UTC", target: CronTarget(kind: "http", url: "https://example.com", method: "POST", headers: [:], body: nil),
                           retrySchedule: nil, enabled: true),
            secrets: [], nextRunAt: nextRunAt, createdAt: Date(), updatedAt: Date())
        record.secrets = [SealedWebhookSecret(sealed: try box.seal(Array(repeating: 7, count: 32), context: LiveCron.secretContext(record)), retiresAt: nil)]
        try await store.createCron(record)
        let live = try LiveCron(record: record, secretBox: box)
        return (CronScheduler(crons: LiveCrons(tenant: "acme", crons: [live]), store: store, fence: { fence }, ring: {}, logger: Logger(label: "test")), live)
    }

    func runs() async throws -> [JobRecord] {
        try await store.jobs(tenant: "acme", subject: LiveCron.subject("hourly"), status: nil, before: nil, limit: 100)
    }

    func testADueRunIsStoredOnceAndTheScheduleMovesOn() async throws {
        let now = try Date("2026-06-01T10:00:20Z", strategy: .iso8601)
        let due = try Date("2026-06-01T10:00:00Z", strategy: .iso8601)
        let (scheduler, _) = try await scheduler(nextRunAt: due)
        let wait = try await scheduler.tick(now: now)
        XCTAssertEqual(wait, 3580, accuracy: 1)
        let stored = try await runs()
        XCTAssertEqual(stored.map(\.status), [.pending])
        XCTAssertEqual(stored.first?.id, LiveCron.runID(name: "hourly", scheduledAt: due))
        let next = try await store.cronJob(tenant: "acme", name: "hourly")?.nextRunAt
        XCTAssertEqual(next, try Date("2026-06-01T11:00:00Z", strategy: .iso8601))
        // A second scheduler that read the old time fires nothing: the time was moved on.
        let moved = try await store.advanceCron(tenant: "acme", name: "hourly", expected: due, next: next)
        XCTAssertFalse(moved)
    }

    func testARunLateByMoreThanAMinuteIsRecordedAsMissed() async throws {
        let (scheduler, _) = try await scheduler(nextRunAt: try Date("2026-06-01T07:00:00Z", strategy: .iso8601))
        _ = try await scheduler.tick(now: try Date("2026-06-01T10:00:20Z", strategy: .iso8601))
        let stored = try await runs()
        XCTAssertEqual(stored.map(\.status), [.cancelled])
        XCTAssertTrue(stored.first?.lastError?.hasPrefix("missed") ?? false)
        let next = try await store.cronJob(tenant: "acme", name: "hourly")?.nextRunAt
        XCTAssertEqual(next, try Date("2026-06-01T11:00:00Z", strategy: .iso8601), "resumes from now, not from every missed hour")
    }

    func testARunIsSkippedWhileThePreviousIsPending() async throws {
        let (scheduler, live) = try await scheduler(nextRunAt: try Date("2026-06-01T10:00:00Z", strategy: .iso8601))
        _ = try await store.enqueue([CronRun.job(tenant: "acme", cron: live, scheduledAt: try Date("2026-06-01T09:00:00Z", strategy: .iso8601), now: Date())])
        _ = try await scheduler.tick(now: try Date("2026-06-01T10:00:01Z", strategy: .iso8601))
        let stored = try await runs().sorted { $0.payload["scheduledAt"]?.stringValue ?? "" < $1.payload["scheduledAt"]?.stringValue ?? "" }
        XCTAssertEqual(stored.map(\.status), [.pending, .cancelled])
        XCTAssertTrue(stored.last?.lastError?.hasPrefix("skipped") ?? false)
    }

    func testNothingFiresWithoutTheLease() async throws {
        let (scheduler, _) = try await scheduler(nextRunAt: Date().addingTimeInterval(-5), fence: nil)
        let task = Task { try await scheduler.run() }
        try await Task.sleep(for: .milliseconds(1500))
        task.cancel()
        let stored = try await runs()
        XCTAssertEqual(stored.count, 0)
    }
}
