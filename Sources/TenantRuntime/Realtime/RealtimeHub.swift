import Connectors
import Foundation
import Logging
import Metrics
import Runtime
import Tenancy

/// A tenant's realtime fan-out: its channels with their members, presence and database-change
/// bindings, and the change feeds of its sources. Made with the tenant's tree (its realtime
/// subsystem), so it goes when the tree goes (idle, moved to another node, deleted) and its sockets
/// are told to reconnect.
public actor RealtimeHub {
    /// Sources whose own changes cannot be captured: their REST writes are published instead.
    /// Read on every REST write, so outside the actor.
    /// Only while someone subscribes to them: a write then pays for returning its rows.
    public final class UncapturedSources: @unchecked Sendable {
        private let lock = Lock()
        private var names: Set<String> = []
        public func contains(_ name: String) -> Bool { lock.withLock { names.contains(name) } }
        func replace(with new: Set<String>) { lock.withLock { names = new } }
    }

    let slug: String
    let data: DataSubsystem
    let cache: CacheSubsystem
    let credentials: TenantCredentials
    /// How frames are encoded for the sockets (the edge's protocol).
    let wire: any RealtimeWire
    let currentLimits: @Sendable () -> RealtimeLimits
    public nonisolated let uncaptured = UncapturedSources()
    /// REST writes to publish, in the order they were made; the request does not wait for them.
    let writes: AsyncStream<(source: String, events: [ChangeEvent])>
    nonisolated let writeQueue: AsyncStream<(source: String, events: [ChangeEvent])>.Continuation
    /// Changes queued and not yet dispatched: the queue is bounded by this, not by its number of
    /// writes (one bulk insert can be thousands of rows).
    nonisolated let queuedChanges = QueuedChanges(limit: 100_000)
    let logger: Logger
    /// Channels, members, bindings and presence.
    var state = ChannelState()
    private var sessions: [UInt64: RealtimeSession] = [:]
    private let feeds: ChangeFeeds
    /// Sources whose capture was refused at the last join that asked.
    private var uncapturable: Set<String> = []
    /// Sources the tenant's webhooks listen to whose changes cannot be captured: their REST
    /// writes are published whether or not a socket subscribes.
    private var watchedUncapturable: Set<String> = []
    /// Where every change goes before the sockets, by consumer: the tenant's webhooks and search
    /// indexes. Awaited, so a feed confirms its position only after the deliveries are stored.
    var changeSinks: [String: @Sendable (String, [ChangeEvent]) async -> Void] = [:]
    /// Sessions already told their token expired.
    var expiredNotified: Set<UInt64> = []
    private var nextBinding = 1
    private let joins: TokenBucket
    private let events: TokenBucket
    let delivered = Counter(label: "minibaas_realtime_messages_total")

    init(
        slug: String, data: DataSubsystem, cache: CacheSubsystem, supervisor: SubsystemSupervisor, credentials: TenantCredentials,
        wire: any RealtimeWire, limits: @escaping @Sendable () -> RealtimeLimits, logger: Logger
    ) {
        self.wire = wire
        self.slug = slug
        self.data = data
        self.cache = cache
        self.feeds = ChangeFeeds(slug: slug, data: data, supervisor: supervisor, logger: logger)
        self.credentials = credentials
        self.currentLimits = limits
        self.logger = logger
        (writes, writeQueue) = AsyncStream.makeStream(of: (source: String, events: [ChangeEvent]).self, bufferingPolicy: .bufferingOldest(10_000))
        let limits = limits()
        joins = TokenBucket(rate: limits.joinsPerSecond, capacity: max(Int(limits.joinsPerSecond), 1))
        events = TokenBucket(rate: limits.eventsPerSecond, capacity: max(Int(limits.eventsPerSecond), 1))
    }

    private var appliedLimits: RealtimeLimits?

    public var limits: RealtimeLimits { currentLimits() }

    /// Takes one token from a rate bucket, after bringing the buckets up to the tenant's current
    /// quotas (an admin may have changed them since the last message).
    private func allow(_ bucket: TokenBucket) -> Bool {
        let current = limits
        if current != appliedLimits {
            joins.reconfigure(rate: current.joinsPerSecond, capacity: max(Int(current.joinsPerSecond), 1))
            events.reconfigure(rate: current.eventsPerSecond, capacity: max(Int(current.eventsPerSecond), 1))
            appliedLimits = current
        }
        return bucket.take() == .allowed
    }

    // MARK: - Sessions

    /// Admits a new client, or says why not (the tenant's connection quota).
    public func admit(_ session: RealtimeSession) -> String? {
        guard sessions.count < limits.maxConnections else {
            return "ConnectionRateLimitReached: this tenant has \(limits.maxConnections) realtime clients connected already"
        }
        sessions[session.id] = session
        return nil
    }

    public func remove(_ session: RealtimeSession) {
        expiredNotified.remove(session.id)
        for diff in state.remove(session: session.id) { publish(diff) }
        sessions[session.id] = nil
        bindingsChanged()
    }

    /// Tells every client to reconnect (the tree is stopping: the tenant moves or is idle).
    public func closeAll(reason: String) {
        for session in sessions.values {
            session.outbox.close(with: wire.closing(reason: reason))
        }
    }

    // MARK: - Channel messages

    // MARK: - Frames

    private func reply(_ session: RealtimeSession, to message: ChannelMessage, ok: Bool = true, _ response: JSONObject = [:]) {
        session.send(wire.reply(to: message, ok: ok, response: response), topic: message.topic)
    }

    private func refuse(_ session: RealtimeSession, _ message: ChannelMessage, _ reason: String) {
        reply(session, to: message, ok: false, ["reason": .string(reason)])
    }

    func notify(_ session: RealtimeSession, topic: String, ok: Bool, _ text: String, extension name: String = "system") {
        session.send(wire.system(topic: topic, channel: Self.channelName(topic), ok: ok, message: text, extension: name), topic: topic)
    }

    /// Broadcast and presence need a live token; a client whose token ran out is told once per
    /// message and its message dropped.
    private func tokenLive(_ session: RealtimeSession, _ message: ChannelMessage) -> Bool {
        guard session.tokenExpired else { return true }
        notify(session, topic: message.topic, ok: false, "InvalidJWTToken: Token has expired; send a fresh access_token")
        return false
    }

    // MARK: - Channel messages

    /// Joins a channel: its broadcast and presence settings and its `postgres_changes` bindings,
    /// each checked against the models and the caller's policies before the client is told.
    public func join(_ message: ChannelMessage, session: RealtimeSession) async {
        func refuse(_ reason: String) { self.refuse(session, message, reason) }
        let limits = self.limits
        guard allow(joins) else { return refuse("ClientJoinRateLimitReached: too many joins per second for this tenant") }
        let topics = state.topics(of: session.id)
        if !topics.contains(message.topic) && topics.count >= limits.maxChannelsPerClient {
            return refuse("ChannelRateLimitReached: at most \(limits.maxChannelsPerClient) channels per client")
        }
        var caller = session.caller
        var tokenChanged = false
        if let token = message.payload["access_token"]?.stringValue, !token.isEmpty {
            do {
                caller = try credentials.caller(token: token)
                tokenChanged = true
            } catch {
                return refuse("InvalidJWTToken: \(error)")
            }
        }
        if RealtimeSession.expired(caller.claims) { return refuse("InvalidJWTToken: Token has expired") }
        let config = message.payload["config"]?.objectValue ?? [:]
        if config["private"]?.boolValue == true {
            return refuse("private channels need authorisation rules for broadcast and presence, which this server does not have yet")
        }
        let broadcast = config["broadcast"]?.objectValue ?? [:]
        let presenceConfig = config["presence"]?.objectValue ?? [:]
        var bindings: [ChangeBinding] = []
        for (index, spec) in (config["postgres_changes"]?.arrayValue ?? []).enumerated() {
            do {
                bindings.append(try ChangeBinding(parsing: spec, id: nextBinding, caller: caller, databases: data.sources.databases, access: access(for: caller)))
                nextBinding += 1
            } catch {
                return refuse("postgres_changes[\(index)]: \(error.message)")
            }
        }
        // The slot exists before the client is told it is subscribed, so nothing committed after
        // that is missed.
        var notices: [String] = []
        for source in Set(bindings.map(\.source)).sorted() {
            let capability = await feeds.ensure(source) { [weak self] source, changes in await self?.dispatch(source: source, changes) }
            switch capability {
            case .available:
                uncapturable.remove(source)
                notices.append("Subscribed to PostgreSQL")
            case .unavailable(let why):
                uncapturable.insert(source)
                notices.append("database changes cannot be captured for this source (\(why)); changes made through the REST API are published")
            }
        }
        guard sessions[session.id] != nil else { return }
        if tokenChanged {
            session.replaceCaller(caller)
            reauthorise(session, except: message.topic)
        }
        var key = presenceConfig["key"]?.stringValue ?? ""
        if key.isEmpty { key = UUID().uuidString.lowercased() }
        let member = ChannelState.Member(
            session: session, joinRef: message.joinRef ?? message.ref, broadcastSelf: broadcast["self"]?.boolValue ?? false,
            broadcastAck: broadcast["ack"]?.boolValue ?? false, presenceKey: key, bindings: bindings)
        if let withdrawn = state.join(member, topic: message.topic) { publish(withdrawn) }
        bindingsChanged()
        reply(session, to: message, ["postgres_changes": .array(bindings.map { $0.json() })])
        // Told with status ok even when capture is unavailable: the official client answers an
        // error status by rejoining forever.
        for notice in notices {
            notify(session, topic: message.topic, ok: true, notice, extension: "postgres_changes")
        }
        if presenceConfig["enabled"]?.boolValue == true || state.tracksPresence(message.topic) {
            session.send(wire.event(.presenceState, topic: message.topic, payload: state.presenceState(message.topic)), topic: message.topic)
        }
    }

    /// Leaves a channel at the client's request.
    public func leave(_ message: ChannelMessage, session: RealtimeSession) {
        leave(message.topic, session: session)
        reply(session, to: message)
    }

    private func leave(_ topic: String, session: RealtimeSession) {
        if let withdrawn = state.leave(topic, session: session.id) { publish(withdrawn) }
        bindingsChanged()
    }

    /// Keeps `uncaptured` to the sources that cannot be captured and still have a binding or a
    /// webhook.
    private func bindingsChanged() {
        uncaptured.replace(with: state.subscribedSources(among: uncapturable).union(watchedUncapturable))
    }

    /// Starts capture on `sources` for a consumer other than the sockets (the tenant's webhooks,
    /// its search indexes), whose `sink` gets every change of every source first; a consumer
    /// watching again under the same name replaces its sink. One feed per source serves them all.
    /// Answers each source's capture.
    public func watch(
        _ sources: Set<String>, as consumer: String, sink: @escaping @Sendable (String, [ChangeEvent]) async -> Void
    ) async -> [String: PostgresChangeFeed.Capability] {
        changeSinks[consumer] = sink
        var capture: [String: PostgresChangeFeed.Capability] = [:]
        for source in sources.sorted() {
            let capability = await feeds.ensure(source) { [weak self] source, changes in await self?.dispatch(source: source, changes) }
            capture[source] = capability
            if case .unavailable = capability { watchedUncapturable.insert(source) } else { watchedUncapturable.remove(source) }
        }
        bindingsChanged()
        return capture
    }

    /// `access_token`: a fresh token re-authorises every binding of the session. Counted like
    /// client messages, since each one re-checks them all.
    public func refreshToken(_ message: ChannelMessage, session: RealtimeSession) {
        guard allow(events) else {
            return notify(session, topic: message.topic, ok: false, "ChannelRateLimitReached: too many messages per second for this tenant")
        }
        guard let token = message.payload["access_token"]?.stringValue else { return }
        do {
            session.replaceCaller(try credentials.caller(token: token))
        } catch {
            notify(session, topic: message.topic, ok: false, "InvalidJWTToken: \(error)")
            return
        }
        expiredNotified.remove(session.id)
        reauthorise(session, except: nil)
    }

    /// The caller changed: every binding of the session is authorised again; ones no longer
    /// allowed are dropped and the client told.
    private func reauthorise(_ session: RealtimeSession, except skipped: String?) {
        for topic in state.topics(of: session.id) where topic != skipped {
            guard let member = state.member(topic, session: session.id) else { continue }
            var kept: [ChangeBinding] = []
            for binding in member.bindings {
                do {
                    kept.append(try ChangeBinding(
                        parsing: binding.json(), id: binding.id, caller: session.caller, databases: data.sources.databases,
                        access: access(for: session.caller)))
                } catch {
                    notify(session, topic: topic, ok: true, "postgres_changes binding \(binding.id) dropped: \(error)", extension: "postgres_changes")
                }
            }
            state.replaceBindings(kept, topic: topic, session: session.id)
        }
        bindingsChanged()
    }

    /// A client's broadcast to the channel's members (itself too when it asked for `self`).
    public func broadcast(_ message: ChannelMessage, session: RealtimeSession) {
        guard tokenLive(session, message) else { return }
        guard let member = state.member(message.topic, session: session.id) else { return refuse(session, message, "join the channel first") }
        guard allow(events) else {
            return notify(session, topic: message.topic, ok: false, "ChannelRateLimitReached: too many messages per second for this tenant")
        }
        let outgoing = wire.event(.broadcast, topic: message.topic, payload: message.payload)
        let members = state.members(of: message.topic)
        for (id, other) in members where id != session.id || member.broadcastSelf {
            other.session.send(outgoing, topic: message.topic)
        }
        delivered.increment(by: Int64(members.count))
        if member.broadcastAck { reply(session, to: message) }
    }

    /// `presence`: track or untrack the client's metas under its presence key.
    public func presence(_ message: ChannelMessage, session: RealtimeSession) {
        guard tokenLive(session, message) else { return }
        guard let member = state.member(message.topic, session: session.id) else { return refuse(session, message, "join the channel first") }
        guard allow(events) else { return refuse(session, message, "ChannelRateLimitReached") }
        switch message.payload["event"]?.stringValue {
        case "track":
            publish(state.track(message.topic, session: session.id, key: member.presenceKey, meta: message.payload["payload"]?.objectValue ?? [:]))
        case "untrack":
            if let withdrawn = state.untrack(message.topic, session: session.id) { publish(withdrawn) }
        default:
            return refuse(session, message, "presence event must be track or untrack")
        }
        reply(session, to: message)
    }

    /// Tells a channel's members what presence changed.
    private func publish(_ diff: ChannelState.PresenceDiff) {
        func state(_ entries: [String: [JSONObject]]) -> JSONValue {
            var object = JSONObject()
            for (key, metas) in entries { object[key] = ["metas": .array(metas.map(JSONValue.object))] }
            return .object(object)
        }
        let encoded = wire.event(.presenceDiff, topic: diff.topic, payload: ["joins": state(diff.joins), "leaves": state(diff.leaves)])
        for member in self.state.members(of: diff.topic).values { member.session.send(encoded, topic: diff.topic) }
    }

    // MARK: - Database changes

    func access(for caller: Caller) -> Access {
        data.access(for: caller)
    }

    /// What capture each source has, for the supervisor endpoint.
    public func captureStatus() async -> [String: String] {
        await feeds.status()
    }
}
