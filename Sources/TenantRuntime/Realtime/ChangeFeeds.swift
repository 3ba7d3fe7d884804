import Connectors
import Logging
import Runtime

/// The change feeds of a tenant's sources: started once per source on the first subscription
/// (concurrent joins wait for the same start), run as children of the realtime subsystem's
/// supervisor, and remembered with why capture is unavailable where it is.
actor ChangeFeeds {
    typealias Capability = PostgresChangeFeed.Capability

    private let slug: String
    private let data: DataSubsystem
    private let supervisor: SubsystemSupervisor
    private let logger: Logger
    private var running: [String: Capability] = [:]
    private var starting: [String: Task<Capability, Never>] = [:]
    /// Why capture could not start, per source, for the supervisor endpoint (asked again at the
    /// next join: the source may have been fixed).
    private var refusals: [String: Capability] = [:]

    init(slug: String, data: DataSubsystem, supervisor: SubsystemSupervisor, logger: Logger) {
        self.slug = slug
        self.data = data
        self.supervisor = supervisor
        self.logger = logger
    }

    /// The source's feed, started if need be; its changes go to `deliver`. The slot exists before
    /// this returns, so nothing committed after it is missed.
    func ensure(_ name: String, deliver: @escaping @Sendable (String, [ChangeEvent]) async -> Void) async -> Capability {
        if let known = running[name] { return known }
        if let pending = starting[name] { return await pending.value }
        let task = Task { await self.start(name, deliver: deliver) }
        starting[name] = task
        let capability = await task.value
        starting[name] = nil
        if capability == .available {
            running[name] = capability
            refusals[name] = nil
        } else {
            refusals[name] = capability
        }
        return capability
    }

    private func start(_ name: String, deliver: @escaping @Sendable (String, [ChangeEvent]) async -> Void) async -> Capability {
        guard let database = data.sources.database(named: name) else { return .unavailable("the source is gone") }
        if let mongo = database as? MongoSource {
            guard mongo.changeStreams else {
                return .unavailable("the MongoDB server has no change streams (or they are off); writes through the REST API are published")
            }
            let stream = MongoChangeStream(source: mongo, logger: logger)
            let started = await supervisor.start(ChildSpec(name: "change-stream:\(name)", restart: .transient) {
                try await stream.run { events in await deliver(name, events) }
            })
            return started ? .available : .unavailable("the tenant is stopping")
        }
        guard let source = database as? PostgresSource else {
            return .unavailable("SQLite keeps no change log; writes through the REST API are published")
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
        let started = await supervisor.start(ChildSpec(name: "change-feed:\(name)", restart: .transient) {
            try await feed.run { events in await deliver(name, events) }
        })
        return started ? capability : .unavailable("the tenant is stopping")
    }

    /// What capture each source has, for the supervisor endpoint.
    func status() -> [String: String] {
        refusals.merging(running) { _, running in running }.mapValues { capability in
            switch capability {
            case .available: "the source's own change log (wal2json, or MongoDB change streams)"
            case .unavailable(let why): "unavailable (\(why)); REST writes published"
            }
        }
    }
}
