import XCTest
@testable import Runtime

/// Records what children do, across their incarnations.
actor Journal {
    var entries: [String] = []
    var times: [String: [ContinuousClock.Instant]] = [:]
    func add(_ entry: String) {
        entries.append(entry)
        times[entry, default: []].append(.now)
    }
    func count(_ entry: String) -> Int { entries.filter { $0 == entry }.count }
    func stamps(_ entry: String) -> [ContinuousClock.Instant] { times[entry] ?? [] }
}

struct Boom: Error, CustomStringConvertible {
    let n: Int
    var description: String { "boom \(n)" }
}

/// Polls until `condition` holds, failing after `timeout`.
func eventually(
    timeout: Duration = .seconds(5), file: StaticString = #filePath, line: UInt = #line, _ condition: () async -> Bool
) async {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try? await Task.sleep(for: .milliseconds(5))
    }
    XCTFail("condition not met within \(timeout)", file: file, line: line)
}

final class SupervisorTests: XCTestCase {
    func testBackoffDoublesFromBaseAndStopsAtCap() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(1))
        XCTAssertEqual(backoff.delay(forAttempt: 1), .milliseconds(100))
        XCTAssertEqual(backoff.delay(forAttempt: 2), .milliseconds(200))
        XCTAssertEqual(backoff.delay(forAttempt: 4), .milliseconds(800))
        XCTAssertEqual(backoff.delay(forAttempt: 5), .seconds(1))
        XCTAssertEqual(backoff.delay(forAttempt: 500), .seconds(1))
    }

    func testJitterOnlyShortensTheDelay() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(30), jitter: 0.5)
        for attempt in 1...8 {
            let delay = backoff.delay(forAttempt: attempt)
            let plain = Backoff(base: .milliseconds(100), cap: .seconds(30)).delay(forAttempt: attempt)
            XCTAssertLessThanOrEqual(delay, plain)
            XCTAssertGreaterThanOrEqual(delay, plain / 2)
        }
    }

    func testFailingChildIsRestartedAfterGrowingBackoff() async {
        let journal = Journal()
        let supervisor = Supervisor(name: "t", intensity: .init(maxRestarts: 10, window: .seconds(30)),
                                    backoff: Backoff(base: .milliseconds(20), cap: .seconds(1)))
        await supervisor.start(ChildSpec(name: "flaky") {
            await journal.add("start")
            let n = await journal.count("start")
            if n <= 3 { throw Boom(n: n) }
            try await Task.sleep(for: .seconds(60))
        })
        await eventually { await journal.count("start") == 4 }
        let stamps = await journal.stamps("start")
        XCTAssertEqual(stamps.count, 4)
        // Gaps follow the backoff: at least 20, 40 and 80 ms.
        XCTAssertGreaterThanOrEqual(stamps[1] - stamps[0], .milliseconds(20))
        XCTAssertGreaterThanOrEqual(stamps[2] - stamps[1], .milliseconds(40))
        XCTAssertGreaterThanOrEqual(stamps[3] - stamps[2], .milliseconds(80))
        let snapshot = await supervisor.snapshot()
        XCTAssertEqual(snapshot.status, "running")
        XCTAssertEqual(snapshot.children.first?.state, .running)
        XCTAssertEqual(snapshot.children.first?.restarts, 3)
        XCTAssertEqual(snapshot.children.first?.lastError, "boom 3")
        await supervisor.stop()
    }

    func testTooManyRestartsEscalateToTheParent() async {
        let escalated = Journal()
        let supervisor = Supervisor(
            name: "t", intensity: .init(maxRestarts: 3, window: .seconds(30)),
            backoff: Backoff(base: .milliseconds(1), cap: .milliseconds(5))
        ) { reason in await escalated.add(reason) }
        let journal = Journal()
        await supervisor.start(ChildSpec(name: "steady") {
            await journal.add("steady")
            try await Task.sleep(for: .seconds(60))
        })
        await supervisor.start(ChildSpec(name: "doomed") { throw Boom(n: 0) })
        await eventually { await escalated.entries.count == 1 }
        let reason = await escalated.entries.first ?? ""
        XCTAssertTrue(reason.contains("doomed"), reason)
        let snapshot = await supervisor.snapshot()
        XCTAssertEqual(snapshot.status, "degraded")
        XCTAssertEqual(snapshot.escalation, reason)
        XCTAssertEqual(snapshot.children.first { $0.name == "doomed" }?.state, .failed)
        XCTAssertEqual(snapshot.children.first { $0.name == "steady" }?.state, .stopped)
        XCTAssertEqual(snapshot.children.first { $0.name == "doomed" }?.restarts, 4)
        // Nothing restarts once degraded.
        try? await Task.sleep(for: .milliseconds(50))
        let restarts = await supervisor.snapshot().children.first { $0.name == "doomed" }?.restarts
        XCTAssertEqual(restarts, 4)
        let refused = await supervisor.start(ChildSpec(name: "late") {})
        XCTAssertFalse(refused)
    }

    func testRestartTypes() async {
        let journal = Journal()
        let supervisor = Supervisor(name: "t", backoff: Backoff(base: .milliseconds(1), cap: .milliseconds(2)))
        await supervisor.start(ChildSpec(name: "transient-ok", restart: .transient) { await journal.add("transient-ok") })
        await supervisor.start(ChildSpec(name: "temporary-fail", restart: .temporary) {
            await journal.add("temporary-fail")
            throw Boom(n: 1)
        })
        await supervisor.start(ChildSpec(name: "transient-fail", restart: .transient) {
            await journal.add("transient-fail")
            if await journal.count("transient-fail") < 3 { throw Boom(n: 2) }
        })
        await eventually { await journal.count("transient-fail") == 3 }
        try? await Task.sleep(for: .milliseconds(50))
        let okCount = await journal.count("transient-ok")
        let temporaryCount = await journal.count("temporary-fail")
        let failCount = await journal.count("transient-fail")
        XCTAssertEqual(okCount, 1, "a transient child that returns normally is not restarted")
        XCTAssertEqual(temporaryCount, 1, "a temporary child is never restarted")
        XCTAssertEqual(failCount, 3, "a transient child is restarted until it returns normally")
        let states = Dictionary(uniqueKeysWithValues: await supervisor.snapshot().children.map { ($0.name, $0.state) })
        XCTAssertEqual(states["transient-ok"], .stopped)
        XCTAssertEqual(states["temporary-fail"], .failed)
        XCTAssertEqual(states["transient-fail"], .stopped)
        await supervisor.stop()
    }

    func testStopCancelsChildrenInReverseStartOrderAndWaits() async {
        let journal = Journal()
        let supervisor = Supervisor(name: "t")
        for name in ["a", "b", "c"] {
            await supervisor.start(ChildSpec(name: name) {
                await journal.add("up \(name)")
                do { try await Task.sleep(for: .seconds(60)) } catch {}
                try? await Task.sleep(for: .milliseconds(10))  // cleanup work that stop() must wait for
                await journal.add("down \(name)")
            })
        }
        await eventually { await journal.entries.count == 3 }
        await supervisor.stop()
        let entries = await journal.entries
        XCTAssertEqual(Array(entries.suffix(3)), ["down c", "down b", "down a"])
        let snapshot = await supervisor.snapshot()
        XCTAssertEqual(snapshot.status, "stopped")
        XCTAssertTrue(snapshot.children.allSatisfy { $0.state == .stopped })
        try? await Task.sleep(for: .milliseconds(30))
        let after = await journal.entries.count
        XCTAssertEqual(after, 6, "no child is restarted after stop")
    }

    func testOneForAllRestartsTheSiblingsToo() async {
        let journal = Journal()
        let supervisor = Supervisor(name: "t", strategy: .oneForAll, backoff: Backoff(base: .milliseconds(5), cap: .milliseconds(10)))
        await supervisor.start(ChildSpec(name: "partner") {
            await journal.add("partner")
            try await Task.sleep(for: .seconds(60))
        })
        await supervisor.start(ChildSpec(name: "failing") {
            await journal.add("failing")
            if await journal.count("failing") == 1 { throw Boom(n: 1) }
            try await Task.sleep(for: .seconds(60))
        })
        await eventually {
            let partner = await journal.count("partner")
            let failing = await journal.count("failing")
            return partner == 2 && failing == 2
        }
        let partnerRestarts = await supervisor.snapshot().children.first { $0.name == "partner" }?.state
        XCTAssertEqual(partnerRestarts, .running)
        await supervisor.stop()
    }

    func testSnapshotShowsTheBackoffOfAWaitingChild() async {
        let supervisor = Supervisor(name: "t", backoff: Backoff(base: .seconds(5), cap: .seconds(10)))
        await supervisor.start(ChildSpec(name: "down") { throw Boom(n: 7) })
        await eventually { await supervisor.snapshot().children.first?.state == .backingOff }
        let child = await supervisor.snapshot().children.first
        XCTAssertEqual(child?.restarts, 1)
        XCTAssertEqual(child?.lastError, "boom 7")
        XCTAssertGreaterThan(child?.backoffMs ?? 0, 4000)
        XCTAssertLessThanOrEqual(child?.backoffMs ?? 0, 5000)
        await supervisor.stop()
    }

    func testLimiterServesWaitersInOrderAndDropsCancelledOnes() async throws {
        let limiter = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 10)
        try await limiter.acquire()
        let journal = Journal()
        let first = Task { try await limiter.acquire(); await journal.add("first"); limiter.release() }
        try await Task.sleep(for: .milliseconds(20))
        let cancelled = Task { try await limiter.acquire(); await journal.add("cancelled") }
        try await Task.sleep(for: .milliseconds(20))
        let third = Task { try await limiter.acquire(); await journal.add("third"); limiter.release() }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        limiter.release()
        try await first.value
        try await third.value
        let result = await cancelled.result
        XCTAssertThrowsError(try result.get())
        let entries = await journal.entries
        XCTAssertEqual(entries, ["first", "third"])
    }

    func testLimiterWaitsWithinADeadlineAndLeavesTheQueueWhenItPasses() async throws {
        let limiter = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 10)
        try await limiter.acquire(within: .milliseconds(10))
        do {
            try await limiter.acquire(within: .milliseconds(30))
            XCTFail("the slot is held: the wait must time out")
        } catch let error as TimeoutError {
            XCTAssertEqual(error.after, .milliseconds(30))
        }
        XCTAssertEqual(limiter.queuedCount, 0, "a timed-out waiter leaves the queue")
        let waiter = Task { try await limiter.acquire(within: .seconds(5)) }
        try await Task.sleep(for: .milliseconds(20))
        limiter.release()
        try await waiter.value
        XCTAssertEqual(limiter.activeCount, 1, "the slot passed to the waiter")
        limiter.release()
        let full = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 0)
        try await full.acquire(within: .seconds(1))
        do {
            try await full.acquire(within: .seconds(1))
            XCTFail("no room to queue")
        } catch let refusal as ConcurrencyLimiter.Refusal {
            XCTAssertEqual(refusal, .queueFull)
        }
    }
}
