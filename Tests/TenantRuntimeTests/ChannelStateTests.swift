import Runtime
import Tenancy
import XCTest
@testable import TenantRuntime

/// The realtime channel state without sockets: joins, leaves, presence diffs and which sources
/// still have subscribers.
final class ChannelStateTests: XCTestCase {
    func session(_ id: UInt64) -> RealtimeSession {
        RealtimeSession(id: id, caller: Caller(role: "anon", claims: [:]), outboxLimit: 10, wire: RecordingWire())
    }

    func member(_ id: UInt64, key: String = "k") -> ChannelState.Member {
        ChannelState.Member(session: session(id), joinRef: "1", broadcastSelf: false, broadcastAck: false, presenceKey: key, bindings: [])
    }

    func testJoiningAndLeavingTracksTopicsPerSession() {
        var state = ChannelState()
        XCTAssertNil(state.join(member(1), topic: "realtime:a"))
        XCTAssertNil(state.join(member(1), topic: "realtime:b"))
        XCTAssertNil(state.join(member(2), topic: "realtime:a"))
        XCTAssertEqual(state.topics(of: 1), ["realtime:a", "realtime:b"])
        XCTAssertEqual(Set(state.members(of: "realtime:a").keys), [1, 2])
        XCTAssertNil(state.leave("realtime:a", session: 1), "no presence tracked: nothing to tell")
        XCTAssertEqual(state.topics(of: 1), ["realtime:b"])
        XCTAssertNil(state.member("realtime:a", session: 1))
        XCTAssertNil(state.leave("realtime:a", session: 1), "leaving twice changes nothing")
        _ = state.leave("realtime:b", session: 1)
        XCTAssertNil(state.channels["realtime:b"], "an empty channel is forgotten")
    }

    func testTrackReplacesTheSessionsEarlierMetaAndNamesItsPreviousRef() {
        var state = ChannelState()
        _ = state.join(member(1, key: "alice"), topic: "t")
        let first = state.track("t", session: 1, key: "alice", meta: ["status": "online"])
        XCTAssertEqual(first.joins["alice"]?.first?["phx_ref"], "1")
        XCTAssertTrue(first.leaves.isEmpty)
        let second = state.track("t", session: 1, key: "alice", meta: ["status": "away"])
        XCTAssertEqual(second.joins["alice"]?.first?["phx_ref"], "2")
        XCTAssertEqual(second.joins["alice"]?.first?["phx_ref_prev"], "1")
        XCTAssertEqual(second.leaves["alice"]?.first?["status"], "online")
        XCTAssertEqual(state.presenceState("t")["alice"]?["metas"]?.arrayValue?.count, 1)
    }

    func testLeavingWithdrawsPresenceAndTellsTheChannel() {
        var state = ChannelState()
        _ = state.join(member(1, key: "alice"), topic: "t")
        _ = state.join(member(2, key: "bob"), topic: "t")
        _ = state.track("t", session: 1, key: "alice", meta: [:])
        _ = state.track("t", session: 2, key: "bob", meta: [:])
        let diff = state.leave("t", session: 1)
        XCTAssertEqual(diff?.topic, "t")
        XCTAssertEqual(diff?.leaves.keys.sorted(), ["alice"])
        XCTAssertTrue(state.tracksPresence("t"))
        XCTAssertEqual(state.presenceState("t").keys.sorted(), ["bob"])
        XCTAssertNil(state.untrack("t", session: 1), "nothing left to withdraw")
        _ = state.untrack("t", session: 2)
        XCTAssertFalse(state.tracksPresence("t"))
    }

    func testRejoiningATopicWithdrawsTheEarlierPresenceFirst() {
        var state = ChannelState()
        _ = state.join(member(1, key: "alice"), topic: "t")
        _ = state.track("t", session: 1, key: "alice", meta: ["n": 1])
        let withdrawn = state.join(member(1, key: "alice"), topic: "t")
        XCTAssertEqual(withdrawn?.leaves["alice"]?.first?["n"], 1)
        XCTAssertEqual(state.members(of: "t").count, 1)
    }

    func testRemovingASessionLeavesEveryChannel() {
        var state = ChannelState()
        for topic in ["a", "b", "c"] {
            _ = state.join(member(7, key: "x"), topic: topic)
            _ = state.track(topic, session: 7, key: "x", meta: [:])
        }
        _ = state.join(member(8), topic: "a")
        let diffs = state.remove(session: 7)
        XCTAssertEqual(diffs.map(\.topic), ["a", "b", "c"])
        XCTAssertTrue(state.topics(of: 7).isEmpty)
        XCTAssertEqual(Set(state.channels.keys), ["a"])
    }
}
