import Foundation
import Runtime
import TestSupport
import XCTest
@testable import Tenancy

/// The durable job store, run against both stores.
extension ControlPlaneStoreContract {
    func jobRow(_ tenant: String, _ id: String, key: String? = nil, runAt: Date = Date(timeIntervalSince1970: 1_800_000_000)) -> JobRecord {
        JobRecord(
            tenant: tenant, id: id, kind: "webhook", key: key, payload: ["n": 1], maxAttempts: 3, runAt: runAt,
            createdAt: Date(timeIntervalSince1970: 1_800_000_000), updatedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    func jobsAreClaimedOnceAndSettledOnlyByTheirClaim() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createTenant(tenant("beta"), secret: secret(), audit: audit("tenant.create", tenant: "beta"))
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        try await assertTrue(try await store.enqueue(jobRow("acme", "j1", key: "msg_1")))
        try await assertFalse(try await store.enqueue(jobRow("acme", "j1-again", key: "msg_1")), "a key is enqueued once")
        try await assertTrue(try await store.enqueue(jobRow("beta", "j1", key: "msg_1")), "keys are per tenant")
        try await assertTrue(try await store.enqueue(jobRow("acme", "later", runAt: now.addingTimeInterval(3600))))
        try await assertEqual(try await store.nextDue(tenant: "acme"), Date(timeIntervalSince1970: 1_800_000_000) as Date?, "j1 is due first")

        let claimed = try await store.claim(tenant: "acme", fence: 7, limit: 10, now: now, visibleAgainAt: now.addingTimeInterval(30))
        XCTAssertEqual(claimed.map(\.id), ["j1"], "only due jobs, only this tenant's")
        XCTAssertEqual(claimed.first?.attempt, 1)
        XCTAssertEqual(claimed.first?.status, .running)
        try await assertEqual(try await store.claim(tenant: "acme", fence: 7, limit: 10, now: now, visibleAgainAt: now.addingTimeInterval(30)).count, 0)
        // Idle workers sleep until the next job can be claimed: here j1's claim lapsing, before "later".
        try await assertEqual(try await store.nextDue(tenant: "acme"), now.addingTimeInterval(30) as Date?)
        try await assertEqual(try await store.nextDue(tenant: "nobody"), nil as Date?)

        // A claim that lapsed is taken again, under the new fence, as a new attempt; the old
        // claimant's settle is refused.
        let again = try await store.claim(tenant: "acme", fence: 8, limit: 10, now: now.addingTimeInterval(31), visibleAgainAt: now.addingTimeInterval(61))
        XCTAssertEqual(again.map(\.attempt), [2])
        try await assertFalse(try await store.settle(tenant: "acme", id: "j1", fence: 7, attempt: 1, outcome: .succeeded))
        try await assertTrue(try await store.settle(tenant: "acme", id: "j1", fence: 8, attempt: 2, outcome: .retry(at: now.addingTimeInterval(5), error: "500")))
        try await assertFalse(try await store.settle(tenant: "acme", id: "j1", fence: 8, attempt: 2, outcome: .succeeded), "settled once")
        try await assertEqual(try await store.job(tenant: "acme", id: "j1")?.status, .pending)
        try await assertEqual(try await store.job(tenant: "acme", id: "j1")?.lastError, "500")

        let third = try await store.claim(tenant: "acme", fence: 8, limit: 10, now: now.addingTimeInterval(6), visibleAgainAt: now.addingTimeInterval(36))
        XCTAssertEqual(third.map(\.attempt), [3])
        try await assertTrue(try await store.settle(tenant: "acme", id: "j1", fence: 8, attempt: 3, outcome: .failed(error: "gave up")))
        try await assertEqual(try await store.jobCounts(tenant: "acme"), [.failed: 1, .pending: 1])
        try await assertEqual(try await store.requeue(tenant: "acme", ids: ["j1", "later"]), 1, "only settled jobs are requeued")
        try await assertEqual(try await store.job(tenant: "acme", id: "j1")?.attempt, 0)
    }

    /// One batch of settles (a group commit): each answered for itself — a stale fence refused
    /// beside fresh ones — and only settled attempts logged, with their attempt numbers.
    func aBatchOfSettlesIsDecidedJobByJob() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        for index in 0..<4 { _ = try await store.enqueue(jobRow("acme", "b\(index)")) }
        let claimed = try await store.claim(tenant: "acme", fence: 5, limit: 10, now: now, visibleAgainAt: now.addingTimeInterval(60))
        XCTAssertEqual(claimed.count, 4)
        func log(_ id: String, _ status: Int) -> JobAttempt {
            JobAttempt(tenant: "acme", job: id, attempt: 1, at: now, httpStatus: status, latencyMs: 3, error: nil, responseBody: "ok")
        }
        let results = try await store.settle([
            JobSettle(tenant: "acme", id: "b0", fence: 5, attempt: 1, outcome: .succeeded, log: log("b0", 200)),
            JobSettle(tenant: "acme", id: "b1", fence: 4, attempt: 1, outcome: .succeeded, log: log("b1", 200)),
            JobSettle(tenant: "acme", id: "b2", fence: 5, attempt: 1, outcome: .retry(at: now.addingTimeInterval(9), error: "503"), log: log("b2", 503)),
            JobSettle(tenant: "acme", id: "b3", fence: 5, attempt: 1, outcome: .succeeded, log: log("b3", 204)),
        ])
        XCTAssertEqual(results, [true, false, true, true])
        try await assertEqual(try await store.job(tenant: "acme", id: "b0")?.status, .succeeded)
        try await assertEqual(try await store.job(tenant: "acme", id: "b1")?.status, .running, "a stale fence settles nothing")
        try await assertEqual(try await store.job(tenant: "acme", id: "b2")?.status, .pending)
        try await assertEqual(try await store.attempts(tenant: "acme", job: "b3").map(\.httpStatus), [204])
        try await assertEqual(try await store.attempts(tenant: "acme", job: "b1").count, 0)
        try await assertEqual(try await store.attempts(tenant: "acme", job: "b2").map(\.attempt), [1])
    }

    func aNewOwnerTakesBackOlderClaimsAtOnce() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date(timeIntervalSince1970: 1_800_000_100)
        for index in 0..<5 { _ = try await store.enqueue(jobRow("acme", "j\(index)")) }
        _ = try await store.claim(tenant: "acme", fence: 3, limit: 3, now: now, visibleAgainAt: now.addingTimeInterval(600))
        try await assertEqual(try await store.releaseClaims(tenant: "acme", olderThan: 4), 3)
        let taken = try await store.claim(tenant: "acme", fence: 4, limit: 10, now: now, visibleAgainAt: now.addingTimeInterval(600))
        XCTAssertEqual(taken.count, 5)
        // Claims racing each other never take the same job twice.
        for index in 5..<45 { _ = try await store.enqueue(jobRow("acme", "k\(index)")) }
        let store = self.store
        let ids = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask { try await store.claim(tenant: "acme", fence: 4, limit: 10, now: now, visibleAgainAt: now.addingTimeInterval(600)).map(\.id) }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        XCTAssertEqual(ids.count, 40)
        XCTAssertEqual(Set(ids).count, 40)
    }

    func webhooksAndDeliveryLogs() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let spec = WebhookSpec(
            source: "main", schema: "public", table: "orders", events: ["INSERT"], filter: "status=eq.paid", url: "https://example.com/hook",
            headers: ["X-Team": "billing"], timeoutMs: 5000, retrySchedule: [100, 200], maxInFlight: 4, enabled: true)
        var hook = WebhookRecord(
            tenant: "acme", id: "wh_1", name: "orders", spec: spec, secrets: [SealedWebhookSecret(sealed: [1, 2, 3], retiresAt: nil)], createdAt: at,
            updatedAt: at)
        try await store.createWebhook(hook)
        do {
            var twin = hook
            twin.id = "wh_2"
            try await store.createWebhook(twin)
            XCTFail("a name is taken once per tenant")
        } catch ControlPlaneError.duplicate {}
        try await assertEqual(try await store.webhook(tenant: "acme", id: "wh_1"), hook)
        hook.secrets.append(SealedWebhookSecret(sealed: [4], retiresAt: at.addingTimeInterval(86_400)))
        hook.spec.enabled = false
        try await assertTrue(try await store.updateWebhook(hook))
        try await assertEqual(try await store.webhooks(tenant: "acme"), [hook])
        try await assertEqual(try await store.tenantsWithJobWork(), ["acme"])

        // Deliveries: a batch dedupes by id; the log lists a subject's jobs newest first.
        var first = jobRow("acme", "msg_a")
        first.subject = "wh_1"
        var second = jobRow("acme", "msg_b")
        second.subject = "wh_1"
        second.createdAt = at.addingTimeInterval(1)
        try await assertEqual(try await store.enqueue([first, second, first]), 2)
        try await assertEqual(try await store.enqueue([first]), 0, "a feed's re-read makes no second job")
        try await assertEqual(try await store.jobs(tenant: "acme", subject: "wh_1", status: nil, before: nil, limit: 10).map(\.id), ["msg_b", "msg_a"])
        try await assertEqual(try await store.jobs(tenant: "acme", subject: "wh_1", status: nil, before: at.addingTimeInterval(1), limit: 10).map(\.id), ["msg_a"])
        try await assertEqual(try await store.unsettledCount(tenant: "acme"), 2)
        try await store.recordAttempt(JobAttempt(tenant: "acme", job: "msg_a", attempt: 1, at: at, httpStatus: 500, latencyMs: 12, error: "500", responseBody: "no"))
        try await store.recordAttempt(JobAttempt(tenant: "acme", job: "msg_a", attempt: 1, at: at, httpStatus: nil, latencyMs: 3, error: "refused", responseBody: nil))
        let attempts = try await store.attempts(tenant: "acme", job: "msg_a")
        XCTAssertEqual(attempts.map(\.attempt), [1, 2], "numbered by the store, across replays")
        XCTAssertEqual(attempts.map(\.httpStatus), [500, nil])
        let claimed = try await store.claim(tenant: "acme", fence: 1, limit: 1, now: at.addingTimeInterval(86_400 * 3650), visibleAgainAt: at.addingTimeInterval(86_400 * 3651))
        try await assertTrue(try await store.settle(tenant: "acme", id: claimed[0].id, fence: 1, attempt: 1, outcome: .failed(error: "gone")))
        try await assertEqual(try await store.jobIDs(tenant: "acme", subject: "wh_1", status: .failed, since: nil, limit: 10), [claimed[0].id])
        // Pruning takes settled jobs past their keep, with their attempts.
        try await assertEqual(try await store.pruneJobs(succeededBefore: .distantPast, failedBefore: .distantFuture), 1)
        try await assertEqual(try await store.job(tenant: "acme", id: claimed[0].id), nil)
        try await assertTrue(try await store.deleteWebhook(tenant: "acme", id: "wh_1"))
        try await assertFalse(try await store.deleteWebhook(tenant: "acme", id: "wh_1"))
    }

    func queuesHavePgmqsSemantics() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.createQueue(tenant: "acme", name: "tasks", at: now)
        do {
            try await store.createQueue(tenant: "acme", name: "tasks", at: now)
            XCTFail("a queue is created once")
        } catch ControlPlaneError.duplicate {}
        do {
            _ = try await store.send(tenant: "acme", queue: "nope", messages: ["{}"], delay: 0, maxLength: 10, now: now)
            XCTFail("no such queue")
        } catch QueueStoreError.missing {}
        try await assertEqual(try await store.send(tenant: "acme", queue: "tasks", messages: [#"{"n":1}"#], delay: 0, maxLength: 10, now: now), [1])
        try await assertEqual(
            try await store.send(tenant: "acme", queue: "tasks", messages: [#"{"n":2}"#, #"{"n":3}"#], delay: 0, maxLength: 10, now: now), [2, 3])
        try await assertEqual(try await store.send(tenant: "acme", queue: "tasks", messages: ["4"], delay: 60, maxLength: 10, now: now), [4])
        do {
            _ = try await store.send(tenant: "acme", queue: "tasks", messages: Array(repeating: "0", count: 7), delay: 0, maxLength: 10, now: now)
            XCTFail("the queue is full")
        } catch QueueStoreError.full(let limit) { XCTAssertEqual(limit, 10) }

        // A read hides what it returns for the visibility timeout; a delayed message waits.
        let first = try await store.read(tenant: "acme", queue: "tasks", visibility: 30, limit: 2, now: now)
        XCTAssertEqual(first.map(\.id), [1, 2])
        XCTAssertEqual(first.map(\.readCount), [1, 1])
        XCTAssertEqual(first.first.flatMap { try? JSONValue.parse(Array($0.message.utf8)) }, ["n": 1])
        try await assertEqual(try await store.read(tenant: "acme", queue: "tasks", visibility: 30, limit: 10, now: now).map(\.id), [3])
        try await assertEqual(try await store.read(tenant: "acme", queue: "tasks", visibility: 30, limit: 10, now: now.addingTimeInterval(31)).map(\.id), [1, 2, 3])
        try await assertTrue(try await store.deleteMessage(tenant: "acme", queue: "tasks", id: 1))
        try await assertFalse(try await store.deleteMessage(tenant: "acme", queue: "tasks", id: 1))
        try await assertTrue(try await store.archive(tenant: "acme", queue: "tasks", id: 2, at: now))
        try await assertFalse(try await store.archive(tenant: "acme", queue: "tasks", id: 2, at: now))
        let popped = try await store.pop(tenant: "acme", queue: "tasks", now: now.addingTimeInterval(120))
        XCTAssertEqual(popped.map(\.id), [3])
        let metrics = try await store.queueMetrics(tenant: "acme", now: now)
        XCTAssertEqual(metrics.map(\.name), ["tasks"])
        XCTAssertEqual(metrics.first?.length, 1, "only message 4 is left (2 is archived)")
        XCTAssertEqual(metrics.first?.totalMessages, 4)
        try await assertEqual(try await store.purgeQueue(tenant: "acme", name: "tasks"), 2, "purge takes archived ones too")
        try await assertTrue(try await store.dropQueue(tenant: "acme", name: "tasks"))
        try await assertFalse(try await store.dropQueue(tenant: "acme", name: "tasks"))
    }
}
