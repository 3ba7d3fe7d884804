import Connectors
import Foundation
import Logging
import Runtime
import XCTest
@testable import Edge
@testable import TenantRuntime

/// The shared read-cache tier against the real redis-server the test command starts: what one
/// node stores another finds; an invalidation hides older entries at once, and so does a
/// configuration change; a counter Redis lost, a store racing an invalidation, an oversized body;
/// expiry; and a Redis that is away or silent costing misses within its short timeout.
final class SharedReadCacheTests: XCTestCase {
    private func redisURL() throws -> RedisURL {
        guard let text = ProcessInfo.processInfo.environment["MINIBAAS_TEST_REDIS_URL"] else {
            struct Missing: Error, CustomStringConvertible { var description: String { "MINIBAAS_TEST_REDIS_URL is not set: run ./scripts/test" } }
            throw Missing()
        }
        return try RedisURL(text)
    }

    private func client(_ url: RedisURL? = nil) throws -> RedisClient {
        RedisClient(url: try url ?? redisURL(), commandTimeout: .milliseconds(200), connectTimeout: .milliseconds(500), logger: Logger(label: "test"))
    }

    private func cache(_ prefix: String, tenant: String = "acme", configuration: Int64 = 0, ttl: Duration = .seconds(30)) throws -> SharedReadCache {
        SharedReadCache(redis: try client(), prefix: prefix, tenant: tenant, configuration: configuration, ttl: ttl)
    }

    /// Stores are not awaited by the caller: poll until the entry is there.
    private func eventually(_ cache: SharedReadCache, _ key: String, _ ticket: SharedReadCache.Ticket) async -> StatementResult? {
        for _ in 0..<100 {
            if let found = await cache.get(key, ticket) { return found.result }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    private func ticket(_ cache: SharedReadCache, _ source: String = "main") async throws -> SharedReadCache.Ticket {
        let ticket = await cache.ticket(for: source)
        return try XCTUnwrap(ticket)
    }

    func testOneNodeStoresAnotherFindsAndInvalidationHidesOlderEntries() async throws {
        let prefix = "mb-test-\(UUID().uuidString):"
        let nodeA = try cache(prefix)
        let nodeB = try cache(prefix)
        let first = try await ticket(nodeA)
        XCTAssertEqual(first.generation, 0)
        nodeA.put("q1", first, StatementResult(body: "[{\"id\":1}]", count: 1, total: 7))
        let found = await eventually(nodeB, "q1", try await ticket(nodeB))
        XCTAssertEqual(found?.body, "[{\"id\":1}]")
        XCTAssertEqual(found?.count, 1)
        XCTAssertEqual(found?.total, 7)
        let notShared = await (try cache(prefix, tenant: "other")).get("q1", first)
        XCTAssertNil(notShared, "another tenant never finds this tenant's entries")

        // A read that started before the write must not store its answer after it.
        let before = try await ticket(nodeA)
        let bump = nodeA.startInvalidation(of: "main")
        let during = await nodeA.ticket(for: "main")
        XCTAssertNil(during, "bypassed at once, before Redis has answered")
        await bump.value
        nodeA.put("q2", before, StatementResult(body: "[\"stale\"]", count: 1, total: nil))
        let after = try await ticket(nodeA)
        XCTAssertEqual(after.generation, 1)
        let missed = await nodeA.get("q1", after)
        XCTAssertNil(missed, "the entry made before the change is not found under the new generation")
        try await Task.sleep(for: .milliseconds(100))
        let raced = await nodeA.get("q2", before)
        XCTAssertNil(raced, "a store that raced the invalidation was dropped")
        // A node that takes the tenant over reads the new generation; other sources keep theirs.
        let newOwner = try cache(prefix)
        let newOwnerTicket = try await ticket(newOwner)
        XCTAssertEqual(newOwnerTicket.generation, 1)
        let untouched = try await ticket(newOwner, "other-source")
        XCTAssertEqual(untouched.generation, 0)
    }

    func testConfigurationChangeHidesEveryEntry() async throws {
        let prefix = "mb-test-\(UUID().uuidString):"
        let redis = try client()
        let generation = await SharedReadCache.configurationGeneration(redis: redis, prefix: prefix, tenant: "acme")
        XCTAssertEqual(generation, 0)
        let old = try cache(prefix, configuration: 0)
        let oldTicket = try await ticket(old)
        old.put("q", oldTicket, StatementResult(body: "[1]", count: 1, total: nil))
        let stored = await eventually(old, "q", oldTicket)
        XCTAssertNotNil(stored)
        let changed = await SharedReadCache.configurationChanged(redis: redis, prefix: prefix, tenant: "acme")
        XCTAssertTrue(changed)
        let next = await SharedReadCache.configurationGeneration(redis: redis, prefix: prefix, tenant: "acme")
        XCTAssertEqual(next, 1)
        let restarted = try cache(prefix, configuration: 1)
        let found = await restarted.get("q", try await ticket(restarted))
        XCTAssertNil(found, "a tree started after a policy or source change never sees entries made before it")
    }

    func testACounterRedisLostBypassesTheTierForALifetime() async throws {
        let prefix = "mb-test-\(UUID().uuidString):"
        let node = try cache(prefix, ttl: .milliseconds(500))
        await node.invalidate(source: "main")
        await node.invalidate(source: "main")
        let known = try await ticket(node)
        XCTAssertEqual(known.generation, 2)
        // Redis restarted without its data: the next INCR answers 1, which is not above 2.
        _ = try await client().send(["DEL", "\(prefix)cache:gen:acme:main"])
        await node.invalidate(source: "main")
        let bypassed = await node.ticket(for: "main")
        XCTAssertNil(bypassed, "entries stored under the old numbers could come back: bypassed")
        try await Task.sleep(for: .milliseconds(700))
        let again = try await ticket(node)
        XCTAssertEqual(again.generation, 1, "read afresh once the bypass is over")
    }

    func testEntriesExpireAndOversizedBodiesAreNotStored() async throws {
        let node = try cache("mb-test-\(UUID().uuidString):", ttl: .milliseconds(400))
        let current = try await ticket(node)
        node.put("q", current, StatementResult(body: nil, count: 0, total: nil))
        let found = await eventually(node, "q", current)
        XCTAssertNotNil(found)
        XCTAssertNil(found?.body)
        let remaining = await node.get("q", current)?.remaining
        XCTAssertLessThanOrEqual(remaining ?? .seconds(1), .milliseconds(400), "a copy taken locally lives only what the entry has left")
        node.put("big", current, StatementResult(body: String(repeating: "x", count: SharedReadCache.maxEntryBytes + 1), count: 1, total: nil))
        try await Task.sleep(for: .milliseconds(600))
        let expired = await node.get("q", current)
        XCTAssertNil(expired)
        let big = await node.get("big", current)
        XCTAssertNil(big)
    }

    func testRedisAwayOrSilentMeansQuickMisses() async throws {
        // One port nothing listens on, and one that accepts connections but never answers.
        func listener(listening: Bool) -> (Int32, Int) {
            #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            if listening { listen(fd, 16) }
            return (fd, Int(UInt16(bigEndian: address.sin_port)))
        }
        let (closedSocket, closedPort) = listener(listening: false)
        close(closedSocket)
        let (silentSocket, silentPort) = listener(listening: true)
        defer { close(silentSocket) }
        for port in [closedPort, silentPort] {
            let redis = try client(try RedisURL("redis://127.0.0.1:\(port)"))
            let node = SharedReadCache(redis: redis, prefix: "mb-test:", tenant: "acme", configuration: 0, ttl: .seconds(1))
            let start = ContinuousClock.now
            let ticket = await node.ticket(for: "main")
            XCTAssertNil(ticket)
            XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(1500), "port \(port): bounded by the short timeouts")
            let generation = await SharedReadCache.configurationGeneration(redis: redis, prefix: "mb-test:", tenant: "acme")
            XCTAssertNil(generation, "a tree that cannot read it runs without the tier")
            // Turned off for a while: the next read does not wait on Redis at all.
            let again = ContinuousClock.now
            let second = await node.ticket(for: "main")
            XCTAssertNil(second)
            XCTAssertLessThan(ContinuousClock.now - again, .milliseconds(50))
        }
    }

    func testEncodingRoundTrips() {
        let cases = [
            StatementResult(body: "[1,\n2]\n", count: 2, total: nil),
            StatementResult(body: "", count: 0, total: 0),
            StatementResult(body: nil, count: 3, total: 12),
            StatementResult(body: "!", count: 1, total: nil),
            StatementResult(body: "\u{301}combining first", count: 1, total: nil),
        ]
        for original in cases {
            let decoded = SharedReadCache.decode(SharedReadCache.encode(original, expires: 1_700_000_000_000))
            XCTAssertEqual(decoded?.0.body, original.body)
            XCTAssertEqual(decoded?.0.count, original.count)
            XCTAssertEqual(decoded?.0.total, original.total)
            XCTAssertEqual(decoded?.expires, 1_700_000_000_000)
        }
        for garbage in ["", "x", "1 - 5\n", "1 2\n=a", "a - 5\n=a", "1 x 5\n=a", "1 - x\n=a", "1 - 5\nno marker"] {
            XCTAssertNil(SharedReadCache.decode(garbage), garbage)
        }
    }
}
