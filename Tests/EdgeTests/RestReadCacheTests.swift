import Connectors
import XCTest
@testable import Edge
@testable import TenantRuntime

/// The read cache's bounds: least recently used out first, bytes bounded, a source's entries
/// dropped together, nothing served past its life.
final class RestReadCacheTests: XCTestCase {
    private func result(_ body: String) -> StatementResult {
        StatementResult(body: body, count: 1, total: nil)
    }

    func testLeastRecentlyUsedGoesFirst() {
        let cache = RestReadCache(tenant: "lru", maxEntries: 3)
        cache.put("a", source: "main", result("1"))
        cache.put("b", source: "main", result("2"))
        cache.put("c", source: "main", result("3"))
        XCTAssertEqual(cache.get("a")?.body, "1", "a is now the most recently used")
        cache.put("d", source: "main", result("4"))
        XCTAssertNil(cache.get("b"), "b was the least recently used")
        XCTAssertEqual(cache.get("a")?.body, "1")
        XCTAssertEqual(cache.get("c")?.body, "3")
        XCTAssertEqual(cache.get("d")?.body, "4")
        XCTAssertEqual(cache.count, 3)
        // Replacing an entry does not count it twice.
        cache.put("a", source: "main", result("1b"))
        XCTAssertEqual(cache.count, 3)
        XCTAssertEqual(cache.get("a")?.body, "1b")
    }

    func testManyUsesStayBoundedAndOrdered() {
        let cache = RestReadCache(tenant: "churn", maxEntries: 100)
        for round in 0..<50 {
            for index in 0..<100 { cache.put("k\(round * 100 + index)", source: "main", result("\(index)")) }
            // Hits on the newest half keep them; the older half goes at the next round.
            for _ in 0..<20 { for index in 50..<100 { _ = cache.get("k\(round * 100 + index)") } }
        }
        XCTAssertEqual(cache.count, 100)
        XCTAssertNotNil(cache.get("k4999"))
        XCTAssertNil(cache.get("k4800"), "entries of earlier rounds are gone")
    }

    func testAnAnswerReadBeforeAnInvalidationIsNotStored() {
        let cache = RestReadCache(tenant: "race")
        let epoch = cache.epoch(of: "main")
        cache.invalidate(source: "main")
        cache.put("q", source: "main", epoch: epoch, result("stale"))
        XCTAssertNil(cache.get("q"), "read before the write, finished after it: not kept")
        cache.put("q", source: "main", epoch: cache.epoch(of: "main"), result("fresh"))
        XCTAssertEqual(cache.get("q")?.body, "fresh")
        cache.put("short", source: "main", lifetime: .milliseconds(30), result("from the shared tier"))
        XCTAssertNotNil(cache.get("short"))
        Thread.sleep(forTimeInterval: 0.06)
        XCTAssertNil(cache.get("short"), "a copy lives only what the shared entry had left")
    }

    func testBytesBoundAndSourceInvalidation() {
        let cache = RestReadCache(tenant: "bytes", maxEntries: 1000, maxBytes: 8000)
        let body = String(repeating: "x", count: 900)
        for index in 0..<20 { cache.put("k\(index)", source: index % 2 == 0 ? "main" : "other", result(body)) }
        XCTAssertLessThanOrEqual(cache.count, 8, "at most 8,000 bytes of entries")
        XCTAssertNotNil(cache.get("k19"))
        cache.invalidate(source: "other")
        XCTAssertNil(cache.get("k19"))
        XCTAssertNotNil(cache.get("k18"))
        cache.put("huge", source: "main", result(String(repeating: "y", count: 2000)))
        XCTAssertNil(cache.get("huge"), "one answer larger than an eighth of the shard is not kept")
    }

    func testEntriesExpire() async throws {
        let cache = RestReadCache(tenant: "ttl", ttl: .milliseconds(50))
        cache.put("a", source: "main", result("1"))
        XCTAssertNotNil(cache.get("a"))
        try await Task.sleep(for: .milliseconds(80))
        XCTAssertNil(cache.get("a"))
        XCTAssertEqual(cache.count, 0)
    }
}
