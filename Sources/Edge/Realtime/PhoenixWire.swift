import Runtime
import TenantRuntime

/// Phoenix channels v1 (`vsn=1.0.0`) as Supabase Realtime speaks it: each frame a JSON object with
/// `topic`, `event`, `payload`, `ref` and `join_ref`. Decodes clients' frames into the core's
/// `ChannelMessage` and frames what the core sends.
struct PhoenixWire: RealtimeWire {
    enum DecodeError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String {
            switch self {
            case .invalid(let why): why
            }
        }
    }

    func decode(_ text: String) throws(DecodeError) -> ChannelMessage {
        let value: JSONValue
        do {
            value = try JSONValue.parse(Array(text.utf8))
        } catch {
            throw .invalid("not JSON: \(error)")
        }
        guard case .object(let object) = value else { throw .invalid("a message is a JSON object") }
        guard let topic = object["topic"]?.stringValue, !topic.isEmpty else { throw .invalid("topic is required") }
        guard let event = object["event"]?.stringValue, !event.isEmpty else { throw .invalid("event is required") }
        let payload: JSONObject
        switch object["payload"] {
        case .object(let fields)?: payload = fields
        case nil, .null?: payload = [:]
        default: throw .invalid("payload must be an object")
        }
        return ChannelMessage(topic: topic, event: event, payload: payload, ref: Self.refText(object["ref"]), joinRef: Self.refText(object["join_ref"]))
    }

    /// Clients send refs as strings; some send numbers.
    private static func refText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .integer(let number)?: String(number)
        default: nil
        }
    }

    func encode(topic: String, event: String, payload: JSONObject, ref: String? = nil, joinRef: String? = nil) -> String {
        var object: JSONObject = ["topic": .string(topic), "event": .string(event), "payload": .object(payload)]
        object["ref"] = ref.map(JSONValue.string) ?? .null
        if let joinRef { object["join_ref"] = .string(joinRef) }
        return String(decoding: JSONValue.object(object).encoded(), as: UTF8.self)
    }

    // MARK: - RealtimeWire

    func reply(to request: ChannelMessage, ok: Bool, response: JSONObject) -> String {
        encode(
            topic: request.topic, event: "phx_reply", payload: ["status": .string(ok ? "ok" : "error"), "response": .object(response)],
            ref: request.ref, joinRef: request.joinRef)
    }

    /// Supabase's `system` message: `{channel, extension, message, status}`.
    func system(topic: String, channel: String, ok: Bool, message: String, extension name: String) -> String {
        encode(topic: topic, event: "system", payload: [
            "channel": .string(channel), "extension": .string(name), "message": .string(message), "status": .string(ok ? "ok" : "error"),
        ])
    }

    func event(_ event: RealtimeEvent, topic: String, payload: JSONObject) -> String {
        let name = switch event {
        case .broadcast: "broadcast"
        case .presenceState: "presence_state"
        case .presenceDiff: "presence_diff"
        }
        return encode(topic: topic, event: name, payload: payload)
    }

    /// Written by hand: one change goes to many members, and its data is encoded once already.
    func changes(topic: String, ids: [Int], data: String) -> String {
        let quotedTopic = String(decoding: JSONValue.string(topic).encoded(), as: UTF8.self)
        return "{\"topic\":\(quotedTopic),\"event\":\"postgres_changes\",\"payload\":{\"ids\":[\(ids.map(String.init).joined(separator: ","))],\"data\":\(data)},\"ref\":null}"
    }

    func closing(reason: String) -> String {
        system(topic: "phoenix", channel: "phoenix", ok: false, message: reason, extension: "system")
    }
}
