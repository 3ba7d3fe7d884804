import Foundation
import XCTest
@testable import Runtime

/// The placement rules without a backend: who holds the lease, who should own the tenant, and how
/// far the request has travelled decide between serving, forwarding and waiting.
final class PlacementDecisionTests: XCTestCase {
    func member(_ id: String, incarnation: String = "i1") -> ClusterMember {
        ClusterMember(id: id, incarnation: incarnation, address: "http://\(id)", startedAt: Date(timeIntervalSince1970: 0),
                      lastHeartbeat: Date(timeIntervalSince1970: 0), load: 0)
    }

    func facts(owner: String?, members: [String] = ["a", "b"], hops: Int = 0, recovering: Bool = false) -> PlacementDecision.Facts {
        let view = Dictionary(uniqueKeysWithValues: members.map { ($0, member($0)) })
        return PlacementDecision.Facts(
            nodeID: "a", incarnation: "i1", hops: hops, maxHops: 2, owner: owner.flatMap { view[$0] }, view: view, recovering: recovering)
    }

    func testAnUnheldTenantThisNodeOwnsIsAcquired() {
        XCTAssertEqual(PlacementDecision.afterLookup(holder: nil, facts: facts(owner: "a")), .acquire)
    }

    func testAnUnheldTenantAnotherNodeOwnsIsForwardedToItUnlessHopsAreSpent() {
        XCTAssertEqual(PlacementDecision.afterLookup(holder: nil, facts: facts(owner: "b")), .forward(member("b"), isHolder: false, remember: false))
        guard case .wait(_, let why) = PlacementDecision.afterLookup(holder: nil, facts: facts(owner: "b", hops: 2)) else {
            return XCTFail("a request out of hops must wait for the owner")
        }
        XCTAssertTrue(why.contains("owner"))
    }

    func testAfterAnOutageOnlyPreviousOwnersTakeLeasesForAWhile() {
        guard case .wait(_, let why) = PlacementDecision.afterLookup(holder: nil, facts: facts(owner: "a", recovering: true)) else {
            return XCTFail("no acquisition while the cluster re-forms")
        }
        XCTAssertTrue(why.contains("re-forming"))
    }

    func testALiveHolderGetsTheRequestAndIsRememberedWhenItIsAlsoTheOwner() {
        let holder = LeaseHolder(node: "b", incarnation: "i1", token: 7)
        XCTAssertEqual(PlacementDecision.afterLookup(holder: holder, facts: facts(owner: "b")), .forward(member("b"), isHolder: true, remember: true))
        XCTAssertEqual(PlacementDecision.afterLookup(holder: holder, facts: facts(owner: "a")), .forward(member("b"), isHolder: true, remember: false))
    }

    func testTheOwnerReachedThroughTheHolderWaitsForTheHandOver() {
        let holder = LeaseHolder(node: "b", incarnation: "i1", token: 7)
        guard case .wait(_, let why) = PlacementDecision.afterLookup(holder: holder, facts: facts(owner: "a", hops: 1)) else {
            return XCTFail("the rightful owner must not bounce the request back to the holder")
        }
        XCTAssertTrue(why.contains("moving"))
    }

    func testAHolderThatIsGoneOrRestartedIsWaitedOutNotForwardedTo() {
        let gone = LeaseHolder(node: "c", incarnation: "i1", token: 7)
        let restarted = LeaseHolder(node: "b", incarnation: "i0", token: 7)
        for holder in [gone, restarted] {
            guard case .wait(_, let why) = PlacementDecision.afterLookup(holder: holder, facts: facts(owner: "a")) else {
                return XCTFail("a dead holder's lease must lapse first")
            }
            XCTAssertTrue(why.contains("lapse"))
        }
    }

    func testThisNodesOwnLeaseInTheBackendIsAdopted() {
        let mine = LeaseHolder(node: "a", incarnation: "i1", token: 42)
        XCTAssertEqual(PlacementDecision.afterLookup(holder: mine, facts: facts(owner: "b")), .adopt(token: 42))
    }

    func testNobodyToPlaceOnWaits() {
        guard case .wait = PlacementDecision.afterLookup(holder: nil, facts: facts(owner: nil, members: [])) else {
            return XCTFail("a node outside the cluster cannot place")
        }
    }

    func testARefusedAcquisitionForwardsToTheLiveWinnerOrWaitsBoundedly() {
        let winner = LeaseHolder(node: "b", incarnation: "i1", token: 9)
        XCTAssertEqual(
            PlacementDecision.afterRefusal(held: winner, remaining: .seconds(5), facts: facts(owner: "a")),
            .forward(member("b"), isHolder: true, remember: false))
        XCTAssertEqual(
            PlacementDecision.afterRefusal(held: winner, remaining: .seconds(5), facts: facts(owner: "a", hops: 2)),
            .wait(.milliseconds(100), "waiting for the tenant's lease to lapse"))
        XCTAssertEqual(
            PlacementDecision.afterRefusal(held: winner, remaining: .milliseconds(1), facts: facts(owner: "a", hops: 2)),
            .wait(.milliseconds(20), "waiting for the tenant's lease to lapse"))
        let raced = LeaseHolder(node: "a", incarnation: "i1", token: 9)
        XCTAssertEqual(PlacementDecision.afterRefusal(held: raced, remaining: .seconds(5), facts: facts(owner: "a")), .wait(.zero, "raced another request of this node"))
    }
}
