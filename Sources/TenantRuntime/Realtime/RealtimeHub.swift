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
    struct Binding {
        let id: Int
        let event: String
        let schema: String
        let table: String?
        /// The table as the client sent it (`*` included): echoed back, since the client matches
        /// the reply against its own binding.
        let tableText: String?
        let filterText: String?
        let filter: ChangeFilter?
        let select: [String]?
        let source: String
        /// Who decides what this binding sees: role, every claim, and the columns asked for.
        /// Bindings with the same audience share one decision and one payload per change.
        let audience: String
        /// By entity name; built at join for a table, lazily for a whole schema.
        var authorizers: [String: ChangeAuthorizer?]

        func json() -> JSONValue {
            var object: JSONObject = ["id": .integer(Int64(id)), "event": .string(event), "schema": .string(schema)]
            if let tableText { object["table"] = .string(tableText) }
            if let filterText { object["filter"] = .string(filterText) }
            if let select { object["select"] = .array(select.map(JSONValue.string)) }
            return .object(object)
        }
    }

    struct Member {
        let session: RealtimeSession
        let joinRef: String?
        let broadcastSelf: Bool
        let broadcastAck: Bool
        let presenceKey: String
        var bindings: [Binding]
    }

    struct PresenceEntry {
        let session: UInt64
        let ref: String
        let meta: JSONObject
    }

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
    /// Change feeds run as its children.
    let supervisor: SubsystemSupervisor
    let credentials: TenantCredentials
    let currentLimits: @Sendable () -> RealtimeLimits
    public nonisolated let uncaptured = UncapturedSources()
    /// REST writes to publish, in the order they were made; the request does not wait for them.
    private let writes: AsyncStream<(source: String, events: [ChangeEvent])>
    private nonisolated let writeQueue: AsyncStream<(source: String, events: [ChangeEvent])>.Continuation
    /// Changes queued and not yet dispatched: the queue is bounded by this, not by its number of
    /// writes (one bulk insert can be thousands of rows).
    private nonisolated let queuedChanges = QueuedChanges(limit: 100_000)
    private let logger: Logger
    private var channels: [String: [UInt64: Member]] = [:]
    private var presence: [String: [String: [PresenceEntry]]] = [:]
    private var sessions: [UInt64: RealtimeSession] = [:]
    private var topicsBySession: [UInt64: Set<String>] = [:]
    private var feeds: [String: PostgresChangeFeed.Capability] = [:]
    private var feedStarts: [String: Task<PostgresChangeFeed.Capability, Never>] = [:]
    /// Why capture could not start, per source, for the supervisor endpoint (asked again at the
    /// next join: the source may have been fixed).
    private var lastRefusal: [String: PostgresChangeFeed.Capability] = [:]
    /// Sessions already told their token expired.
    private var expiredNotified: Set<UInt64> = []
    private var nextBinding = 1
    private var nextPresenceRef = 1
    private let joins: TokenBucket
    private let events: TokenBucket
    private let delivered = Counter(label: "minibaas_realtime_messages_total")

    init(
        slug: String, data: DataSubsystem, cache: CacheSubsystem, supervisor: SubsystemSupervisor, credentials: TenantCredentials,
        limits: @escaping @Sendable () -> RealtimeLimits, logger: Logger
    ) {
        self.slug = slug
        self.data = data
        self.cache = cache
        self.supervisor = supervisor
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
        for topic in topicsBySession[session.id] ?? [] { leave(topic, session: session) }
        topicsBySession[session.id] = nil
        sessions[session.id] = nil
    }

    /// Tells every client to reconnect (the tree is stopping: the tenant moves or is idle).
    public func closeAll(reason: String) {
        for session in sessions.values {
            session.outbox.close(with: PhoenixMessage.system(topic: "phoenix", channel: "phoenix", ok: false, message: reason).encoded())
        }
    }

    // MARK: - Channel messages

    public func handle(_ message: PhoenixMessage, from session: RealtimeSession) async {
        if session.tokenExpired, message.event == "broadcast" || message.event == "presence" {
            return session.send(.system(topic: message.topic, channel: Self.channelName(message.topic), ok: false,
                                        message: "InvalidJWTToken: Token has expired; send a fresh access_token"))
        }
        switch message.event {
        case "phx_join": await join(message, session: session)
        case "phx_leave":
            leave(message.topic, session: session)
            session.send(.reply(to: message, status: "ok", response: [:]))
        case "access_token":
            // Each one re-authorises every binding of the session: counted like client messages.
            guard allow(events) else {
                return session.send(.system(topic: message.topic, channel: Self.channelName(message.topic), ok: false,
                                            message: "ChannelRateLimitReached: too many messages per second for this tenant"))
            }
            refreshToken(message, session: session)
        case "broadcast": broadcast(message, session: session)
        case "presence": trackPresence(message, session: session)
        default:
            session.send(.reply(to: message, status: "error", response: ["reason": .string("unknown event '\(message.event)'")]))
        }
    }

    private func join(_ message: PhoenixMessage, session: RealtimeSession) async {
        func refuse(_ reason: String) {
            session.send(.reply(to: message, status: "error", response: ["reason": .string(reason)]))
        }
        let limits = self.limits
        guard allow(joins) else { return refuse("ClientJoinRateLimitReached: too many joins per second for this tenant") }
        let topics = topicsBySession[session.id] ?? []
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
        var bindings: [Binding] = []
        for (index, spec) in (config["postgres_changes"]?.arrayValue ?? []).enumerated() {
            do {
                bindings.append(try binding(spec, caller: caller))
            } catch let error as RestError {
                return refuse("postgres_changes[\(index)]: \(error.message)")
            } catch {
                return refuse("postgres_changes[\(index)]: \(error)")
            }
        }
        // The slot exists before the client is told it is subscribed, so nothing committed after
        // that is missed.
        var notices: [String] = []
        for source in Set(bindings.map(\.source)).sorted() {
            switch await ensureFeed(source) {
            case .available: notices.append("Subscribed to PostgreSQL")
            case .unavailable(let why):
                notices.append("database changes cannot be captured for this source (\(why)); changes made through the REST API are published")
            }
        }
        guard sessions[session.id] != nil else { return }
        if tokenChanged {
            session.replaceCaller(caller)
            reauthorise(session, except: message.topic)
        }
        if topicsBySession[session.id]?.contains(message.topic) == true { leave(message.topic, session: session) }
        var key = presenceConfig["key"]?.stringValue ?? ""
        if key.isEmpty { key = UUID().uuidString.lowercased() }
        let member = Member(
            session: session, joinRef: message.joinRef ?? message.ref, broadcastSelf: broadcast["self"]?.boolValue ?? false,
            broadcastAck: broadcast["ack"]?.boolValue ?? false, presenceKey: key, bindings: bindings)
        channels[message.topic, default: [:]][session.id] = member
        topicsBySession[session.id, default: []].insert(message.topic)
        bindingsChanged()
        session.send(.reply(to: message, status: "ok", response: ["postgres_changes": .array(bindings.map { $0.json() })]))
        // Told with status ok even when capture is unavailable: the official client answers an
        // error status by rejoining forever.
        for notice in notices {
            session.send(.system(topic: message.topic, channel: Self.channelName(message.topic), ok: true, message: notice, extension: "postgres_changes"))
        }
        if presenceConfig["enabled"]?.boolValue == true || presence[message.topic] != nil {
            session.send(PhoenixMessage(topic: message.topic, event: "presence_state", payload: presenceState(message.topic)))
        }
    }

    private func leave(_ topic: String, session: RealtimeSession) {
        guard channels[topic]?.removeValue(forKey: session.id) != nil else { return }
        if channels[topic]?.isEmpty == true { channels[topic] = nil }
        topicsBySession[session.id]?.remove(topic)
        untrack(topic, session: session.id)
        bindingsChanged()
    }

    /// Keeps `uncaptured` to the sources that cannot be captured and still have a binding.
    private func bindingsChanged() {
        guard !lastRefusal.isEmpty else { return uncaptured.replace(with: []) }
        var subscribed: Set<String> = []
        for members in channels.values {
            for member in members.values {
                for binding in member.bindings where lastRefusal[binding.source] != nil { subscribed.insert(binding.source) }
            }
        }
        uncaptured.replace(with: subscribed)
    }

    private func refreshToken(_ message: PhoenixMessage, session: RealtimeSession) {
        guard let token = message.payload["access_token"]?.stringValue else { return }
        do {
            session.replaceCaller(try credentials.caller(token: token))
        } catch {
            session.send(.system(topic: message.topic, channel: Self.channelName(message.topic), ok: false, message: "InvalidJWTToken: \(error)"))
            return
        }
        expiredNotified.remove(session.id)
        reauthorise(session, except: nil)
    }

    /// The caller changed: every binding of the session is authorised again; ones no longer
    /// allowed are dropped and the client told.
    private func reauthorise(_ session: RealtimeSession, except skipped: String?) {
        for topic in topicsBySession[session.id] ?? [] where topic != skipped {
            guard var member = channels[topic]?[session.id] else { continue }
            var kept: [Binding] = []
            for binding in member.bindings {
                do {
                    let fresh = try self.binding(binding.json(), caller: session.caller)
                    kept.append(Binding(
                        id: binding.id, event: fresh.event, schema: fresh.schema, table: fresh.table, tableText: fresh.tableText,
                        filterText: fresh.filterText, filter: fresh.filter, select: fresh.select, source: fresh.source,
                        audience: fresh.audience, authorizers: fresh.authorizers))
                } catch {
                    session.send(.system(topic: topic, channel: Self.channelName(topic), ok: true,
                                         message: "postgres_changes binding \(binding.id) dropped: \(error)", extension: "postgres_changes"))
                }
            }
            member.bindings = kept
            channels[topic]?[session.id] = member
        }
        bindingsChanged()
    }

    private func broadcast(_ message: PhoenixMessage, session: RealtimeSession) {
        guard let member = channels[message.topic]?[session.id] else {
            return session.send(.reply(to: message, status: "error", response: ["reason": .string("join the channel first")]))
        }
        guard allow(events) else {
            return session.send(.system(topic: message.topic, channel: Self.channelName(message.topic), ok: false,
                                        message: "ChannelRateLimitReached: too many messages per second for this tenant"))
        }
        let outgoing = PhoenixMessage(topic: message.topic, event: "broadcast", payload: message.payload).encoded()
        for (id, other) in channels[message.topic] ?? [:] where id != session.id || member.broadcastSelf {
            other.session.send(encoded: outgoing, topic: message.topic)
        }
        delivered.increment(by: Int64(channels[message.topic]?.count ?? 0))
        if member.broadcastAck { session.send(.reply(to: message, status: "ok", response: [:])) }
    }

    private func trackPresence(_ message: PhoenixMessage, session: RealtimeSession) {
        guard let member = channels[message.topic]?[session.id] else {
            return session.send(.reply(to: message, status: "error", response: ["reason": .string("join the channel first")]))
        }
        guard allow(events) else {
            return session.send(.reply(to: message, status: "error", response: ["reason": .string("ChannelRateLimitReached")]))
        }
        switch message.payload["event"]?.stringValue {
        case "track":
            let leaves = removePresence(message.topic, session: session.id)
            let ref = "\(nextPresenceRef)"
            nextPresenceRef += 1
            var meta = message.payload["payload"]?.objectValue ?? [:]
            meta["phx_ref"] = .string(ref)
            if let previous = leaves[member.presenceKey]?.first { meta["phx_ref_prev"] = .string(previous.ref) }
            presence[message.topic, default: [:]][member.presenceKey, default: []].append(PresenceEntry(session: session.id, ref: ref, meta: meta))
            publishDiff(message.topic, joins: [member.presenceKey: [meta]], leaves: leaves.mapValues { $0.map(\.meta) })
        case "untrack":
            untrack(message.topic, session: session.id)
        default:
            return session.send(.reply(to: message, status: "error", response: ["reason": .string("presence event must be track or untrack")]))
        }
        session.send(.reply(to: message, status: "ok", response: [:]))
    }

    private func untrack(_ topic: String, session: UInt64) {
        let leaves = removePresence(topic, session: session)
        if !leaves.isEmpty { publishDiff(topic, joins: [:], leaves: leaves.mapValues { $0.map(\.meta) }) }
    }

    private func removePresence(_ topic: String, session: UInt64) -> [String: [PresenceEntry]] {
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

    private func presenceState(_ topic: String) -> JSONObject {
        var state = JSONObject()
        for (key, entries) in presence[topic] ?? [:] {
            state[key] = ["metas": .array(entries.map { .object($0.meta) })]
        }
        return state
    }

    private func publishDiff(_ topic: String, joins: [String: [JSONObject]], leaves: [String: [JSONObject]]) {
        func state(_ entries: [String: [JSONObject]]) -> JSONValue {
            var object = JSONObject()
            for (key, metas) in entries { object[key] = ["metas": .array(metas.map(JSONValue.object))] }
            return .object(object)
        }
        let diff = PhoenixMessage(topic: topic, event: "presence_diff", payload: ["joins": state(joins), "leaves": state(leaves)]).encoded()
        for member in (channels[topic] ?? [:]).values { member.session.send(encoded: diff, topic: topic) }
    }

    // MARK: - Database changes

    /// A `postgres_changes` binding checked against the model and the caller's policies.
    private func binding(_ spec: JSONValue, caller: Caller) throws -> Binding {
        guard case .object(let object) = spec else { throw RestError(status: 400, code: "PGRST100", message: "a binding is an object") }
        let event = (object["event"]?.stringValue ?? "*").uppercased()
        guard ["*", "INSERT", "UPDATE", "DELETE"].contains(event) else {
            throw RestError(status: 400, code: "PGRST100", message: "event must be *, INSERT, UPDATE or DELETE")
        }
        let schema = object["schema"]?.stringValue ?? "public"
        let tableText = object["table"]?.stringValue
        let table = tableText.flatMap { $0 == "*" || $0.isEmpty ? nil : $0 }
        let filterText = object["filter"]?.stringValue
        var filter: ChangeFilter?
        if let filterText {
            do { filter = try ChangeFilter(parsing: filterText) } catch { throw RestError(status: 400, code: "PGRST100", message: error.description) }
        }
        let select = object["select"]?.arrayValue?.compactMap(\.stringValue)
        let databases = data.sources.databases
        guard !databases.isEmpty else {
            throw RestError(status: 404, code: "PGRST205", message: "this tenant has no PostgreSQL source")
        }
        let source = databases.first { source in
            source.model.entities.contains { $0.schema == schema && (table == nil || $0.name == table) }
        }
        guard let source else {
            throw RestError(status: 404, code: "PGRST205", message: "no table '\(schema).\(table ?? "*")' in the tenant's sources")
        }
        let access = access(for: caller)
        var authorizers: [String: ChangeAuthorizer?] = [:]
        if let table, let entity = source.model.entities.first(where: { $0.schema == schema && $0.name == table }) {
            authorizers[table] = try ChangeAuthorizer(
                model: source.model, entity: entity, access: access, select: select, filterColumns: filter?.columns ?? [])
        } else if !access.bypass {
            throw RestError(status: 403, code: "42501", message: "only service_role may subscribe to a whole schema; name a table")
        }
        let id = nextBinding
        nextBinding += 1
        let claims = String(decoding: JSONValue.object(caller.claims).encoded(), as: UTF8.self)
        let audience = "\(caller.role)\u{0}\(claims)\u{0}\(select?.joined(separator: ",") ?? "*")\u{0}\(schema).\(table ?? "*")"
        return Binding(id: id, event: event, schema: schema, table: table, tableText: tableText, filterText: filterText, filter: filter,
                       select: select, source: source.name, audience: audience, authorizers: authorizers)
    }

    private func access(for caller: Caller) -> Access {
        data.access(for: caller)
    }

    /// Starts the source's change feed under the tenant's tree, once; concurrent joins wait for
    /// the same start.
    private func ensureFeed(_ name: String) async -> PostgresChangeFeed.Capability {
        if let known = feeds[name] { return known }
        if let starting = feedStarts[name] { return await starting.value }
        let task = Task { await self.startFeed(name) }
        feedStarts[name] = task
        let capability = await task.value
        feedStarts[name] = nil
        if capability == .available {
            feeds[name] = capability
            lastRefusal[name] = nil
        } else {
            lastRefusal[name] = capability
        }
        return capability
    }

    private func startFeed(_ name: String) async -> PostgresChangeFeed.Capability {
        guard let source = data.sources.database(named: name) else {
            return .unavailable("the source is gone")
        }
        let capability = await PostgresChangeFeed.probe(url: source.url, logger: logger)
        guard capability == .available else {
            logger.warning("no change capture", metadata: ["source": .string(name), "why": .string("\(capability)")])
            return capability
        }
        let feed = PostgresChangeFeed(slot: PostgresChangeFeed.slotName(tenant: slug, source: name), url: source.url, logger: logger)
        do {
            try await feed.prepare()
        } catch {
            return .unavailable("cannot create the replication slot: \(error)")
        }
        // A failing feed restarts with backoff inside the realtime subsystem, whose budget is made
        // for it: the tenant's REST API never depends on it.
        let started = await supervisor.start(ChildSpec(name: "change-feed:\(name)", restart: .transient) { [weak self] in
            try await feed.run { [weak self] events in await self?.dispatch(source: name, events) }
        })
        return started ? capability : .unavailable("the tenant is stopping")
    }

    /// What capture each source has, for the supervisor endpoint.
    public func captureStatus() -> [String: String] {
        lastRefusal.merging(feeds) { _, running in running }.mapValues { capability in
            switch capability {
            case .available: "logical decoding (wal2json)"
            case .unavailable(let why): "unavailable (\(why)); REST writes published"
            }
        }
    }

    /// Rows written through the REST API to a source whose changes cannot be captured: queued
    /// for `publishQueuedWrites`, so the writer's response does not wait for the fan-out.
    public nonisolated func publishWrites(source: String, entity: Entity, operation: RestWriteChanges.Operation, rows: String) {
        let events = RestWriteChanges.events(rows: rows, entity: entity, operation: operation)
        guard !events.isEmpty else { return }
        guard queuedChanges.reserve(events.count) else {
            return logger.warning("realtime: too many REST-written changes waiting to be published; these were not",
                                  metadata: ["source": .string(source), "changes": .stringConvertible(events.count)])
        }
        if case .dropped = writeQueue.yield((source, events)) {
            queuedChanges.release(events.count)
            logger.warning("realtime: too many REST writes waiting to be published; some were not", metadata: ["source": .string(source)])
        }
    }

    /// Publishes queued REST writes one batch after another, until the tree stops.
    func publishQueuedWrites() async {
        for await batch in writes {
            await dispatch(source: batch.source, batch.events)
            queuedChanges.release(batch.events.count)
        }
    }

    final class QueuedChanges: @unchecked Sendable {
        private let lock = Lock()
        private var count = 0
        private let limit: Int
        init(limit: Int) { self.limit = limit }
        func reserve(_ changes: Int) -> Bool {
            lock.withLock {
                guard count + changes <= limit else { return false }
                count += changes
                return true
            }
        }
        func release(_ changes: Int) { lock.withLock { count -= changes } }
    }

    /// One change's possible receivers, before the policies' verdicts.
    private struct Delivery {
        let change: ChangeEvent
        /// Per member of a channel, the bindings the change matches.
        var targets: [(topic: String, session: RealtimeSession, bindings: [Binding])] = []
        /// One authorizer per audience (role, claims, columns).
        var deciders: [String: ChangeAuthorizer] = [:]
    }

    /// Delivers each change to the members whose bindings match it and whose policies let them
    /// see it. Bindings with the same audience (role, claims, columns) share one decision and one
    /// encoded payload; a member whose bindings see different payloads gets one message each.
    /// What policies leave to the database (conditions through relations) is asked for the whole
    /// batch of changes and every audience at once (`databaseAnswers`).
    func dispatch(source: String, _ changes: [ChangeEvent]) async {
        // The same feed keeps the tenant's read cache honest.
        if !changes.isEmpty { await cache.dropReads(of: source, waitingForSharedTier: false) }
        // In chunks, so what is held across the database's answer stays bounded.
        for start in stride(from: 0, to: changes.count, by: 100) {
            await dispatchChunk(source: source, changes[start..<min(start + 100, changes.count)])
        }
    }

    private func dispatchChunk(source: String, _ changes: ArraySlice<ChangeEvent>) async {
        var deliveries: [Delivery] = []
        for change in changes {
            var delivery = Delivery(change: change)
            for (topic, members) in channels {
                for member in members.values {
                    if member.session.tokenExpired {
                        if expiredNotified.insert(member.session.id).inserted {
                            member.session.send(.system(topic: topic, channel: Self.channelName(topic), ok: false,
                                                        message: "InvalidJWTToken: Token has expired; send a fresh access_token"))
                        }
                        continue
                    }
                    var matched: [Binding] = []
                    for (index, binding) in member.bindings.enumerated() where binding.source == source {
                        guard binding.schema == change.schema, binding.table == nil || binding.table == change.table,
                            binding.event == "*" || binding.event == change.kind.rawValue
                        else { continue }
                        if let filter = binding.filter, !filter.matches(change.kind == .delete ? change.oldRecord : change.record) { continue }
                        guard let authorizer = authorizer(for: binding, change: change, member: member, topic: topic, index: index) else { continue }
                        delivery.deciders[binding.audience] = authorizer
                        matched.append(binding)
                    }
                    if !matched.isEmpty { delivery.targets.append((topic, member.session, matched)) }
                }
            }
            if !delivery.targets.isEmpty { deliveries.append(delivery) }
        }
        guard !deliveries.isEmpty else { return }
        let (answers, waited) = await databaseAnswers(deliveries, source: source)
        for (number, delivery) in deliveries.enumerated() {
            var encodedByAudience: [String: String] = [:]
            for (audience, authorizer) in delivery.deciders {
                let verdict = authorizer.verdict(for: delivery.change, answers: answers[number]?[audience] ?? [:])
                if case .deliver(let record, let old) = verdict {
                    encodedByAudience[audience] = Self.encodeData(delivery.change, record: record, old: old)
                }
            }
            // One message per member and distinct payload, naming every binding it satisfies.
            for target in delivery.targets {
                var idsByPayload: [String: [Int]] = [:]
                for binding in target.bindings {
                    guard let encoded = encodedByAudience[binding.audience] else { continue }
                    // The database was asked meanwhile: only bindings still held, by the same
                    // caller, with a live token.
                    if waited {
                        guard let member = channels[target.topic]?[target.session.id], !member.session.tokenExpired,
                            member.bindings.contains(where: { $0.id == binding.id && $0.audience == binding.audience })
                        else { continue }
                    }
                    idsByPayload[encoded, default: []].append(binding.id)
                }
                for (data, ids) in idsByPayload {
                    let text = "{\"topic\":\(Self.quoted(target.topic)),\"event\":\"postgres_changes\",\"payload\":{\"ids\":[\(ids.map(String.init).joined(separator: ","))],\"data\":\(data)},\"ref\":null}"
                    target.session.send(encoded: text, topic: target.topic)
                    delivered.increment()
                }
            }
        }
    }

    /// Questions for one statement: row images, and checks (a rule over an image) with who asked.
    private struct DecisionBatch {
        var rows: [(entity: Entity, values: JSONObject)] = []
        var rowIndex: [String: Int] = [:]
        var checks: [(rule: RowRule, row: Int)] = []
        var checkIndex: [String: Int] = [:]
        var askers: [[(delivery: Int, audience: String, side: ChangeAuthorizer.Side)]] = []
        var isFull: Bool { rows.count >= 100 || checks.count >= 400 }
    }

    /// The database's decisions on what the audiences' policies cannot decide in process: by
    /// delivery (its index), audience and image. Questions with the same rule and row are asked
    /// once; a statement holds at most 100 row images and 400 questions. What fails is not
    /// decided: withheld.
    /// `asked`: whether the database was asked at all (the actor was suspended meanwhile, so
    /// deliveries must be checked against who is still subscribed), even when it failed.
    private func databaseAnswers(
        _ deliveries: [Delivery], source: String
    ) async -> (answers: [Int: [String: [ChangeAuthorizer.Side: Bool]]], asked: Bool) {
        guard let database = data.sources.database(named: source) else { return ([:], false) }
        var answers: [Int: [String: [ChangeAuthorizer.Side: Bool]]] = [:]
        var asked = false
        var batch = DecisionBatch()
        for (number, delivery) in deliveries.enumerated() {
            let change = delivery.change
            guard let entity = database.model.entities.first(where: { $0.schema == change.schema && $0.name == change.table }) else { continue }
            for (audience, authorizer) in delivery.deciders {
                guard let rule = authorizer.rows else { continue }
                for side in authorizer.questions(for: change) {
                    if batch.isFull {
                        asked = true
                        await ask(batch, database: database, into: &answers)
                        batch = DecisionBatch()
                    }
                    let rowKey = "\(number)\u{0}\(side.rawValue)"
                    let row: Int
                    if let known = batch.rowIndex[rowKey] {
                        row = known
                    } else {
                        row = batch.rows.count
                        batch.rows.append((entity, side == .new ? change.record : change.oldRecord))
                        batch.rowIndex[rowKey] = row
                    }
                    let checkKey = "\(row)\u{0}\(authorizer.ruleKey)"
                    if let known = batch.checkIndex[checkKey] {
                        batch.askers[known].append((number, audience, side))
                    } else {
                        batch.checkIndex[checkKey] = batch.checks.count
                        batch.checks.append((rule, row))
                        batch.askers.append([(number, audience, side)])
                    }
                }
            }
        }
        if !batch.checks.isEmpty {
            asked = true
            await ask(batch, database: database, into: &answers)
        }
        return (answers, asked)
    }

    private func ask(
        _ batch: DecisionBatch, database: PostgresSource, into answers: inout [Int: [String: [ChangeAuthorizer.Side: Bool]]]
    ) async {
        guard !batch.checks.isEmpty else { return }
        do {
            let result = try await database.execute(SQLRenderer().decide(batch.checks, rows: batch.rows))
            let decisions = try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? []
            for (index, group) in batch.askers.enumerated() {
                let visible = index < decisions.count && decisions[index].boolValue == true
                for asker in group { answers[asker.delivery, default: [:]][asker.audience, default: [:]][asker.side] = visible }
            }
        } catch {
            logger.warning("policy decision through the database failed; changes withheld", metadata: [
                "source": .string(database.name), "error": .string("\(error)"),
            ])
        }
    }

    /// The binding's authorizer for the change's table, built on first use for schema-wide
    /// bindings (service role only).
    private func authorizer(for binding: Binding, change: ChangeEvent, member: Member, topic: String, index: Int) -> ChangeAuthorizer? {
        if let known = binding.authorizers[change.table] { return known }
        guard let source = data.sources.database(named: binding.source),
            let entity = source.model.entities.first(where: { $0.schema == change.schema && $0.name == change.table })
        else { return nil }
        let made = try? ChangeAuthorizer(model: source.model, entity: entity, access: access(for: member.session.caller), select: binding.select, filterColumns: [])
        channels[topic]?[member.session.id]?.bindings[index].authorizers[change.table] = .some(made)
        return made
    }

    static func encodeData(_ change: ChangeEvent, record: JSONObject, old: JSONObject) -> String {
        // Only the columns the subscriber sees are named.
        let visible = Set(record.keys).union(old.keys)
        let columns: [JSONValue] = change.columns.filter { visible.contains($0.name) }.map { ["name": .string($0.name), "type": .string($0.type)] }
        let data: JSONObject = [
            "schema": .string(change.schema), "table": .string(change.table), "commit_timestamp": .string(change.commitTimestamp),
            "type": .string(change.kind.rawValue), "columns": .array(columns), "record": .object(record), "old_record": .object(old),
            "errors": .null,
        ]
        return String(decoding: JSONValue.object(data).encoded(), as: UTF8.self)
    }

    static func quoted(_ text: String) -> String {
        String(decoding: JSONValue.string(text).encoded(), as: UTF8.self)
    }

    static func channelName(_ topic: String) -> String {
        topic.hasPrefix("realtime:") ? String(topic.dropFirst("realtime:".count)) : topic
    }
}
