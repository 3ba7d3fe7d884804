import Connectors
import Logging
import Runtime
import Tenancy

/// The tenant's realtime fan-out, made with the tree: the hub (channels, presence, broadcast and
/// database-change bindings), its sources' change feeds as supervised children, and the queue of
/// REST-written changes for sources whose own changes cannot be captured.
public final class RealtimeSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    public let hub: RealtimeHub
    let credentials: TenantCredentials

    init(
        supervisor: SubsystemSupervisor, slug: String, data: DataSubsystem, cache: CacheSubsystem, credentials: TenantCredentials,
        wire: any RealtimeWire, limits: @escaping @Sendable () -> RealtimeLimits, logger: Logger
    ) {
        self.supervisor = supervisor
        self.credentials = credentials
        self.hub = RealtimeHub(
            slug: slug, data: data, cache: cache, supervisor: supervisor, credentials: credentials, wire: wire, limits: limits,
            logger: logger)
    }

    func start() async {
        // Weakly: the hub's feeds hold this supervisor, which keeps the child's closure; a strong
        // reference here would keep a stopped tenant's hub (and its sources) alive for ever.
        await supervisor.start(ChildSpec(name: "rest-writes", restart: .transient) { [weak hub] in await hub?.publishQueuedWrites() })
    }

    /// Tells every socket to reconnect (the tree is stopping).
    func closeAll(reason: String) async {
        await hub.closeAll(reason: reason)
    }

    /// How each source's changes reach subscribers, once one has subscribed.
    public func details() async -> [String: String] {
        await hub.captureStatus()
    }
}
