import Runtime

/// A client's message on a channel, as the wire decoded it: the core never sees the framing.
public struct ChannelMessage: Sendable {
    public var topic: String
    public var event: String
    public var payload: JSONObject
    /// The client's reference for this message and for the join it belongs to; replies echo both.
    public var ref: String?
    public var joinRef: String?

    public init(topic: String, event: String, payload: JSONObject, ref: String? = nil, joinRef: String? = nil) {
        self.topic = topic
        self.event = event
        self.payload = payload
        self.ref = ref
        self.joinRef = joinRef
    }
}

/// What the realtime core sends to sockets, and how it is framed: the edge supplies the protocol
/// (Phoenix channels, as Supabase Realtime speaks). Each method returns one encoded frame, so a
/// frame sent to many members is encoded once.
public protocol RealtimeWire: Sendable {
    /// The answer to a client's message (`ok`, or `error` with a reason in `response`).
    func reply(to request: ChannelMessage, ok: Bool, response: JSONObject) -> String
    /// A notice about a channel or an extension of it (`postgres_changes`, `system`).
    func system(topic: String, channel: String, ok: Bool, message: String, extension: String) -> String
    /// A broadcast, presence state or presence diff to a channel's members.
    func event(_ event: RealtimeEvent, topic: String, payload: JSONObject) -> String
    /// Database changes: `data` is the encoded change, `ids` the bindings it satisfies.
    func changes(topic: String, ids: [Int], data: String) -> String
    /// The last frame before the server closes the socket (the tenant moves or restarts).
    func closing(reason: String) -> String
}

/// Events the core sends to channel members.
public enum RealtimeEvent: Sendable {
    case broadcast, presenceState, presenceDiff
}
