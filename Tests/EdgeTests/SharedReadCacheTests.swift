import Connectors
import Foundation
import Logging
import Runtime
import XCTest
@testable import Edge

/// The shared read-cache tier against the real redis-server the test command starts: what one
/// node stores another finds, an invalidation hides every older entry at once, entries expire,
/// and a Redis that is away costs misses, not errors.
final class SharedReadCacheTests: XCTestCase {
    private func redis() throws -> RedisClient {
        guard let text = ProcessInfo.processInfo.environment["MINIBAAS_TEST_REDIS_URL"] else {
            struct Missing: Error, CustomStringConvertible { var description: String { "MINIBAAS_TEST_REDIS_URL is not set: run ./scripts/test" } }
            throw Missing()
        }
        return RedisClient(url: try RedisURL(text), logger: Logger(label: "test"))
    }

    /// Stores are not awaited by the caller: poll until the entry is there.
    private func eventually(_ cache: SharedReadCache, _ key: String, generation: Int64) async -> StatementResult? {
        for _ in 0..<100 {
            if let found = await cache.get(key, source: "main", generation: generation) { return found }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    func testOneNodeStoresAnotherFindsAndInvalidationHidesOlderEntries() async throws {
        let prefix = "mb-test-\(UUID().uuidString):"
        let nodeA = SharedReadCache(redis: try redis(), prefix: prefix, tenant: "acme", ttl: .seconds(30))
        let nodeB = SharedReadCache(redis: try redis(), prefix: prefix, tenant: "acme", ttl: .seconds(30))
        let generation = await nodeA.generation(of: "main")
        XCTAssertEqual(generation, 0)
        nodeA.put("q1", source: "main", generation: 0, StatementResult(body: "[{\"id\":1}]", count: 1, total: 7))
        let found = await eventually(nodeB, "q1", generation: 0)
        XCTAssertEqual(found?.body, "[{\"id\":1}]")
        XCTAssertEqual(found?.count, 1)
        XCTAssertEqual(found?.total, 7)
        let generationB = await nodeB.generation(of: "main")
        XCTAssertEqual(generationB, 0)
        let otherTenant = SharedReadCache(redis: try redis(), prefix: prefix, tenant: "other", ttl: .seconds(30))
        let notShared = await otherTenant.get("q1", source: "main", generation: 0)
        XCTAssertNil(notShared, "another tenant never finds this tenant's entries")

        nodeA.invalidate(source: "main")
        // Bypassed at once, before Redis has answered.
        let during = await nodeA.generation(of: "main")
        XCTAssertNil(during)
        var after: Int64?
        for _ in 0..<100 {
            after = await nodeA.generation(of: "main")
            if after != nil { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertEqual(after, 1)
        let missed = await nodeA.get("q1", source: "main", generation: 1)
        XCTAssertNil(missed, "the entry made before the change is not found under the new generation")
        // A node that takes the tenant over reads the new generation.
        let newOwner = SharedReadCache(redis: try redis(), prefix: prefix, tenant: "acme", ttl: .seconds(30))
        let newOwnerGeneration = await newOwner.generation(of: "main")
        XCTAssertEqual(newOwnerGeneration, 1)
        // Other sources keep theirs.
        let untouched = await newOwner.generation(of: "other-source")
        XCTAssertEqual(untouched, 0)
    }

    func testEntriesExpire() async throws {
        let cache = SharedReadCache(redis: try redis(), prefix: "mb-test-\(UUID().uuidString):", tenant: "acme", ttl: .milliseconds(300))
        cache.put("q", source: "main", generation: 0, StatementResult(body: nil, count: 0, total: nil))
        let found = await eventually(cache, "q", generation: 0)
        XCTAssertNotNil(found)
        XCTAssertNil(found?.body)
        try await Task.sleep(for: .milliseconds(600))
        let expired = await cache.get("q", source: "main", generation: 0)
        XCTAssertNil(expired)
    }

    func testRedisAwayMeansMissesNotErrors() async throws {
        // A port nothing listens on.
        let socket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(socket)
        let away = RedisClient(url: try RedisURL("redis://127.0.0.1:\(port)"), logger: Logger(label: "test"))
        let cache = SharedReadCache(redis: away, prefix: "mb-test:", tenant: "acme", ttl: .seconds(1))
        let start = ContinuousClock.now
        let generation = await cache.generation(of: "main")
        XCTAssertNil(generation)
        let found = await cache.get("q", source: "main", generation: 0)
        XCTAssertNil(found)
        cache.invalidate(source: "main")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }

    func testEncodingRoundTrips() {
        let cases = [
            StatementResult(body: "[1,\n2]\n", count: 2, total: nil),
            StatementResult(body: "", count: 0, total: 0),
            StatementResult(body: nil, count: 3, total: 12),
            StatementResult(body: "!", count: 1, total: nil),
        ]
        for original in cases {
            let decoded = SharedReadCache.decode(SharedReadCache.encode(original))
            XCTAssertEqual(decoded?.body, original.body)
            XCTAssertEqual(decoded?.count, original.count)
            XCTAssertEqual(decoded?.total, original.total)
        }
        for garbage in ["", "x", "1\n", "1 2 3\n=a", "a -\n=a", "1 x\n=a", "1 -\nno marker"] {
            XCTAssertNil(SharedReadCache.decode(garbage), garbage)
        }
    }
}
