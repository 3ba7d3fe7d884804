import NIOConcurrencyHelpers
import XCTest

@testable import Tenancy

final class FairWriterGateTests: XCTestCase {
    /// Lane "a" queues ten holders before lane "b" asks once: b's turn comes right after a's
    /// first waiter, not after all ten.
    func testLanesTakeTurnsForTheWriter() async throws {
        let gate = FairWriterGate()
        let order = NIOLockedValueBox<[String]>([])
        await gate.acquire(lane: "a")
        var tasks: [Task<Void, Never>] = []
        for index in 0..<10 {
            tasks.append(Task {
                await gate.acquire(lane: "a")
                order.withLockedValue { $0.append("a\(index)") }
                gate.release()
            })
            try await Task.sleep(for: .milliseconds(5))
        }
        tasks.append(Task {
            await gate.acquire(lane: "b")
            order.withLockedValue { $0.append("b") }
            gate.release()
        })
        try await Task.sleep(for: .milliseconds(20))
        gate.release()
        for task in tasks { await task.value }
        let seen = order.withLockedValue { $0 }
        XCTAssertEqual(seen.count, 11)
        XCTAssertEqual(seen.firstIndex(of: "b"), 1, "b waited for one of a's turns, not ten: \(seen)")
        XCTAssertEqual(seen.filter { $0.hasPrefix("a") }, (0..<10).map { "a\($0)" }, "first come, first served within a lane")
    }
}
