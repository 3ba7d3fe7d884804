import Runtime
@testable import TenantRuntime

/// A wire for tests that frames every message as readable text, so a test can see what the core
/// sent without a protocol.
struct RecordingWire: RealtimeWire {
    func reply(to request: ChannelMessage, ok: Bool, response: JSONObject) -> String {
        "reply \(request.topic) \(ok ? "ok" : "error")"
    }
    func system(topic: String, channel: String, ok: Bool, message: String, extension name: String) -> String {
        "system \(topic) \(name) \(message)"
    }
    func event(_ event: RealtimeEvent, topic: String, payload: JSONObject) -> String { "event \(event) \(topic)" }
    func changes(topic: String, ids: [Int], data: String) -> String { "changes \(topic) \(ids)" }
    func closing(reason: String) -> String { "closing \(reason)" }
}
