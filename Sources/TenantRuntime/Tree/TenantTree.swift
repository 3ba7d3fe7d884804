import Connectors
import Foundation
import Jobs
import Logging
import Runtime
import Storage
import Tenancy

/// One tenant's running tree: its request gate and keys at the root, and under it one typed
/// subsystem per concern, each with a supervisor of its own. A child that fails restarts inside its
/// subsystem; a subsystem that exhausts its restart budget is degraded alone while the others keep
/// serving. Stopping the tree stops every subsystem, last started first.
public final class TenantTree: Sendable {
    public enum Health: String, Sendable, Codable { case running, degraded, stopped }

    public let slug: String
    public let gate: RequestGate
    public let startedAt: Date

    /// Sources with their pools, and the tenant's policies.
    public let data: DataSubsystem
    /// Cached reads: the in-process shard and, in cluster mode, the Redis tier.
    public let cache: CacheSubsystem
    /// Channels, presence, broadcast and database changes fanned out to sockets.
    public let realtime: RealtimeSubsystem
    public let jobs: JobsSubsystem
    public let storage: StorageSubsystem
    public let functions: FunctionsSubsystem
    public let search: SearchSubsystem
    /// The tree's own upkeep (the config watcher).
    let control: SubsystemSupervisor

    private let tokens = TokenCache(capacity: 1024)
    private let state: ProtectedState

    /// Touched on every request, so kept outside any actor: the hot path never waits.
    final class ProtectedState: @unchecked Sendable {
        let lock = Lock()
        var tenant: Tenant
        var keyRing: TenantKeyRing
        var lastUsed: ContinuousClock.Instant
        var stopped = false

        init(tenant: Tenant, keyRing: TenantKeyRing) {
            self.tenant = tenant
            self.keyRing = keyRing
            self.lastUsed = ContinuousClock.now
        }
    }

    /// What a tree needs from the node to start.
    public struct Environment: Sendable {
        public var catalog: SourceCatalog
        public var cache: CacheSubsystem.Settings
        /// How the realtime hub frames what it sends (the edge's protocol).
        public var realtimeWire: any RealtimeWire
        /// Where objects' bytes live; nil leaves the storage slot empty.
        public var blobs: (any BlobStore)?
        /// The control plane's storage rows.
        public var storageStore: (any StorageStore)?
        /// libvips renders for every tenant's image transforms.
        public var images: ImageTransformer?
        /// The job store, outbound client and node slots; nil leaves the jobs slot empty.
        public var jobs: JobsEnvironment?
        public var intensity: RestartIntensity
        public var backoff: Backoff
        public var logger: Logger

        public init(
            catalog: SourceCatalog, cache: CacheSubsystem.Settings, realtimeWire: any RealtimeWire, intensity: RestartIntensity, backoff: Backoff,
            logger: Logger
        ) {
            self.catalog = catalog
            self.cache = cache
            self.realtimeWire = realtimeWire
            self.intensity = intensity
            self.backoff = backoff
            self.logger = logger
        }

        var storageBackend: (any StorageStore, any BlobStore)? {
            guard let storageStore, let blobs else { return nil }
            return (storageStore, blobs)
        }
    }

    /// Builds the tree and starts its subsystems' children. Throws when the tenant's sources or
    /// policies cannot be read; nothing is left running then.
    static func start(tenant: Tenant, keyRing: TenantKeyRing, environment: Environment) async throws -> TenantTree {
        var logger = environment.logger
        logger[metadataKey: "tenant"] = .string(tenant.slug)
        func supervisor(_ name: String, intensity: RestartIntensity? = nil) -> SubsystemSupervisor {
            SubsystemSupervisor(
                name: name, tenant: tenant.slug, intensity: intensity ?? environment.intensity, backoff: environment.backoff, logger: logger)
        }
        let sources = try await environment.catalog.loadSources(of: tenant)
        let policies = try await environment.catalog.loadPolicies(of: tenant.slug)
        let data = DataSubsystem(supervisor: supervisor("data"), sources: sources, policies: policies)
        let cache = await CacheSubsystem.make(supervisor: supervisor("cache"), tenant: tenant.slug, settings: environment.cache, logger: logger)
        // A change feed is restarted for as long as the tree lives: a database that restarts or
        // loses its slot must not exhaust a budget and leave subscribers without changes. Backoff
        // spaces its restarts out to one per 30 s, well inside this intensity.
        let realtime = supervisor("realtime", intensity: RestartIntensity(maxRestarts: 20, window: .seconds(60)))
        let state = ProtectedState(tenant: tenant, keyRing: keyRing)
        let storage = environment.storageBackend.map { store, blobs in
            TenantStorage(
                tenant: tenant.slug, store: store, blobs: blobs, images: environment.images, limits: { state.lock.withLock { state.tenant.limits.storage } },
                logger: logger)
        }
        let jobs = try await JobsSubsystem.make(
            tenant: tenant.slug, supervisor: supervisor("jobs"), environment: environment.jobs, storage: storage,
            limits: { state.lock.withLock { state.tenant.limits.jobs } }, logger: logger)
        let tree = TenantTree(
            state: state, data: data, cache: cache, realtimeSupervisor: realtime, realtimeWire: environment.realtimeWire,
            jobs: jobs, storage: StorageSubsystem(supervisor: supervisor("storage"), service: storage),
            functions: FunctionsSubsystem(tenant: tenant.slug, supervisor: supervisor("functions"), limits: { state.lock.withLock { state.tenant.limits.functions } }), 
            search: SearchSubsystem(tenant: tenant.slug, supervisor: supervisor("search"), store: environment.catalog.store, data: data, logger: logger),
            control: supervisor("tenant"), logger: logger)
        await data.start()
        await tree.realtime.start()
        await tree.jobs.start(hub: tree.realtime.hub)
        await tree.search.start(hub: tree.realtime.hub)
        return tree
    }

    private init(
        state: ProtectedState, data: DataSubsystem, cache: CacheSubsystem, realtimeSupervisor: SubsystemSupervisor,
        realtimeWire: any RealtimeWire, jobs: JobsSubsystem, storage: StorageSubsystem,
        functions: FunctionsSubsystem, search: SearchSubsystem,
        control: SubsystemSupervisor, logger: Logger
    ) {
        let tenant = state.tenant
        self.slug = tenant.slug
        self.gate = RequestGate(limits: tenant.limits)
        self.startedAt = Date()
        self.state = state
        self.data = data
        self.cache = cache
        self.jobs = jobs
        self.storage = storage
        self.functions = functions
        self.search = search
        self.control = control
        let tokens = self.tokens
        let credentials = TenantCredentials(slug: tenant.slug) { token throws(JWTError) in
            try Self.verify(token, state: state, tokens: tokens)
        }
        self.realtime = RealtimeSubsystem(
            supervisor: realtimeSupervisor, slug: tenant.slug, data: data, cache: cache, credentials: credentials, wire: realtimeWire,
            limits: { state.lock.withLock { state.tenant.limits.realtime } }, logger: logger)
    }

    /// Every subsystem, in start order.
    var subsystems: [any TenantSubsystem] { [data, cache, realtime, jobs, storage, functions, search] }

    // MARK: - Hot-path reads

    public var tenant: Tenant { state.lock.withLock { state.tenant } }
    public var keyRing: TenantKeyRing { state.lock.withLock { state.keyRing } }

    /// Stopped once stopped; degraded while any subsystem (or the tree's own upkeep) has given up.
    public var health: Health {
        if state.lock.withLock({ state.stopped }) { return .stopped }
        return degradedReason == nil ? .running : .degraded
    }

    /// Which subsystems have given up, and why.
    public var degradedReason: String? {
        let reasons = ([control] + subsystems.map(\.supervisor)).compactMap { supervisor in
            supervisor.degradedReason.map { "\(supervisor.name): \($0)" }
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    /// The rules by which this tenant's keys and tokens become callers.
    public var credentials: TenantCredentials { realtime.credentials }

    public func touch() {
        state.lock.withLock { state.lastUsed = ContinuousClock.now }
    }

    func idleFor(now: ContinuousClock.Instant) -> Duration {
        state.lock.withLock { now - state.lastUsed }
    }

    /// Applies a tenant record read from the control plane (limits, name, status).
    public func apply(_ tenant: Tenant) {
        state.lock.withLock { state.tenant = tenant }
        gate.apply(tenant.limits)
    }

    public func replaceKeyRing(_ keyRing: TenantKeyRing) {
        state.lock.withLock { state.keyRing = keyRing }
        tokens.removeAll()
    }

    /// Verifies a token with the tenant's keys, remembering good ones: every request presents
    /// the same API key, and signature work on each would be wasted. Time claims are re-checked on
    /// every use, so a remembered token still expires.
    public func verify(_ token: String) throws(JWTError) -> JSONObject {
        try Self.verify(token, state: state, tokens: tokens).claims
    }

    private static func verify(_ token: String, state: ProtectedState, tokens: TokenCache) throws(JWTError) -> VerifiedClaims {
        let now = Date()
        if let verified = tokens[token] {
            try HS256.checkTimes(verified.claims, now: now)
            return verified
        }
        let verified = VerifiedClaims(try state.lock.withLock { state.keyRing }.verify(token, now: now))
        tokens[token] = verified
        return verified
    }

    // MARK: - Lifecycle

    func startUpkeep(_ spec: ChildSpec) async {
        await control.start(spec)
    }

    public func stop() async {
        // Sockets first, told to reconnect, while their sources are still open.
        await realtime.closeAll(reason: "the tenant is restarting or moving; reconnect")
        for subsystem in subsystems.reversed() { await subsystem.supervisor.stop() }
        await control.stop()
        state.lock.withLock { state.stopped = true }
    }

    public func snapshot() async -> TenantSnapshot {
        var subsystems: [SubsystemSnapshot] = []
        for subsystem in self.subsystems { subsystems.append(await subsystem.snapshot()) }
        let control = await self.control.snapshot()
        let tenant = self.tenant
        return TenantSnapshot(
            slug: slug, status: health.rawValue, degradedReason: degradedReason, startedAt: startedAt,
            inFlight: gate.activeCount, queued: gate.queuedCount, limits: tenant.limits, children: control.children,
            subsystems: subsystems)
    }
}

/// One tenant as the supervisor endpoint shows it.
public struct TenantSnapshot: Sendable, Codable, Equatable {
    public var slug: String
    public var status: String
    public var degradedReason: String?
    public var startedAt: Date
    public var inFlight: Int
    public var queued: Int
    public var limits: TenantLimits
    /// The tree's own upkeep (config watcher).
    public var children: [ChildSnapshot]
    public var subsystems: [SubsystemSnapshot]
}
