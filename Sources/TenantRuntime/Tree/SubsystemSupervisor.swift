import Logging
import Metrics
import Runtime

/// One typed part of a tenant's tree with a supervisor of its own. Its children restart inside it
/// with backoff; when they exhaust its restart budget, only this subsystem is marked degraded and
/// the tenant's other subsystems keep serving.
public final class SubsystemSupervisor: Sendable {
    public let name: String
    private let supervisor: Supervisor
    private let state: DegradedState

    final class DegradedState: @unchecked Sendable {
        private let lock = Lock()
        private var why: String?
        var reason: String? { lock.withLock { why } }
        func mark(_ reason: String) { lock.withLock { why = reason } }
    }

    public init(name: String, tenant: String, intensity: RestartIntensity, backoff: Backoff, logger: Logger) {
        self.name = name
        let state = DegradedState()
        self.state = state
        var logger = logger
        logger[metadataKey: "subsystem"] = .string(name)
        self.supervisor = Supervisor(
            name: "tenant:\(tenant):\(name)", strategy: .oneForOne, intensity: intensity, backoff: backoff, logger: logger
        ) { reason in
            state.mark(reason)
            Counter(label: "minibaas_tenant_degraded_total", dimensions: [("tenant", tenant), ("subsystem", name)]).increment()
        }
    }

    /// Adds a child, restarted with backoff when it fails. False when the subsystem is stopping
    /// or degraded, or a child of that name runs already.
    @discardableResult
    public func start(_ spec: ChildSpec) async -> Bool {
        await supervisor.start(spec)
    }

    /// Why the subsystem gave up restarting its children, once it has.
    public var degradedReason: String? { state.reason }

    func stop() async {
        await supervisor.stop()
    }

    /// Stops one child for good and forgets it.
    public func remove(_ name: String) async {
        await supervisor.remove(name)
    }

    public func snapshot() async -> SubsystemSnapshot {
        let snapshot = await supervisor.snapshot()
        return SubsystemSnapshot(name: name, status: snapshot.status, degradedReason: degradedReason, children: snapshot.children)
    }
}

/// One subsystem as the supervisor endpoint shows it.
public struct SubsystemSnapshot: Sendable, Codable, Equatable {
    public var name: String
    /// `running`, `degraded` or `stopped`.
    public var status: String
    public var degradedReason: String?
    public var children: [ChildSnapshot]
    /// What the subsystem reports of itself beside its children (realtime: capture per source).
    public var details: [String: String] = [:]
}

/// What every typed part of a tenant's tree has: its own supervisor.
public protocol TenantSubsystem: Sendable {
    var supervisor: SubsystemSupervisor { get }
    /// The subsystem's own report for the supervisor endpoint, beside its children.
    func details() async -> [String: String]
}

extension TenantSubsystem {
    public func details() async -> [String: String] { [:] }

    func snapshot() async -> SubsystemSnapshot {
        var snapshot = await supervisor.snapshot()
        snapshot.details = await details()
        return snapshot
    }
}
