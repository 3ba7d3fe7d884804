import Runtime
import TenantRuntime
import XCTest
@testable import Edge

/// The Phoenix channels v1 framing the realtime core is spoken through.
final class PhoenixWireTests: XCTestCase {
    let wire = PhoenixWire()

    func testDecodesFramesWithStringOrNumberRefs() throws {
        let message = try wire.decode(#"{"topic":"realtime:room","event":"phx_join","payload":{"config":{}},"ref":7,"join_ref":"3"}"#)
        XCTAssertEqual(message.topic, "realtime:room")
        XCTAssertEqual(message.event, "phx_join")
        XCTAssertEqual(message.ref, "7")
        XCTAssertEqual(message.joinRef, "3")
    }

    func testRefusesFramesThatAreNotMessages() {
        for text in ["[1,2]", "not json", #"{"event":"x"}"#, #"{"topic":"t","event":"x","payload":3}"#] {
            XCTAssertThrowsError(try wire.decode(text), text)
        }
    }

    func testRepliesEchoTheRefsAndChangesCarryTheirData() throws {
        let request = ChannelMessage(topic: "realtime:room", event: "phx_join", payload: [:], ref: "7", joinRef: "3")
        let reply = try JSONValue.parse(Array(wire.reply(to: request, ok: false, response: ["reason": "no"]).utf8))
        XCTAssertEqual(reply["event"], "phx_reply")
        XCTAssertEqual(reply["ref"], "7")
        XCTAssertEqual(reply["join_ref"], "3")
        XCTAssertEqual(reply["payload"]?["status"], "error")
        let changes = try JSONValue.parse(Array(wire.changes(topic: "realtime:\"q\"", ids: [1, 2], data: #"{"type":"INSERT"}"#).utf8))
        XCTAssertEqual(changes["topic"], "realtime:\"q\"")
        XCTAssertEqual(changes["payload"]?["ids"], [1, 2])
        XCTAssertEqual(changes["payload"]?["data"]?["type"], "INSERT")
        let diff = try JSONValue.parse(Array(wire.event(.presenceDiff, topic: "t", payload: [:]).utf8))
        XCTAssertEqual(diff["event"], "presence_diff")
    }
}
