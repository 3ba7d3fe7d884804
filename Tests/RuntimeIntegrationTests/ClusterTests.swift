import Foundation
import Logging
import XCTest
@testable import Runtime

/// Placement, and the lease contract both coordination backends must keep — in memory and
/// against the real redis-server the test command starts.
final class ClusterTests: XCTestCase {
    // MARK: - Rendezvous placement

    func testRendezvousSpreadsEvenlyAndIsStable() {
        let members = ["node-a", "node-b", "node-c"]
        var counts: [String: Int] = [:]
        for index in 0..<3000 {
            let owner = RendezvousHash.owner(of: "tenant-\(index)", among: members)!
            counts[owner, default: 0] += 1
            XCTAssertEqual(RendezvousHash.owner(of: "tenant-\(index)", among: members.reversed()), owner, "order of members does not matter")
        }
        XCTAssertEqual(Set(counts.keys), Set(members))
        for (member, count) in counts {
            XCTAssertTrue((850...1150).contains(count), "\(member) owns \(count) of 3000")
        }
        XCTAssertNil(RendezvousHash.owner(of: "t", among: [String]()))
    }

    func testRendezvousMovesOnlyWhatTheNewMemberWins() {
        let before = ["a", "b", "c"]
        let after = before + ["d"]
        var moved = 0
        for index in 0..<4000 {
            let key = "tenant-\(index)"
            let old = RendezvousHash.owner(of: key, among: before)!
            let new = RendezvousHash.owner(of: key, among: after)!
            if old != new {
                XCTAssertEqual(new, "d", "a tenant only ever moves to the member that joined")
                moved += 1
            }
            // And when a member leaves, only its tenants move.
            let without = before.filter { $0 != "b" }
            let survivor = RendezvousHash.owner(of: key, among: without)!
            if old != "b" { XCTAssertEqual(survivor, old) }
        }
        XCTAssertTrue((800...1200).contains(moved), "\(moved) of 4000 moved to the fourth member")
    }

    // MARK: - Lease contract

    func testLocalBackendKeepsTheLeaseContract() async throws {
        try await checkLeaseContract(LocalCoordinationBackend())
    }

    func testRedisBackendKeepsTheLeaseContract() async throws {
        let redis = RedisClient(url: try redisURL(), logger: Logger(label: "test"))
        let prefix = "test-\(UUID().uuidString):"
        // A Redis whose data began long ago: no quiet period.
        _ = try await redis.send(["SET", prefix + "epoch", "0"])
        try await checkLeaseContract(RedisCoordinationBackend(redis: redis, prefix: prefix))
        await redis.close()
    }

    /// After Redis lost its data, nobody is granted a new lease for one TTL — but a previous
    /// holder takes its own back at once.
    func testRedisAfterDataLossLetsPreviousHoldersBackFirst() async throws {
        let redis = RedisClient(url: try redisURL(), logger: Logger(label: "test"))
        let prefix = "test-\(UUID().uuidString):"
        let backend = RedisCoordinationBackend(redis: redis, prefix: prefix)
        guard case .settling(let remaining) = try await backend.acquire("t", node: "n2", incarnation: "i", ttl: .milliseconds(500)) else {
            return XCTFail("a Redis without an epoch is settling")
        }
        XCTAssertEqual(remaining, .milliseconds(500))
        let restored = try await backend.renew("x", holder: LeaseHolder(node: "n1", incarnation: "i", token: 7), ttl: .seconds(5))
        XCTAssertNotNil(restored, "a previous holder re-takes its lease during the quiet period")
        guard case .settling = try await backend.acquire("t", node: "n2", incarnation: "i", ttl: .milliseconds(500)) else {
            return XCTFail("still settling")
        }
        try await Task.sleep(for: .milliseconds(550))
        guard case .granted = try await backend.acquire("t", node: "n2", incarnation: "i", ttl: .milliseconds(500)) else {
            return XCTFail("granted once settled")
        }
        await redis.close()
    }

    private func checkLeaseContract(_ backend: any CoordinationBackend) async throws {
        let slug = "acme"
        guard case .granted(let first) = try await backend.acquire(slug, node: "n1", incarnation: "i1", ttl: .milliseconds(300)) else {
            return XCTFail("a free lease is granted")
        }
        let n1 = LeaseHolder(node: "n1", incarnation: "i1", token: first)
        guard case .held(let holder, let remaining) = try await backend.acquire(slug, node: "n2", incarnation: "i2", ttl: .seconds(5)) else {
            return XCTFail("a held lease is refused")
        }
        XCTAssertEqual(holder, n1)
        XCTAssertTrue(remaining > .zero && remaining <= .milliseconds(300))
        let holderNow = try await backend.holder(of: slug)
        XCTAssertEqual(holderNow, n1)
        let renewed = try await backend.renew(slug, holder: n1, ttl: .milliseconds(300))
        XCTAssertEqual(renewed, first, "renewing keeps the token")
        let stranger = try await backend.renew(slug, holder: LeaseHolder(node: "n2", incarnation: "i2", token: first), ttl: .seconds(1))
        XCTAssertNil(stranger, "only the holder renews")
        let sameNodeOtherLife = try await backend.renew(slug, holder: LeaseHolder(node: "n1", incarnation: "i0", token: first), ttl: .seconds(1))
        XCTAssertNil(sameNodeOtherLife, "a restarted node is another holder")

        // Lapsed: the next taker gets a larger token, and the old holder cannot renew.
        try await Task.sleep(for: .milliseconds(400))
        guard case .granted(let second) = try await backend.acquire(slug, node: "n2", incarnation: "i2", ttl: .seconds(5)) else {
            return XCTFail("a lapsed lease is free")
        }
        XCTAssertGreaterThan(second, first)
        let late = try await backend.renew(slug, holder: n1, ttl: .seconds(5))
        XCTAssertNil(late, "a paused holder that lost its lease cannot renew it")
        let n2 = LeaseHolder(node: "n2", incarnation: "i2", token: second)
        try await backend.release(slug, holder: n1)
        let stillN2 = try await backend.holder(of: slug)
        XCTAssertEqual(stillN2, n2, "releasing someone else's lease does nothing")
        let leases = try await backend.leases()
        XCTAssertEqual(leases[slug], n2)

        // A renewal that crosses a release does not take the lease back.
        try await backend.release(slug, holder: n2)
        let none = try await backend.holder(of: slug)
        XCTAssertNil(none)
        let crossed = try await backend.renew(slug, holder: n2, ttl: .seconds(5))
        XCTAssertNil(crossed, "released means released")

        // A holder whose lease lapsed with nobody taking it gets it back, under a new token; a
        // renewal carrying an older token of the same holder is still the holder's.
        guard case .granted(let third) = try await backend.acquire(slug, node: "n3", incarnation: "i3", ttl: .milliseconds(200)) else {
            return XCTFail("a released lease is free")
        }
        let n3 = LeaseHolder(node: "n3", incarnation: "i3", token: third)
        try await Task.sleep(for: .milliseconds(300))
        let retaken = try await backend.renew(slug, holder: n3, ttl: .seconds(5))
        XCTAssertNotNil(retaken)
        XCTAssertGreaterThan(retaken ?? 0, third)
        let batch = try await backend.renewAll([(slug, n3), (slug, n1)], ttl: .seconds(5))
        XCTAssertEqual(batch, [retaken, nil])

        // Membership: announced members expire unless they beat again.
        let member = ClusterMember(id: "n1", incarnation: "i1", address: "http://127.0.0.1:1", startedAt: Date(), lastHeartbeat: Date(), load: 3)
        // Long enough that a loaded CI machine reads it back before it expires (300 ms was not).
        try await backend.announce(member, ttl: .milliseconds(1500))
        let live = try await backend.members()
        XCTAssertEqual(live.map(\.id), ["n1"])
        XCTAssertEqual(live.first?.address, member.address)
        XCTAssertEqual(live.first?.load, 3)
        try await Task.sleep(for: .milliseconds(1700))
        let expired = try await backend.members()
        XCTAssertEqual(expired, [])
        try await backend.announce(member, ttl: .seconds(5))
        try await backend.withdraw(member)
        let withdrawn = try await backend.members()
        XCTAssertEqual(withdrawn, [])

        // Events reach every subscriber.
        let events = try await backend.events()
        try await Task.sleep(for: .milliseconds(50))
        try await backend.publish(ClusterEvent(kind: .tenantChanged, slug: slug, origin: "n1"))
        var iterator = events.makeAsyncIterator()
        let received = await iterator.next()
        XCTAssertEqual(received, ClusterEvent(kind: .tenantChanged, slug: slug, origin: "n1"))
    }

    /// A Redis without persistence that restarts forgets every fencing counter; tokens must still
    /// never go back, or a stale owner's writes would look newer than the new owner's.
    func testRedisTokensKeepIncreasingWhenRedisForgetsEverything() async throws {
        let prefix = "test-\(UUID().uuidString):"
        let redis = RedisClient(url: try redisURL(), logger: Logger(label: "test"))
        let backend = RedisCoordinationBackend(redis: redis, prefix: prefix)
        _ = try await redis.send(["SET", prefix + "epoch", "0"])
        guard case .granted(let before) = try await backend.acquire("t", node: "n1", incarnation: "i", ttl: .seconds(5)) else {
            return XCTFail("granted")
        }
        // What a restart loses: the lease and the counter.
        _ = try await redis.send(["DEL", prefix + "lease:t", prefix + "fence:t"])
        let after = try await backend.renew("t", holder: LeaseHolder(node: "n1", incarnation: "i", token: before), ttl: .seconds(5))
        XCTAssertGreaterThan(after ?? 0, before)
        _ = try await redis.send(["DEL", prefix + "lease:t", prefix + "fence:t"])
        guard case .granted(let later) = try await backend.acquire("t", node: "n2", incarnation: "i", ttl: .seconds(5)) else {
            return XCTFail("granted")
        }
        XCTAssertGreaterThan(later, after ?? .max)
        await redis.close()
    }

    /// Two coordinators on one Redis: the tenant goes to its rendezvous owner whichever node is
    /// asked, the other forwards, and a lease given up moves on.
    func testTwoCoordinatorsAgreeOnOwnersThroughRedis() async throws {
        let prefix = "test-\(UUID().uuidString):"
        var settings = ClusterCoordinator.Configuration()
        settings.heartbeatInterval = .milliseconds(100)
        settings.leaseTTL = .seconds(2)
        settings.placementWait = .milliseconds(300)
        let redis = RedisClient(url: try redisURL(), logger: Logger(label: "test"))
        let backend = RedisCoordinationBackend(redis: redis, prefix: prefix)
        _ = try await redis.send(["SET", prefix + "epoch", "0"])
        let a = ClusterCoordinator(nodeID: "a", backend: backend, configuration: settings, logger: Logger(label: "a"))
        let b = ClusterCoordinator(nodeID: "b", backend: backend, configuration: settings, logger: Logger(label: "b"))
        await a.join(address: "http://a")
        await b.join(address: "http://b")
        await a.join(address: "http://a")  // a sees b now

        var ownedByA = 0
        for index in 0..<20 {
            let slug = "tenant\(index)"
            let owner = RendezvousHash.owner(of: slug, among: ["a", "b"])!
            let (here, there) = owner == "a" ? (a, b) : (b, a)
            guard case .local(let lease) = await here.route(slug, hops: 0) else { return XCTFail("\(owner) serves \(slug)") }
            XCTAssertEqual(lease.node, owner)
            guard case .remote(let member, let isHolder) = await there.route(slug, hops: 0) else { return XCTFail("the other forwards \(slug)") }
            XCTAssertEqual(member.id, owner)
            XCTAssertEqual(member.address, "http://\(owner)")
            XCTAssertTrue(isHolder)
            if owner == "a" { ownedByA += 1 }
        }
        XCTAssertTrue((3...17).contains(ownedByA))

        let slug = (0..<20).map { "tenant\($0)" }.first { RendezvousHash.owner(of: $0, among: ["a", "b"]) == "a" }!
        let token = a.heldLease(slug)?.token
        await a.release(slug)
        // Nobody holds it now: b sends even a forwarded request to the rightful owner instead of
        // taking the tenant itself, and the owner takes it again under a larger token.
        guard case .remote(let owner, let isHolder) = await b.route(slug, hops: 1) else { return XCTFail("b forwards to a") }
        XCTAssertEqual(owner.id, "a")
        XCTAssertFalse(isHolder)
        guard case .local(let taken) = await a.route(slug, hops: 1) else { return XCTFail("a takes the free lease") }
        XCTAssertGreaterThan(taken.token, token ?? .max)
        let snapshot = await b.snapshot()
        XCTAssertEqual(snapshot.placements[slug], "a")
        XCTAssertEqual(Set(snapshot.members.map(\.id)), ["a", "b"])
        // At the last hop nobody forwards again.
        let unheld = (0..<50).map { "unheld\($0)" }.first { RendezvousHash.owner(of: $0, among: ["a", "b"]) == "a" }!
        guard case .unavailable = await b.route(unheld, hops: settings.maxHops) else {
            return XCTFail("no forwarding past the hop limit")
        }
        await a.leave()
        await b.leave()
        await redis.close()
    }

    private func redisURL() throws -> RedisURL {
        guard let text = ProcessInfo.processInfo.environment["MINIBAAS_TEST_REDIS_URL"] else {
            struct Missing: Error, CustomStringConvertible { var description: String { "MINIBAAS_TEST_REDIS_URL is not set: run ./scripts/test" } }
            throw Missing()
        }
        return try RedisURL(text)
    }
}
