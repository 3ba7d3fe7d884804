import Connectors
import Foundation
import Logging
import Metrics
import Runtime
import Storage
import Tenancy

/// Finds the running tree of a tenant, starting it on first use and passivating it when idle, so
/// that ten thousand registered tenants cost memory only for the ones in use.
public actor TenantDirectory {
    public struct Configuration: Sendable {
        /// A tree with no request for this long is stopped.
        public var idleTimeout: Duration = .seconds(300)
        /// How often the config watcher re-reads the tenant record (cluster nodes see each
        /// other's admin changes through it).
        public var refreshInterval: Duration = .seconds(5)
        /// How long "no such tenant" is remembered, so floods of unknown slugs spare the store.
        public var negativeCacheTTL: Duration = .seconds(1)
        public var intensity: RestartIntensity = .standard
        public var backoff: Backoff = .standard
        /// Where SQLite-hosted sources keep their files (embedded nodes); nil on cluster nodes.
        public var sqliteFiles: SQLiteFiles?
        /// The node's shared connections to its hosted database (provisioned schemas there).
        public var hostedPools: HostedConnectionPools?
        /// Where objects' bytes live (the storage slot stays empty without one).
        public var blobs: (any BlobStore)?
        /// libvips renders for image transforms (nil: transforms answer MB910).
        public var images: ImageTransformer?
        /// What trees' job workers need (nil: no workers, no webhooks).
        public var jobs: JobsEnvironment?
        public init() {}
    }

    private let store: any ControlPlaneStore
    private let secretBox: SecretBox
    private let configuration: Configuration
    private let environment: TenantTree.Environment
    /// Called after an idle tree is passivated (the cluster gives up the tenant's lease then, so
    /// a node does not keep renewing leases for tenants nobody uses).
    private let onPassivated: @Sendable (String) async -> Void
    private let logger: Logger
    private let clock = ContinuousClock()

    /// Written only by the actor, read by every request without an actor hop.
    private nonisolated let table = TreeTable()
    private nonisolated let registered = ExpiringCache<Bool>(capacity: 50_000)
    private var running: [String: TenantTree] {
        get { table.all }
        set { table.replace(newValue) }
    }
    private var starting: [String: Task<TenantTree?, any Error>] = [:]
    private var unknown: [String: ContinuousClock.Instant] = [:]
    private let activeGauge = Gauge(label: "minibaas_active_tenants")

    public init(
        store: any ControlPlaneStore, secretBox: SecretBox, cache: CacheSubsystem.Settings = .init(ttl: .seconds(1)),
        realtimeWire: any RealtimeWire, configuration: Configuration = .init(), logger: Logger,
        onPassivated: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.store = store
        self.secretBox = secretBox
        self.configuration = configuration
        var environment = TenantTree.Environment(
            catalog: SourceCatalog(
                store: store, secretBox: secretBox, logger: logger, sqliteFiles: configuration.sqliteFiles, hostedPools: configuration.hostedPools),
            cache: cache, realtimeWire: realtimeWire,
            intensity: configuration.intensity, backoff: configuration.backoff, logger: logger)
        environment.blobs = configuration.blobs
        environment.images = configuration.images
        environment.jobs = configuration.jobs
        environment.storageStore = store
        self.environment = environment
        self.onPassivated = onPassivated
        self.logger = logger
    }

    /// Whether a tenant of that name is registered, from a short-lived cache (5 s for yes, 1 s for
    /// no), without an actor hop: asked for every request this node forwards.
    public nonisolated func exists(_ slug: String) async throws -> Bool {
        if table[slug] != nil { return true }
        if let known = registered.value(for: slug) { return known }
        let found = try await store.tenant(slug) != nil
        registered.remember(found, for: slug, during: found ? .seconds(5) : configuration.negativeCacheTTL)
        return found
    }

    /// The tenant's tree if it is running: the hot path, no actor hop.
    public nonisolated func runningTree(_ slug: String) -> TenantTree? {
        table[slug]
    }

    /// The tenant's running tree, or nil when no such tenant is registered.
    public func tree(for slug: String) async throws -> TenantTree? {
        if let tree = running[slug] { return tree }
        if let since = unknown[slug], clock.now - since < configuration.negativeCacheTTL { return nil }
        if let task = starting[slug] { return try await task.value }
        let task = Task { try await self.load(slug) }
        starting[slug] = task
        defer { starting[slug] = nil }
        let tree = try await task.value
        if tree == nil {
            if unknown.count > 10_000 { unknown.removeAll() }
            unknown[slug] = clock.now
        }
        return tree
    }

    /// The running trees, for the supervisor endpoint.
    public func active() -> [TenantTree] {
        running.keys.sorted().compactMap { running[$0] }
    }

    public var activeCount: Int { running.count }

    /// Stops a tenant's tree (deletion, or an admin restart). The next request starts a fresh one.
    public func stop(_ slug: String) async {
        unknown[slug] = nil
        guard let tree = running.removeValue(forKey: slug) else { return }
        activeGauge.record(running.count)
        await tree.stop()
        logger.info("tenant tree stopped", metadata: ["tenant": .string(slug)])
    }

    /// Stops a tenant's tree once the requests it is running have finished (at most `within`),
    /// for a tenant whose lease moves to another node; new requests are already sent there.
    public func handOver(_ slug: String, within: Duration = .seconds(10)) async {
        if let tree = running[slug] {
            let deadline = clock.now + within
            while tree.gate.activeCount + tree.gate.queuedCount > 0, clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        await stop(slug)
    }

    /// Requests running in all trees, announced in the node's heartbeat.
    public nonisolated var inFlight: Int {
        table.all.values.reduce(0) { $0 + $1.gate.activeCount }
    }

    public func stopAll() async {
        let trees = running
        running.removeAll()
        activeGauge.record(0)
        for tree in trees.values { await tree.stop() }
        // The trees' sources are stopped: nothing uses the shared connections any more.
        await configuration.hostedPools?.shutdown()
    }

    /// Stops trees idle for longer than the idle timeout, unless they still have requests running.
    public func passivateIdle() async {
        let now = clock.now
        // A tree whose webhooks listen or whose jobs run stays: nobody's request would start it.
        let idle = running.filter { _, tree in
            tree.idleFor(now: now) > configuration.idleTimeout && tree.gate.activeCount == 0 && tree.gate.queuedCount == 0
                && !tree.jobs.keepsTreeAlive
        }
        for slug in idle.keys.sorted() {
            logger.debug("passivating idle tenant", metadata: ["tenant": .string(slug)])
            await stop(slug)
            await onPassivated(slug)
        }
        // What the stopped trees held goes back to the system, not only to the allocator.
        if !idle.isEmpty { FreedMemory.giveBack() }
    }

    /// The directory's own upkeep loop: passivation. Runs until cancelled.
    public func runMaintenance() async {
        let interval = min(configuration.idleTimeout / 4, .seconds(30))
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            await passivateIdle()
        }
    }

    /// Re-reads a tenant's record and secrets now (after an admin change on this node).
    public func refresh(_ slug: String) async throws {
        guard let tree = running[slug] else { return }
        guard let tenant = try await store.tenant(slug) else {
            await stop(slug)
            return
        }
        tree.apply(tenant)
        tree.replaceKeyRing(try await keyRing(for: slug))
    }

    // MARK: - Loading

    private func load(_ slug: String) async throws -> TenantTree? {
        guard let tenant = try await store.tenant(slug) else { return nil }
        let keyRing = try await keyRing(for: slug)
        if let raced = running[slug] { return raced }
        let tree = try await TenantTree.start(tenant: tenant, keyRing: keyRing, environment: environment)
        if let raced = running[slug] {
            await tree.stop()
            return raced
        }
        running[slug] = tree
        unknown[slug] = nil
        activeGauge.record(running.count)
        await tree.startUpkeep(configWatcher(for: tree))
        logger.info("tenant tree started", metadata: ["tenant": .string(slug)])
        return tree
    }

    public func keyRing(for slug: String) async throws -> TenantKeyRing {
        try await TenantKeyRing.load(slug: slug, store: store, secretBox: secretBox)
    }

    /// Keeps the tree's view of the tenant record fresh. A control plane that cannot be reached
    /// makes it throw, so the supervisor backs off and, if it persists, marks the tenant degraded.
    private func configWatcher(for tree: TenantTree) -> ChildSpec {
        let store = self.store
        let interval = configuration.refreshInterval
        let slug = tree.slug
        // The tree weakly: this closure lives in the tree's own supervisor.
        return ChildSpec(name: "config-watcher") { [weak self, weak tree] in
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                guard let tenant = try await store.tenant(slug) else {
                    // Deleted through another node: this tree must go.
                    Task { await self?.stop(slug) }
                    return
                }
                guard let tree else { return }
                tree.apply(tenant)
            }
        }
    }
}

/// The running trees by slug, behind a lock.
final class TreeTable: @unchecked Sendable {
    private let lock = Lock()
    private var trees: [String: TenantTree] = [:]

    subscript(slug: String) -> TenantTree? { lock.withLock { trees[slug] } }
    var all: [String: TenantTree] { lock.withLock { trees } }
    func replace(_ value: [String: TenantTree]) { lock.withLock { trees = value } }
}
