import NIOCore
import NIOPosix
import XCTest

@testable import Runtime

final class DeadlineQueueTests: XCTestCase {
    /// Entries fire once each, in deadline order — also one set later with a shorter length — and a
    /// removed entry never fires.
    func testFiresDueEntriesInOrderAndNeverRemovedOnes() async throws {
        let queue = DeadlineQueue()
        let fired = FiredLog()
        _ = queue.add(after: .milliseconds(120)) { fired.append("long") }
        let removed = queue.add(after: .milliseconds(60)) { fired.append("removed") }
        _ = queue.add(after: .milliseconds(40)) { fired.append("short, set later") }
        _ = queue.add(after: .milliseconds(80)) { fired.append("middle") }
        queue.remove(removed)
        XCTAssertEqual(queue.count, 3)
        try await Task.sleep(for: .milliseconds(400))
        XCTAssertEqual(fired.entries, ["short, set later", "middle", "long"])
        XCTAssertEqual(queue.count, 0)
        // Re-armed after running empty.
        _ = queue.add(after: .milliseconds(10)) { fired.append("again") }
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(fired.entries.last, "again")
    }

    /// The calling task is cancelled at the deadline and the caller gets `TimeoutError`; a body
    /// that finishes in time is not cancelled, and nothing fires for it afterwards.
    func testCancellingCallerCancelsAtTheDeadlineOnly() async throws {
        let queue = DeadlineQueue()
        let late = Task {
            try await queue.cancellingCaller(after: .milliseconds(50)) {
                try await Task.sleep(for: .seconds(10))
            }
        }
        let started = ContinuousClock.now
        do {
            try await late.value
            XCTFail("must time out")
        } catch is TimeoutError {
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        }
        let inTime = Task { () -> Bool in
            let value = try await queue.cancellingCaller(after: .milliseconds(100)) { 42 }
            XCTAssertEqual(value, 42)
            try await Task.sleep(for: .milliseconds(250))
            return Task.isCancelled
        }
        let cancelledLater = try await inTime.value
        XCTAssertFalse(cancelledLater, "a body done in time leaves its task alone")
        XCTAssertEqual(queue.count, 0)
    }

    /// A task preferring a loop's executor runs its nonisolated async code on that loop.
    func testEventLoopTaskExecutorKeepsTheTaskOnItsLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let onLoop = try await EventLoopTaskExecutor.preferring(loop) { () async throws -> [Bool] in
            var seen: [Bool] = []
            for _ in 0..<5 {
                seen.append(loop.inEventLoop)
                try await Task.sleep(for: .milliseconds(1))
                seen.append(loop.inEventLoop)
            }
            return seen
        }
        XCTAssertEqual(onLoop, Array(repeating: true, count: 10))
    }

    func testHexEncodesBytesInPlaceAndFromSequences() {
        XCTAssertEqual(Hex.encode([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff")
        XCTAssertEqual(Hex.encode(Array<UInt8>()), "")
        XCTAssertEqual(Hex.encode((0..<3).lazy.map { UInt8($0 * 17) }), "001122")
    }
}

private final class FiredLog: @unchecked Sendable {
    private let lock = Lock()
    private var items: [String] = []
    func append(_ item: String) { lock.withLock { items.append(item) } }
    var entries: [String] { lock.withLock { items } }
}
