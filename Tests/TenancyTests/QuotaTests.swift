import Foundation
import Runtime
import XCTest
@testable import Tenancy

final class QuotaTests: XCTestCase {
    func testTokenBucketAllowsTheBurstThenSaysWhenToRetry() {
        let bucket = TokenBucket(rate: 1, capacity: 3)
        for _ in 0..<3 { XCTAssertEqual(bucket.take(), .allowed) }
        guard case .limited(let retryAfter) = bucket.take() else { return XCTFail("fourth request must be limited") }
        XCTAssertGreaterThan(retryAfter, 0.5)
        XCTAssertLessThanOrEqual(retryAfter, 1.0)
    }

    func testTokenBucketRefills() async throws {
        let bucket = TokenBucket(rate: 100, capacity: 1)
        XCTAssertEqual(bucket.take(), .allowed)
        try await Task.sleep(for: .milliseconds(30))
        XCTAssertEqual(bucket.take(), .allowed)
    }

    func testLimiterQueuesUpToItsBoundThenRefuses() async throws {
        let limiter = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 1)
        try await limiter.acquire()
        let waiter = Task { try await limiter.acquire() }
        let queued = await waitUntil { limiter.queuedCount == 1 }
        XCTAssertTrue(queued)
        do {
            try await limiter.acquire()
            XCTFail("a full queue must refuse")
        } catch let refusal as ConcurrencyLimiter.Refusal {
            XCTAssertEqual(refusal, .queueFull)
        }
        limiter.release()
        try await waiter.value
        XCTAssertEqual(limiter.activeCount, 1)
        limiter.release()
        XCTAssertEqual(limiter.activeCount, 0)
    }

    func testCancelledWaiterLeavesTheQueue() async throws {
        let limiter = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 4)
        try await limiter.acquire()
        let waiter = Task { try await limiter.acquire() }
        _ = await waitUntil { limiter.queuedCount == 1 }
        waiter.cancel()
        let result = await waiter.result
        XCTAssertThrowsError(try result.get())
        XCTAssertEqual(limiter.queuedCount, 0)
        limiter.release()
        XCTAssertEqual(limiter.activeCount, 0, "the cancelled waiter did not take the slot")
    }

    func testRaisingTheCapAdmitsWaiters() async throws {
        let limiter = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: 4)
        try await limiter.acquire()
        let waiter = Task { try await limiter.acquire() }
        _ = await waitUntil { limiter.queuedCount == 1 }
        limiter.reconfigure(maxConcurrent: 2, maxQueued: 4)
        try await waiter.value
        XCTAssertEqual(limiter.activeCount, 2)
    }

    func testGateEnforcesTheDeadlineAndFreesTheSlot() async throws {
        var limits = TenantLimits.default
        limits.requestTimeoutMs = 50
        limits.maxConcurrent = 1
        let gate = RequestGate(limits: limits)
        // The deadline cancels the calling task (a request's, ended with it): one task per call.
        let started = ContinuousClock.now
        let late = Task { try await gate.run { try await Task.sleep(for: .seconds(10)); return 1 } }
        do {
            _ = try await late.value
            XCTFail("must time out")
        } catch let refusal as RequestGate.Refusal {
            XCTAssertEqual(refusal, .deadlineExceeded)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertEqual(gate.activeCount, 0)
        let value = try await Task { try await gate.run { 42 } }.value
        XCTAssertEqual(value, 42)
    }

    func testGateRefusesOverTheRateWithRetryAfter() async throws {
        var limits = TenantLimits.default
        limits.requestsPerSecond = 0.5
        limits.burst = 1
        let gate = RequestGate(limits: limits)
        _ = try await gate.run { 1 }
        do {
            _ = try await gate.run { 1 }
            XCTFail("must be rate limited")
        } catch let refusal as RequestGate.Refusal {
            XCTAssertEqual(refusal, .rateLimited(retryAfter: 2))
        }
    }
}

import TestSupport
