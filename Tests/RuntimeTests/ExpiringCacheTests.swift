import XCTest
@testable import Runtime

final class ExpiringCacheTests: XCTestCase {
    func testValuesExpireAndCanBeForgotten() async throws {
        let cache = ExpiringCache<Int>(capacity: 2)
        cache.remember(1, for: "a", during: .milliseconds(50))
        cache.remember(2, for: "b", during: .seconds(60))
        XCTAssertEqual(cache.value(for: "a"), 1)
        try await Task.sleep(for: .milliseconds(80))
        XCTAssertNil(cache.value(for: "a"), "past its deadline")
        XCTAssertEqual(cache.value(for: "b"), 2)
        cache.remember(3, for: "c", during: .seconds(60))
        cache.forgetAll { $0 == 2 }
        XCTAssertNil(cache.value(for: "b"))
        XCTAssertEqual(cache.value(for: "c"), 3)
        cache.forget("c")
        XCTAssertNil(cache.value(for: "c"))
        for key in ["d", "e", "f", "g"] { cache.remember(0, for: key, during: .seconds(60)) }
        XCTAssertNil(cache.value(for: "d"), "beyond capacity it started again empty")
        XCTAssertNil(cache.value(for: "e"))
        XCTAssertEqual(cache.value(for: "g"), 0)
    }
}
