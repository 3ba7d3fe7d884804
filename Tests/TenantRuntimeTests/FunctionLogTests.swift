import Foundation
import XCTest

@testable import TenantRuntime

/// A function's call log keeps its newest entries, newest first, without growing.
final class FunctionLogTests: XCTestCase {
    func testTheLogKeepsTheNewestEntries() {
        var ring = LogRing()
        for index in 0..<5 {
            ring.append(
                FunctionLogEntry(
                    requestID: String(index), at: Date(), function: "f", version: 1, method: "GET", path: "/", status: 200, code: nil, durationMs: 1,
                    queueMs: 0, fuel: 1, memoryBytes: 65_536, stderr: ""),
                capacity: 3)
        }
        XCTAssertEqual(ring.newestFirst.map(\.requestID), ["4", "3", "2"])
        var partial = LogRing()
        partial.append(
            FunctionLogEntry(
                requestID: "a", at: Date(), function: "f", version: 1, method: "GET", path: "/", status: 200, code: nil, durationMs: 1, queueMs: 0,
                fuel: 1, memoryBytes: 0, stderr: ""),
            capacity: 3)
        XCTAssertEqual(partial.newestFirst.map(\.requestID), ["a"])
    }
}
