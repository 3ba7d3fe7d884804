import Crypto
import Foundation
import Logging
import Runtime
import Tenancy
import TestSupport
import XCTest
@testable import TenantRuntime

/// The realtime core without sockets or a protocol: what it sends goes through a recording wire.
final class RealtimeHubTests: XCTestCase {
    func hub() async throws -> (RealtimeHub, TenantDirectory) {
        let store = try await SQLiteControlPlaneStore.inMemory()
        try await store.migrate()
        let box = SecretBox(masterKey: SymmetricKey(size: .bits256))
        _ = try await TenantRegistrar(store: store, secretBox: box).create(slug: "acme", name: "Acme", actor: "test", requestID: nil)
        let directory = TenantDirectory(store: store, secretBox: box, realtimeWire: RecordingWire(), logger: Logger(label: "test"))
        let tree = try await XCTUnwrapAsync(try await directory.tree(for: "acme"))
        return (tree.realtime.hub, directory)
    }

    func session(_ id: UInt64) -> RealtimeSession {
        RealtimeSession(id: id, caller: Caller(role: "anon", claims: [:]), outboxLimit: 100, wire: RecordingWire())
    }

    /// The frames queued for a session so far.
    func frames(_ session: RealtimeSession) async -> [String] {
        session.outbox.finish()
        var texts: [String] = []
        while let item = await session.outbox.next() {
            switch item {
            case .message(let text), .closing(let text): texts.append(text)
            }
        }
        return texts
    }

    func testBroadcastReachesOtherMembersThroughTheWire() async throws {
        let (hub, directory) = try await hub()
        let alice = session(1)
        let bob = session(2)
        for member in [alice, bob] {
            let refusal = await hub.admit(member)
            XCTAssertNil(refusal)
            await hub.join(ChannelMessage(topic: "realtime:room", event: "join", payload: [:], ref: "1"), session: member)
        }
        await hub.broadcast(ChannelMessage(topic: "realtime:room", event: "broadcast", payload: ["event": "hi"], ref: "2"), session: alice)
        let aliceFrames = await frames(alice)
        let bobFrames = await frames(bob)
        XCTAssertEqual(aliceFrames, ["reply realtime:room ok"], "no echo without broadcast.self")
        XCTAssertEqual(bobFrames, ["reply realtime:room ok", "event broadcast realtime:room"])
        await directory.stopAll()
    }

    func testMessagesBeforeJoiningAreRefusedAndStoppingTellsEverySocketToGo() async throws {
        let (hub, directory) = try await hub()
        let alice = session(1)
        let admission = await hub.admit(alice)
        XCTAssertNil(admission)
        await hub.presence(ChannelMessage(topic: "realtime:room", event: "presence", payload: ["event": "track"]), session: alice)
        guard case .message(let refusal)? = await alice.outbox.next() else { return XCTFail("the refusal is queued") }
        XCTAssertEqual(refusal, "reply realtime:room error")
        await directory.stop("acme")
        guard case .closing(let goodbye)? = await alice.outbox.next() else { return XCTFail("a stopping tree closes its sockets") }
        XCTAssertTrue(goodbye.hasPrefix("closing "), goodbye)
    }
}
