import Connectors
import Runtime

/// Who is in which channel of a tenant, with their bindings and presence: the realtime state as a
/// value. Transitions are plain mutating functions that return what must be told to the channel
/// (a presence diff); the hub does the sending. Tested without sockets.
struct ChannelState {
    struct Member {
        let session: RealtimeSession
        let joinRef: String?
        let broadcastSelf: Bool
        let broadcastAck: Bool
        let presenceKey: String
        var bindings: [ChangeBinding]
    }

    struct PresenceEntry: Equatable {
        let session: UInt64
        let ref: String
        let meta: JSONObject
    }

    /// What a channel's members are told after presence changed: metas joined and left, by key.
    struct PresenceDiff: Equatable {
        let topic: String
        let joins: [String: [JSONObject]]
        let leaves: [String: [JSONObject]]
    }

    private(set) var channels: [String: [UInt64: Member]] = [:]
    private var presence: [String: [String: [PresenceEntry]]] = [:]
    private var topicsBySession: [UInt64: Set<String>] = [:]
    private var nextPresenceRef = 1

    // MARK: - Reading

    func member(_ topic: String, session: UInt64) -> Member? { channels[topic]?[session] }

    func members(of topic: String) -> [UInt64: Member] { channels[topic] ?? [:] }

    func topics(of session: UInt64) -> Set<String> { topicsBySession[session] ?? [] }

    /// Whether anyone tracks presence in the channel (a joiner is then sent its state).
    func tracksPresence(_ topic: String) -> Bool { presence[topic] != nil }

    /// The channel's presence as Phoenix's `presence_state` payload: metas by key.
    func presenceState(_ topic: String) -> JSONObject {
        var state = JSONObject()
        for (key, entries) in presence[topic] ?? [:] {
            state[key] = ["metas": .array(entries.map { .object($0.meta) })]
        }
        return state
    }

    /// The sources that some binding listens to, among `sources`.
    func subscribedSources(among sources: Set<String>) -> Set<String> {
        guard !sources.isEmpty else { return [] }
        var subscribed: Set<String> = []
        for members in channels.values {
            for member in members.values {
                for binding in member.bindings where sources.contains(binding.source) { subscribed.insert(binding.source) }
            }
        }
        return subscribed
    }

    // MARK: - Transitions

    /// Puts `member` into `topic`, replacing an earlier membership of the same session there (whose
    /// presence is withdrawn: the diff is returned).
    mutating func join(_ member: Member, topic: String) -> PresenceDiff? {
        let id = member.session.id
        let withdrawn = topicsBySession[id]?.contains(topic) == true ? leave(topic, session: id) : nil
        channels[topic, default: [:]][id] = member
        topicsBySession[id, default: []].insert(topic)
        return withdrawn
    }

    /// Takes the session out of `topic`; its presence there is withdrawn.
    mutating func leave(_ topic: String, session: UInt64) -> PresenceDiff? {
        guard channels[topic]?.removeValue(forKey: session) != nil else { return nil }
        if channels[topic]?.isEmpty == true { channels[topic] = nil }
        topicsBySession[session]?.remove(topic)
        if topicsBySession[session]?.isEmpty == true { topicsBySession[session] = nil }
        return untrack(topic, session: session)
    }

    /// Takes the session out of every channel it joined.
    mutating func remove(session: UInt64) -> [PresenceDiff] {
        topics(of: session).sorted().compactMap { leave($0, session: session) }
    }

    mutating func replaceBindings(_ bindings: [ChangeBinding], topic: String, session: UInt64) {
        channels[topic]?[session]?.bindings = bindings
    }

    /// Remembers the authorizer a schema-wide binding built for a table on first use.
    mutating func cacheAuthorizer(_ authorizer: ChangeAuthorizer?, table: String, topic: String, session: UInt64, binding index: Int) {
        guard channels[topic]?[session]?.bindings.indices.contains(index) == true else { return }
        channels[topic]?[session]?.bindings[index].authorizers[table] = .some(authorizer)
    }

    /// `track`: the session's earlier metas in the channel are replaced by `meta` under its key.
    mutating func track(_ topic: String, session: UInt64, key: String, meta: JSONObject) -> PresenceDiff {
        let leaves = removePresence(topic, session: session)
        let ref = "\(nextPresenceRef)"
        nextPresenceRef += 1
        var meta = meta
        meta["phx_ref"] = .string(ref)
        if let previous = leaves[key]?.first { meta["phx_ref_prev"] = .string(previous.ref) }
        presence[topic, default: [:]][key, default: []].append(PresenceEntry(session: session, ref: ref, meta: meta))
        return PresenceDiff(topic: topic, joins: [key: [meta]], leaves: leaves.mapValues { $0.map(\.meta) })
    }

    /// `untrack`: the session's metas in the channel are withdrawn; nil when it had none.
    mutating func untrack(_ topic: String, session: UInt64) -> PresenceDiff? {
        let leaves = removePresence(topic, session: session)
        return leaves.isEmpty ? nil : PresenceDiff(topic: topic, joins: [:], leaves: leaves.mapValues { $0.map(\.meta) })
    }

    private mutating func removePresence(_ topic: String, session: UInt64) -> [String: [PresenceEntry]] {
        var removed: [String: [PresenceEntry]] = [:]
        guard var keys = presence[topic] else { return removed }
        for (key, entries) in keys {
            let mine = entries.filter { $0.session == session }
            guard !mine.isEmpty else { continue }
            removed[key] = mine
            let rest = entries.filter { $0.session != session }
            keys[key] = rest.isEmpty ? nil : rest
        }
        presence[topic] = keys.isEmpty ? nil : keys
        return removed
    }
}
