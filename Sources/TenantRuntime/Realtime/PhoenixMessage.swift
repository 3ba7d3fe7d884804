import Runtime

/// One Phoenix channels v1 (`vsn=1.0.0`) message: a JSON object with `topic`, `event`, `payload`,
/// `ref` and `join_ref`.
public struct PhoenixMessage: Sendable {
    public var topic: String
    public var event: String
    public var payload: JSONObject
    public var ref: String?
    public var joinRef: String?

    public init(topic: String, event: String, payload: JSONObject, ref: String? = nil, joinRef: String? = nil) {
        self.topic = topic
        self.event = event
        self.payload = payload
        self.ref = ref
        self.joinRef = joinRef
    }

    public enum DecodeError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let why): why
            }
        }
    }

    public init(decoding text: String) throws(DecodeError) {
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
        self.init(topic: topic, event: event, payload: payload, ref: Self.refText(object["ref"]), joinRef: Self.refText(object["join_ref"]))
    }

    /// Clients send refs as strings; some send numbers.
    private static func refText(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .integer(let number)?: String(number)
        default: nil
        }
    }

    public func encoded() -> String {
        var object: JSONObject = ["topic": .string(topic), "event": .string(event), "payload": .object(payload)]
        object["ref"] = ref.map(JSONValue.string) ?? .null
        if let joinRef { object["join_ref"] = .string(joinRef) }
        return String(decoding: JSONValue.object(object).encoded(), as: UTF8.self)
    }

    public static func reply(to message: PhoenixMessage, status: String, response: JSONObject) -> PhoenixMessage {
        PhoenixMessage(
            topic: message.topic, event: "phx_reply", payload: ["status": .string(status), "response": .object(response)],
            ref: message.ref, joinRef: message.joinRef)
    }

    /// Supabase's `system` message: `{channel, extension, message, status}`.
    public static func system(topic: String, channel: String, ok: Bool, message: String, extension name: String = "system") -> PhoenixMessage {
        PhoenixMessage(
            topic: topic, event: "system",
            payload: [
                "channel": .string(channel), "extension": .string(name), "message": .string(message),
                "status": .string(ok ? "ok" : "error"),
            ])
    }
}
