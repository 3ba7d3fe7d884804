import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime
import XCTest

@testable import Jobs
@testable import Tenancy

/// Handlers scripted per job id: each call takes the next result; then `.done`.
final class ScriptedHandler: JobHandler, @unchecked Sendable {
    let lock = NIOLock()
    var scripts: [String: [JobResult]]
    var calls: [String: Int] = [:]

    init(_ scripts: [String: [JobResult]]) { self.scripts = scripts }

    func run(_ job: JobRecord) async -> JobResult {
        lock.withLock {
            calls[job.id, default: 0] += 1
            guard var script = scripts[job.id], !script.isEmpty else { return .done }
            let next = script.removeFirst()
            scripts[job.id] = script
            return next
        }
    }

    func count(_ id: String) -> Int { lock.withLock { calls[id] ?? 0 } }
}

final class JobWorkersTests: XCTestCase {
    var store: SQLiteControlPlaneStore!

    override func setUp() async throws {
        store = try await SQLiteControlPlaneStore.inMemory()
        try await store.migrate()
        try await store.createTenant(
            Tenant(slug: "acme", name: "Acme", createdAt: Date(), limits: .default),
            secret: SealedJWTSecret(kid: "k1", sealed: [1, 2, 3], createdAt: Date()),
            audit: AuditEntry(at: Date(), actor: "test", action: "tenant.create", tenant: "acme", requestID: nil))
    }

    func job(_ id: String, kind: String = "test", attempts: Int = 3) -> JobRecord {
        JobRecord(tenant: "acme", id: id, kind: kind, key: id, payload: [:], maxAttempts: attempts, runAt: Date(), createdAt: Date(), updatedAt: Date())
    }

    func workers(
        _ handler: any JobHandler, tenant: String = "acme", fence: Int64 = 1, poll: Duration = .milliseconds(50), limits: JobLimits = .default,
        slots: JobSlots = JobSlots()
    ) -> JobWorkers {
        var settings = JobWorkers.Settings()
        settings.pollInterval = poll
        settings.schedule = try! RetrySchedule(milliseconds: [0, 0, 0])
        return JobWorkers(
            tenant: tenant, store: store, fence: { fence }, limits: { limits }, slots: slots, handlers: ["test": handler], settings: settings,
            logger: Logger(label: "test"))
    }

    /// Runs the workers until `done` holds (or 20 s pass), then stops them.
    func run(_ workers: JobWorkers, until done: @escaping () async throws -> Bool) async throws {
        let task = Task { await workers.run() }
        defer { task.cancel() }
        for _ in 0..<400 {
            if try await done() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("the jobs did not settle")
    }

    func testRetriedJobsSucceedAndExhaustedOnesGoToTheFailedSet() async throws {
        let handler = ScriptedHandler([
            "flaky": [.retry(error: "503")], "dead": [.retry(error: "500"), .retry(error: "500"), .retry(error: "500")],
            "refused": [.fail(error: "410 gone")],
        ])
        for id in ["ok", "flaky", "dead", "refused"] { _ = try await store.enqueue(job(id)) }
        _ = try await store.enqueue(job("orphan", kind: "unknown"))
        try await run(workers(handler)) {
            try await self.store.jobCounts(tenant: "acme") == [.succeeded: 2, .failed: 3]
        }
        XCTAssertEqual(handler.count("flaky"), 2)
        XCTAssertEqual(handler.count("dead"), 3, "three attempts, then the failed set")
        XCTAssertEqual(handler.count("refused"), 1, "a final failure is not retried")
        let dead = try await store.job(tenant: "acme", id: "dead")
        XCTAssertEqual(dead?.lastError, "500")
        let orphan = try await store.job(tenant: "acme", id: "orphan")
        XCTAssertEqual(orphan?.status, .failed)
    }

    /// A previous owner's claims (a lower fence, a visibility far in the future) are taken back
    /// at start, not waited out.
    func testANewOwnerRunsThePreviousOwnersClaimedJobsAtOnce() async throws {
        for id in ["a", "b"] { _ = try await store.enqueue(job(id)) }
        let claimed = try await store.claim(tenant: "acme", fence: 1, limit: 10, now: Date(), visibleAgainAt: Date().addingTimeInterval(3600))
        XCTAssertEqual(claimed.count, 2)
        let handler = ScriptedHandler([:])
        try await run(workers(handler, fence: 2)) { try await self.store.jobCounts(tenant: "acme") == [.succeeded: 2] }
        // The old owner's late settle is refused.
        let stale = try await store.settle(tenant: "acme", id: "a", fence: 1, attempt: 1, outcome: .failed(error: "late"))
        XCTAssertFalse(stale)
    }

    /// With a poll interval of an hour, only the ring can have woken the workers.
    func testARingRunsNewWorkWithoutWaitingForThePoll() async throws {
        let handler = ScriptedHandler([:])
        let workers = workers(handler, poll: .seconds(3600))
        let task = Task { await workers.run() }
        defer { task.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await store.enqueue(job("rung"))
        workers.ring()
        for _ in 0..<200 where handler.count("rung") == 0 { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertEqual(handler.count("rung"), 1)
    }

    /// Idle workers sleep until the next job is due, not until the next poll: with a poll of an
    /// hour and no ring, a job due in a second still runs about then.
    func testIdleWorkersWakeWhenTheNextJobIsDue() async throws {
        let handler = ScriptedHandler([:])
        var later = job("later")
        later.runAt = Date().addingTimeInterval(1)
        _ = try await store.enqueue(later)
        let started = Date()
        try await run(workers(handler, poll: .seconds(3600))) { handler.count("later") == 1 }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9, "not before it is due")
    }

    /// A tenant's in-flight limit holds however much is due.
    func testNoMoreThanTheTenantsInFlightLimitRunAtOnce() async throws {
        let handler = SlowHandler(delay: .milliseconds(30))
        for index in 0..<40 { _ = try await store.enqueue(job("j\(index)")) }
        var limits = JobLimits.default
        limits.maxInFlight = 3
        limits.perSecond = 10_000
        try await run(workers(handler, limits: limits)) { try await self.store.jobCounts(tenant: "acme") == [.succeeded: 40] }
        XCTAssertEqual(handler.peak, 3)
    }

    /// While the node's only slot turns between tenants, a tenant with one job is not stuck
    /// behind another's backlog: its job runs after at most a few of the other's.
    func testTenantsTakeTurnsForTheNodesSlots() async throws {
        try await store.createTenant(
            Tenant(slug: "beta", name: "Beta", createdAt: Date(), limits: .default),
            secret: SealedJWTSecret(kid: "k1", sealed: [1, 2, 3], createdAt: Date()),
            audit: AuditEntry(at: Date(), actor: "test", action: "tenant.create", tenant: "beta", requestID: nil))
        for index in 0..<200 { _ = try await store.enqueue(job("a\(index)")) }
        let slots = JobSlots(capacity: 1)
        let limits = JobLimits(maxInFlight: 8, perSecond: 10_000, maxPending: 100_000)
        let handler = SlowHandler(delay: .milliseconds(10))
        let acme = workers(handler, limits: limits, slots: slots)
        let busy = Task { await acme.run() }
        defer { busy.cancel() }
        try await Task.sleep(for: .milliseconds(100))
        let started = handler.finished
        _ = try await store.enqueue(JobRecord(
            tenant: "beta", id: "b", kind: "test", key: nil, payload: [:], maxAttempts: 1, runAt: Date(), createdAt: Date(), updatedAt: Date()))
        try await run(workers(handler, tenant: "beta", limits: limits, slots: slots)) {
            try await self.store.jobCounts(tenant: "beta") == [.succeeded: 1]
        }
        XCTAssertLessThan(handler.finished - started, 40, "beta waited behind \(handler.finished - started) of acme's jobs")
        let pending = try await store.jobCounts(tenant: "acme")[.pending] ?? 0
        XCTAssertGreaterThan(pending, 100, "acme's backlog was still there")
    }

    /// Jobs sharing an ordering key run one at a time in the order they were stored, even when
    /// each takes a different time; jobs of other keys still run beside them.
    func testJobsOfOneOrderingKeyRunInStoredOrder() async throws {
        let handler = OrderRecorder()
        let now = Date()
        for index in 0..<12 {
            var record = job("r\(index)")
            record.payload = [JobWorkers.orderingKey: .string(index % 2 == 0 ? "row-1" : "row-\(index)")]
            record.createdAt = now.addingTimeInterval(Double(index) * 1e-6)
            record.runAt = now
            _ = try await store.enqueue(record)
        }
        var limits = JobLimits.default
        limits.maxInFlight = 12
        limits.perSecond = 10_000
        let workers = workers(handler, limits: limits)
        try await run(workers) { try await self.store.jobCounts(tenant: "acme") == [.succeeded: 12] }
        XCTAssertEqual(handler.order.filter { Int($0.dropFirst())! % 2 == 0 }, ["r0", "r2", "r4", "r6", "r8", "r10"])
        XCTAssertEqual(handler.sharedKeyPeak, 1, "one row's jobs never overlapped")
        XCTAssertGreaterThan(handler.peak, 1, "jobs of other keys ran side by side")
        XCTAssertEqual(workers.lanes.busyLanes, 0, "idle lanes are dropped")
    }

    /// A job waiting in its lane when the workers stop gives its place up instead of hanging.
    func testAWaitingTicketIsGivenUpWhenCancelled() async throws {
        let lanes = OrderedLanes()
        let first = lanes.enter("k")
        let second = lanes.enter("k")
        let waiter = Task { await lanes.wait("k", ticket: second) }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        let went = await waiter.value
        XCTAssertFalse(went)
        lanes.leave("k", ticket: second)
        let firstGoes = await lanes.wait("k", ticket: first)
        XCTAssertTrue(firstGoes)
        lanes.leave("k", ticket: first)
        XCTAssertEqual(lanes.busyLanes, 0)
    }

    /// Without the tenant's lease nothing is claimed.
    func testNothingRunsWithoutAFence() async throws {
        _ = try await store.enqueue(job("x"))
        let handler = ScriptedHandler([:])
        let workers = JobWorkers(
            tenant: "acme", store: store, fence: { nil }, limits: { .default }, slots: JobSlots(), handlers: ["test": handler],
            logger: Logger(label: "test"))
        let task = Task { await workers.run() }
        try await Task.sleep(for: .milliseconds(1500))
        task.cancel()
        XCTAssertEqual(handler.count("x"), 0)
    }
}

/// Sleeps per job, counting the most run at once and how many finished.
final class SlowHandler: JobHandler, @unchecked Sendable {
    let lock = NIOLock()
    let delay: Duration
    var current = 0
    var peak = 0
    var finished = 0

    init(delay: Duration) { self.delay = delay }

    func run(_ job: JobRecord) async -> JobResult {
        lock.withLock {
            current += 1
            peak = max(peak, current)
        }
        try? await Task.sleep(for: delay)
        lock.withLock {
            current -= 1
            finished += 1
        }
        return .done
    }
}

/// Records the order jobs start in; odd-numbered jobs are slow, so a free-for-all would reorder.
final class OrderRecorder: JobHandler, @unchecked Sendable {
    let lock = NIOLock()
    var order: [String] = []
    var current = 0
    var peak = 0
    var sharedKey = 0
    var sharedKeyPeak = 0

    func run(_ job: JobRecord) async -> JobResult {
        let index = Int(job.id.dropFirst())!
        lock.withLock {
            order.append(job.id)
            current += 1
            peak = max(peak, current)
            if index % 2 == 0 { sharedKey += 1 }
            sharedKeyPeak = max(sharedKeyPeak, sharedKey)
        }
        try? await Task.sleep(for: .milliseconds(index % 4 == 0 ? 40 : 5))
        lock.withLock {
            current -= 1
            if index % 2 == 0 { sharedKey -= 1 }
        }
        return .done
    }
}
