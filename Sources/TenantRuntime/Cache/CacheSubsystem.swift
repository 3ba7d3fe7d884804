import Logging
import Runtime

/// The tenant's cached reads, made with the tree: the in-process shard, and in cluster mode the
/// shared tier in Redis under the tenant's configuration generation as it was when the tree started.
public final class CacheSubsystem: TenantSubsystem {
    public struct Settings: Sendable {
        /// How long an answer may be served from the cache; zero turns caching off.
        public var ttl: Duration
        /// Cluster mode: the shared tier's connection and key prefix.
        public var redis: RedisClient?
        public var redisPrefix: String

        public init(ttl: Duration, redis: RedisClient? = nil, redisPrefix: String = "") {
            self.ttl = ttl
            self.redis = redis
            self.redisPrefix = redisPrefix
        }
    }

    public let supervisor: SubsystemSupervisor
    /// Nil when caching is off.
    public let reads: RestReadCache?
    /// Nil on a node alone, or when the tier could not be read at start (the tree runs without it).
    public let shared: SharedReadCache?

    init(supervisor: SubsystemSupervisor, reads: RestReadCache?, shared: SharedReadCache?) {
        self.supervisor = supervisor
        self.reads = reads
        self.shared = shared
    }

    static func make(supervisor: SubsystemSupervisor, tenant: String, settings: Settings, logger: Logger) async -> CacheSubsystem {
        guard settings.ttl > .zero else { return CacheSubsystem(supervisor: supervisor, reads: nil, shared: nil) }
        var shared: SharedReadCache?
        if let redis = settings.redis {
            if let generation = await SharedReadCache.configurationGeneration(redis: redis, prefix: settings.redisPrefix, tenant: tenant) {
                shared = SharedReadCache(redis: redis, prefix: settings.redisPrefix, tenant: tenant, configuration: generation, ttl: settings.ttl)
            } else {
                logger.warning("the shared read cache is unreachable; this tree runs without it")
            }
        }
        return CacheSubsystem(supervisor: supervisor, reads: RestReadCache(tenant: tenant, ttl: settings.ttl), shared: shared)
    }

    /// Drops a source's cached reads from both tiers: after a write through mini-baas, or a change
    /// from the source's feed. Entries stop being found at once; a write waits for the shared
    /// tier's generation to move before it answers, the change feed does not.
    public func dropReads(of source: String, waitingForSharedTier: Bool = true) async {
        reads?.invalidate(source: source)
        let bump = shared?.startInvalidation(of: source)
        if waitingForSharedTier { await bump?.value }
    }
}
