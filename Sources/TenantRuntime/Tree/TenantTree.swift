import Foundation
import Logging
import Metrics
import Runtime

/// The root of one tenant's actor tree. It owns the tenant's request gate and key ring, and
/// supervises the tenant's children (the config watcher now; connector pools, caches, job workers and
/// socket fan-out as they arrive). When its children escalate, the tenant is marked degraded and
/// says why on the supervisor endpoint.
public actor TenantSupervisor {
    public enum Health: String, Sendable, Codable { case running, degraded, stopped }

    public nonisolated let slug: String
    public nonisolated let gate: RequestGate
    public nonisolated let startedAt: Date
    /// Per-tenant state that higher layers hang on the tree (the connectors' sources), so that it
    /// lives and dies with the tree without this module knowing its type.
    public nonisolated let attachments = Attachments()
    private nonisolated let tokens = TokenCache(capacity: 1024)
    private nonisolated let state: ProtectedState
    private let children: Supervisor
    private let logger: Logger

    /// Touched on every request, so kept outside the actor: the hot path never waits for the actor.
    final class ProtectedState: @unchecked Sendable {
        let lock = Lock()
        var tenant: Tenant
        var keyRing: TenantKeyRing
        var lastUsed: ContinuousClock.Instant
        var health: Health = .running
        var degradedReason: String?

        init(tenant: Tenant, keyRing: TenantKeyRing) {
            self.tenant = tenant
            self.keyRing = keyRing
            self.lastUsed = ContinuousClock.now
        }
    }

    public init(
        tenant: Tenant, keyRing: TenantKeyRing, intensity: RestartIntensity = .standard, backoff: Backoff = .standard,
        logger: Logger
    ) {
        self.slug = tenant.slug
        self.gate = RequestGate(limits: tenant.limits)
        self.startedAt = Date()
        let state = ProtectedState(tenant: tenant, keyRing: keyRing)
        self.state = state
        var logger = logger
        logger[metadataKey: "tenant"] = .string(tenant.slug)
        self.logger = logger
        let slug = tenant.slug
        self.children = Supervisor(
            name: "tenant:\(tenant.slug)", strategy: .oneForOne, intensity: intensity, backoff: backoff, logger: logger
        ) { reason in
            state.lock.withLock {
                state.health = .degraded
                state.degradedReason = reason
            }
            Counter(label: "minibaas_tenant_degraded_total", dimensions: [("tenant", slug)]).increment()
        }
    }

    // MARK: - Hot-path reads

    public nonisolated var tenant: Tenant { state.lock.withLock { state.tenant } }
    public nonisolated var keyRing: TenantKeyRing { state.lock.withLock { state.keyRing } }
    public nonisolated var health: Health { state.lock.withLock { state.health } }

    public nonisolated func touch() {
        state.lock.withLock { state.lastUsed = ContinuousClock.now }
    }

    nonisolated func idleFor(now: ContinuousClock.Instant) -> Duration {
        state.lock.withLock { now - state.lastUsed }
    }

    // MARK: - Tree

    /// Adds a child to the tenant's tree; it is restarted with backoff when it fails.
    @discardableResult
    public func startChild(_ spec: ChildSpec) async -> Bool {
        await children.start(spec)
    }

    /// Applies a tenant record read from the control plane (limits, name, status).
    public nonisolated func apply(_ tenant: Tenant) {
        state.lock.withLock { state.tenant = tenant }
        gate.apply(tenant.limits)
    }

    public nonisolated func replaceKeyRing(_ keyRing: TenantKeyRing) {
        state.lock.withLock { state.keyRing = keyRing }
        tokens.removeAll()
    }

    /// Verifies a token with the tenant's keys, remembering good ones: every request presents
    /// the same API key, and signature work on each would be wasted. Time claims are re-checked on
    /// every use, so a remembered token still expires.
    public nonisolated func verify(_ token: String) throws(JWTError) -> JSONObject {
        let now = Date()
        if let claims = tokens[token] {
            try HS256.checkTimes(claims, now: now)
            return claims
        }
        let claims = try keyRing.verify(token, now: now)
        tokens[token] = claims
        return claims
    }

    public func stop() async {
        await children.stop()
        state.lock.withLock { state.health = .stopped }
    }

    public func snapshot() async -> TenantSnapshot {
        let tree = await children.snapshot()
        let (health, reason, tenant) = state.lock.withLock { (state.health, state.degradedReason, state.tenant) }
        return TenantSnapshot(
            slug: slug, status: health.rawValue, degradedReason: reason, startedAt: startedAt,
            inFlight: gate.activeCount, queued: gate.queuedCount, limits: tenant.limits, children: tree.children)
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
    public var children: [ChildSnapshot]
}
