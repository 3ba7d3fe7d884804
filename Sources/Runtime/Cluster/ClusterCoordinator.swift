import Foundation
import Logging
import Metrics

/// Decides, for every tenant request, whether this node serves it, forwards it, or cannot place it
/// right now — and keeps the facts behind those decisions fresh: its own heartbeat, its view of
/// the other members, the leases it holds, and tenant events from other nodes.
///
/// Placement is rendezvous hashing over live members; serving needs the tenant's lease. A node
/// that loses a lease (paused past its expiry, or a lapse someone else filled) stops serving that
/// tenant at once; a node that should no longer own a tenant (a member joined) drains it and
/// hands the lease over.
public actor ClusterCoordinator {
    public struct Configuration: Sendable {
        public var heartbeatInterval: Duration = .seconds(1)
        public var leaseTTL: Duration = .seconds(5)
        /// How long a request may wait for a tenant to get an owner (a dead owner's lease lapsing,
        /// a hand-over finishing) before it is answered 503.
        public var placementWait: Duration = .seconds(8)
        /// Forwarded at most this many times, so nodes with different views cannot bounce a
        /// request forever.
        public var maxHops = 2
        /// How long past the start of a Redis outage this node keeps serving the leases it held
        /// then. Zero is strict: never serve past a lease, and an outage stops every tenant after
        /// one TTL. A node cut off from Redis alone cannot tell that from a Redis restart, so for
        /// up to this long it may serve a tenant another node has taken meanwhile.
        public var outageGrace: Duration = .seconds(5)

        public init() {}

        /// A heartbeat key outlives three missed beats.
        public var memberTTL: Duration { heartbeatInterval * 3 }
        /// A member whose heartbeat has not changed for this long is treated as gone before its
        /// key expires (a paused process keeps its key until the TTL but answers nobody).
        var staleAfter: Duration { heartbeatInterval * 2.5 }
        /// Leases are renewed three times per TTL.
        var renewInterval: Duration { leaseTTL / 3 }
        /// Validity counted from when the renewal was sent, less a margin for clock-rate drift
        /// between this node and the backend.
        var validity: Duration { leaseTTL * 0.9 }
    }

    /// What the node does for a request.
    public enum Route: Sendable {
        case local(TenantLease)
        /// Forward to `member`; `isHolder` when it holds the lease and is not handing it over (only
        /// then may a client be redirected there: anything else could bounce it back).
        case remote(ClusterMember, isHolder: Bool)
        case unavailable(reason: String)
    }

    /// What the coordinator needs from the node around it.
    public struct Hooks: Sendable {
        /// Requests in flight, announced with each heartbeat.
        public var load: @Sendable () -> Int
        /// Stop serving a tenant whose lease is moving away: let its in-flight requests finish,
        /// then stop its tree.
        public var handOver: @Sendable (String) async -> Void
        /// Stop a tenant's tree now: its lease is gone.
        public var drop: @Sendable (String) async -> Void
        /// Another node changed a tenant.
        public var tenantEvent: @Sendable (ClusterEvent) async -> Void

        public init(
            load: @escaping @Sendable () -> Int, handOver: @escaping @Sendable (String) async -> Void,
            drop: @escaping @Sendable (String) async -> Void, tenantEvent: @escaping @Sendable (ClusterEvent) async -> Void
        ) {
            self.load = load
            self.handOver = handOver
            self.drop = drop
            self.tenantEvent = tenantEvent
        }
    }

    public nonisolated let nodeID: String
    public nonisolated let incarnation: String
    public nonisolated let configuration: Configuration
    private let backend: any CoordinationBackend
    private let logger: Logger
    private let startedAt = Date()
    private var hooks: Hooks?
    private var address = ""

    /// Read by every request without an actor hop.
    private nonisolated let table = RoutingTable()
    /// Live members by id, self included once announced.
    private var view: [String: ClusterMember] = [:]
    /// When each member's heartbeat was last seen to change, by this node's clock.
    private var lastChange: [String: (heartbeat: Date, at: ContinuousClock.Instant)] = [:]
    /// Members a forward could not reach, kept out of placement until they beat again.
    private var suspects: [String: Date] = [:]
    /// Rendezvous targets seen at the last rebalance; a tenant moves only when two agree.
    private var pendingMoves: [String: String] = [:]
    private var announced = false
    private var leaving = false
    private var recoveredAt: ContinuousClock.Instant?
    private let leaseGauge = Gauge(label: "minibaas_cluster_leases")
    private let memberGauge = Gauge(label: "minibaas_cluster_members")
    private let lostCounter = Counter(label: "minibaas_cluster_leases_lost_total")
    private let movedCounter = Counter(label: "minibaas_cluster_leases_handed_over_total")

    public init(
        nodeID: String, backend: any CoordinationBackend, configuration: Configuration = .init(), logger: Logger
    ) {
        self.nodeID = nodeID
        self.incarnation = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.backend = backend
        self.configuration = configuration
        self.logger = logger
    }

    public func setHooks(_ hooks: Hooks) {
        self.hooks = hooks
    }

    // MARK: - Routing

    /// The lease to serve `slug` under, when this node holds a valid one: the hot path.
    public nonisolated func servingLease(_ slug: String) -> TenantLease? {
        guard let lease = table.lease(slug), lease.isServable(at: .now, outage: table.outage) else { return nil }
        return lease
    }

    /// A recently confirmed remote holder, so forwarded traffic does not ask the backend each time.
    public nonisolated func cachedRemote(_ slug: String) -> ClusterMember? {
        table.remote(slug)
    }

    /// Where a request for `slug` goes. `hops` counts how often it was forwarded already. May
    /// wait (up to `placementWait`) while a dead owner's lease lapses or a hand-over finishes.
    public func route(_ slug: String, hops: Int) async -> Route {
        let deadline = ContinuousClock.now + configuration.placementWait
        var waited = false
        while true {
            if leaving {
                if hops < configuration.maxHops, let owner = placementOwner(slug, excludingSelf: true) {
                    return .remote(owner, isHolder: false)
                }
                return .unavailable(reason: "this node is leaving the cluster")
            }
            switch await decide(slug, hops: hops) {
            case .done(let route):
                if waited, case .local = route { logger.debug("placed after waiting", metadata: ["tenant": .string(slug)]) }
                return route
            case .wait(let pause, let why):
                guard ContinuousClock.now + pause < deadline else { return .unavailable(reason: why) }
                waited = true
                do { try await Task.sleep(for: pause) } catch { return .unavailable(reason: why) }
            }
        }
    }

    private enum Decision {
        case done(Route)
        case wait(Duration, String)
    }

    private func decide(_ slug: String, hops: Int) async -> Decision {
        let poll = Duration.milliseconds(100)
        let canForward = hops < configuration.maxHops
        if let lease = table.lease(slug) {
            if lease.isServable(at: .now, outage: table.outage) { return .done(.local(lease)) }
            if lease.isHandingOver {
                if canForward, let target = placementOwner(slug, excludingSelf: true) { return .done(.remote(target, isHolder: false)) }
                return .wait(poll, "tenant is moving between nodes")
            }
            // Expired as this node counts: only the backend can say whether it is still ours.
            let sent = ContinuousClock.now
            do {
                let token = try await backend.renew(slug, holder: lease.holder, ttl: configuration.leaseTTL)
                backendReachable()
                guard table.lease(slug) === lease else { return .wait(.zero, "the lease changed meanwhile") }
                if let token {
                    lease.renewed(token: token, until: sent + configuration.validity)
                    return .done(.local(lease))
                }
                lose(lease, why: "held by another node after it lapsed")
            } catch {
                backendUnreachable(error)
                return .done(.unavailable(reason: "this node's lease lapsed and the coordination backend is unreachable"))
            }
        }

        let holder: LeaseHolder?
        do {
            holder = try await backend.holder(of: slug)
            backendReachable()
        } catch {
            backendUnreachable(error)
            // Whoever owned it before the outage still serves it; the last view says who.
            if canForward, let owner = placementOwner(slug, excludingSelf: false), owner.id != nodeID {
                return .done(.remote(owner, isHolder: false))
            }
            return .done(.unavailable(reason: "the coordination backend is unreachable"))
        }
        let facts = PlacementDecision.Facts(
            nodeID: nodeID, incarnation: incarnation, hops: hops, maxHops: configuration.maxHops,
            owner: placementOwner(slug, excludingSelf: false), view: view,
            recovering: recoveredAt.map { ContinuousClock.now - $0 < configuration.leaseTTL } ?? false)
        switch PlacementDecision.afterLookup(holder: holder, facts: facts) {
        case .adopt(let token):
            table.insert(TenantLease(slug: slug, node: nodeID, incarnation: incarnation, token: token, validUntil: .now))
            return .wait(.zero, "adopting the tenant's lease")
        case .forward(let member, let isHolder, let remember):
            if remember { table.rememberRemote(slug, member, for: configuration.heartbeatInterval / 2) }
            return .done(.remote(member, isHolder: isHolder))
        case .wait(let pause, let why):
            return .wait(pause, why)
        case .acquire:
            break
        }
        let sent = ContinuousClock.now
        do {
            switch try await backend.acquire(slug, node: nodeID, incarnation: incarnation, ttl: configuration.leaseTTL) {
            case .granted(let token):
                let lease = TenantLease(
                    slug: slug, node: nodeID, incarnation: incarnation, token: token, validUntil: sent + configuration.validity)
                table.insert(lease)
                leaseGauge.record(table.count)
                logger.info("took tenant lease", metadata: ["tenant": .string(slug), "token": .stringConvertible(token)])
                return .done(.local(lease))
            case .held(let other, let remaining):
                switch PlacementDecision.afterRefusal(held: other, remaining: remaining, facts: facts) {
                case .forward(let member, let isHolder, _): return .done(.remote(member, isHolder: isHolder))
                case .wait(let pause, let why): return .wait(pause, why)
                case .adopt, .acquire: return .wait(.zero, "looking again")
                }
            case .settling(let remaining):
                return .wait(min(max(remaining, .milliseconds(20)), poll), "Redis lost its data; previous owners restore their leases first")
            }
        } catch {
            backendUnreachable(error)
            return .done(.unavailable(reason: "the coordination backend is unreachable"))
        }
    }

    /// Whether `lease` still allows serving: checked again just before a request's work runs, so
    /// a node paused between admission and work does not act on a lease it lost meanwhile.
    public nonisolated func stillServes(_ lease: TenantLease) -> Bool {
        lease.stillValid(at: .now, outage: table.outage)
    }

    /// Gives up this node's lease on `slug` (its tree stopped: idle, deleted, or unknown).
    public func release(_ slug: String) async {
        guard let lease = table.lease(slug) else { return }
        lease.markLost()
        table.remove(slug)
        leaseGauge.record(table.count)
        do {
            try await backend.release(slug, holder: lease.holder)
        } catch {
            backendUnreachable(error)
        }
    }

    /// Whether `member` (this incarnation of it) is still in the live view.
    public func isLive(_ member: ClusterMember) -> Bool {
        view[member.id]?.incarnation == member.incarnation
    }

    /// A forward to `member` could not connect: keep it out of placement until it beats again.
    public func suspect(_ member: ClusterMember) {
        guard member.id != nodeID, view[member.id]?.incarnation == member.incarnation else { return }
        suspects[member.id] = view[member.id]?.lastHeartbeat ?? member.lastHeartbeat
        view[member.id] = nil
        table.forgetRemotes(of: member.id)
        logger.warning("member unreachable", metadata: ["member": .string(member.id)])
    }

    // MARK: - Membership

    /// Joins the cluster at `address` and keeps the node's heartbeat, membership view, leases and
    /// event subscription running until cancelled.
    public func run(address: String) async {
        await join(address: address)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.renewalLoop() }
            group.addTask { await self.eventLoop() }
            await group.waitForAll()
        }
    }

    /// Announces the node once, without the loops that keep it announced (`run` starts with it).
    public func join(address: String) async {
        self.address = address
        await heartbeat()
    }

    /// Leaves: stops announcing and tells the others, so they stop sending work here. Leases
    /// are kept until `releaseAll` — after the node's trees have drained.
    public func leave() async {
        leaving = true
        guard announced else { return }
        announced = false
        do {
            try await backend.withdraw(me())
            try await backend.publish(ClusterEvent(kind: .membershipChanged, origin: nodeID))
        } catch {
            logger.warning("could not withdraw from the cluster", metadata: ["error": .string("\(error)")])
        }
    }

    public func releaseAll() async {
        for lease in table.all() {
            lease.markLost()
            table.remove(lease.slug)
            try? await backend.release(lease.slug, holder: lease.holder)
        }
        leaseGauge.record(0)
    }

    /// Publishes a tenant change to the other nodes (this node has acted on it already).
    public func publish(_ kind: ClusterEvent.Kind, slug: String) async {
        do {
            try await backend.publish(ClusterEvent(kind: kind, slug: slug, origin: nodeID))
        } catch {
            logger.warning("could not publish a tenant event; other nodes see it at their next refresh",
                           metadata: ["tenant": .string(slug), "error": .string("\(error)")])
        }
    }

    private func me() -> ClusterMember {
        ClusterMember(
            id: nodeID, incarnation: incarnation, address: address, startedAt: startedAt, lastHeartbeat: Date(),
            load: hooks?.load() ?? 0)
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.heartbeatInterval) } catch { return }
            await heartbeat()
        }
    }

    private func heartbeat() async {
        guard !leaving else { return }
        let member = me()
        do {
            try await backend.announce(member, ttl: configuration.memberTTL)
            if leaving {
                // `leave` ran while this beat was in flight: take it back.
                try? await backend.withdraw(member)
                return
            }
            let joined = !announced
            announced = true
            backendReachable()
            if joined {
                logger.info("joined the cluster", metadata: ["address": .string(address), "incarnation": .string(incarnation)])
                try? await backend.publish(ClusterEvent(kind: .membershipChanged, origin: nodeID))
            }
            await refreshView()
        } catch {
            backendUnreachable(error)
        }
    }

    private func refreshView() async {
        let members: [ClusterMember]
        do {
            members = try await backend.members()
        } catch {
            backendUnreachable(error)
            return
        }
        let now = ContinuousClock.now
        var fresh: [String: ClusterMember] = [:]
        for member in members where !member.address.isEmpty {
            if let seen = lastChange[member.id], seen.heartbeat == member.lastHeartbeat {
                // Unchanged since the last look: a paused or partitioned node.
                if now - seen.at > configuration.staleAfter { continue }
            } else {
                lastChange[member.id] = (member.lastHeartbeat, now)
            }
            if let suspected = suspects[member.id] {
                if member.lastHeartbeat <= suspected { continue }
                suspects[member.id] = nil
            }
            fresh[member.id] = member
        }
        if announced, !leaving { fresh[nodeID] = me() }
        for id in lastChange.keys where !members.contains(where: { $0.id == id }) { lastChange[id] = nil }
        let before = Set(view.keys)
        view = fresh
        memberGauge.record(fresh.count)
        if Set(fresh.keys) != before {
            logger.info("membership changed", metadata: ["members": .string(fresh.keys.sorted().joined(separator: ","))])
            table.forgetAllRemotes()
        }
        rebalance()
    }

    private func placementOwner(_ slug: String, excludingSelf: Bool) -> ClusterMember? {
        let ids = view.keys.filter { !(excludingSelf && $0 == nodeID) }
        return RendezvousHash.owner(of: slug, among: ids).flatMap { view[$0] }
    }

    /// Hands over the tenants that now belong to another live member. A move waits until two
    /// consecutive views agree, so a flapping member does not bounce tenants.
    private func rebalance() {
        guard announced, !leaving, table.outage == nil else { return }
        var seen: [String: String] = [:]
        for lease in table.all() where !lease.isHandingOver && !lease.isLost {
            guard let owner = placementOwner(lease.slug, excludingSelf: false), owner.id != nodeID else { continue }
            seen[lease.slug] = owner.id
            guard pendingMoves[lease.slug] == owner.id else { continue }
            lease.beginHandOver()
            movedCounter.increment()
            logger.info("handing tenant over", metadata: ["tenant": .string(lease.slug), "to": .string(owner.id)])
            let backend = self.backend
            let hooks = self.hooks
            Task {
                await hooks?.handOver(lease.slug)
                lease.markLost()
                try? await backend.release(lease.slug, holder: lease.holder)
                self.forget(lease)
            }
        }
        pendingMoves = seen
    }

    private func forget(_ lease: TenantLease) {
        if table.lease(lease.slug) === lease { table.remove(lease.slug) }
        leaseGauge.record(table.count)
    }

    /// The lease is gone: stop serving under it at once; its tree is stopped in the background
    /// (many lost at once after a pause must not stall renewing the others).
    private func lose(_ lease: TenantLease, why: String) {
        guard table.lease(lease.slug) === lease else { return }
        lease.markLost()
        forget(lease)
        lostCounter.increment()
        logger.warning("lost tenant lease", metadata: ["tenant": .string(lease.slug), "why": .string(why)])
        let hooks = self.hooks
        let slug = lease.slug
        Task {
            // Only if no newer lease on the tenant was taken meanwhile.
            guard self.table.lease(slug) == nil else { return }
            await hooks?.drop(slug)
        }
    }

    // MARK: - Leases

    private func renewalLoop() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.renewInterval) } catch { return }
            await renewAll()
        }
    }

    private func renewAll() async {
        let leases = table.all().filter { !$0.isLost }
        guard !leases.isEmpty else { return }
        let sent = ContinuousClock.now
        let tokens: [Int64?]
        do {
            tokens = try await backend.renewAll(leases.map { ($0.slug, $0.holder) }, ttl: configuration.leaseTTL)
            backendReachable()
        } catch {
            backendUnreachable(error)
            return
        }
        for (lease, token) in zip(leases, tokens) where table.lease(lease.slug) === lease {
            if let token {
                if token != lease.token {
                    logger.info("re-took a lapsed tenant lease", metadata: ["tenant": .string(lease.slug), "token": .stringConvertible(token)])
                }
                lease.renewed(token: token, until: sent + configuration.validity)
            } else {
                lose(lease, why: "another node holds it")
            }
        }
    }

    private func backendReachable() {
        guard table.outage != nil else { return }
        table.outage = nil
        recoveredAt = .now
        logger.notice("coordination backend reachable again; restoring leases and membership")
    }

    /// Only a lost connection is an outage; an error reply is an answer, and serving on through
    /// it would let a node outlive a lease Redis has already given to someone else.
    private func backendUnreachable(_ error: any Error) {
        switch error as? RedisError {
        case .unavailable, .timedOut: break
        default:
            logger.warning("coordination backend error", metadata: ["error": .string("\(error)")])
            return
        }
        guard table.outage == nil else { return }
        table.outage = Outage(since: .now, grace: configuration.outageGrace)
        logger.error("coordination backend unreachable; serving the tenants this node holds", metadata: ["error": .string("\(error)")])
    }

    // MARK: - Events

    private func eventLoop() async {
        var attempt = 0
        while !Task.isCancelled {
            do {
                let events = try await backend.events()
                attempt = 0
                // Anything published while unsubscribed was missed: look again.
                await refreshView()
                for await event in events where event.origin != nodeID {
                    await handle(event)
                }
            } catch {
                attempt += 1
            }
            let pause = Backoff(base: .milliseconds(100), cap: .seconds(2)).delay(forAttempt: max(attempt, 1))
            do { try await Task.sleep(for: pause) } catch { return }
        }
    }

    private func handle(_ event: ClusterEvent) async {
        switch event.kind {
        case .membershipChanged:
            await refreshView()
        case .tenantChanged, .tenantDeleted:
            await hooks?.tenantEvent(event)
        }
    }

    // MARK: - Views

    public struct Snapshot: Sendable {
        public var members: [ClusterMember]
        public var placements: [String: String]
        public var tokens: [String: Int64]
        public var backendReachable: Bool
    }

    /// Members and the owner of every tenant with a live lease, as the backend has them (or, when
    /// it is unreachable, as this node last saw them).
    public func snapshot() async -> Snapshot {
        var placements: [String: String] = [:]
        var tokens: [String: Int64] = [:]
        var members = Array(view.values)
        do {
            let fresh = try await backend.members()
            members = fresh
            let live = Dictionary(fresh.map { ($0.id, $0.incarnation) }, uniquingKeysWith: { first, _ in first })
            for (slug, holder) in try await backend.leases() where live[holder.node] == holder.incarnation {
                placements[slug] = holder.node
                tokens[slug] = holder.token
            }
        } catch {
            for lease in table.all() where !lease.isLost {
                placements[lease.slug] = nodeID
                tokens[lease.slug] = lease.token
            }
        }
        return Snapshot(members: members.sorted { $0.id < $1.id }, placements: placements, tokens: tokens, backendReachable: table.outage == nil)
    }

    /// The lease this node holds on `slug`, for the supervisor view.
    public nonisolated func heldLease(_ slug: String) -> TenantLease? {
        table.lease(slug)
    }
}

/// Leases and recently seen remote holders by tenant, behind a lock.
final class RoutingTable: @unchecked Sendable {
    private let lock = Lock()
    private var leases: [String: TenantLease] = [:]
    private let remotes = ExpiringCache<ClusterMember>(capacity: 100_000)
    private var currentOutage: Outage?

    func lease(_ slug: String) -> TenantLease? { lock.withLock { leases[slug] } }
    func insert(_ lease: TenantLease) {
        lock.withLock { leases[lease.slug] = lease }
        remotes.forget(lease.slug)
    }
    func remove(_ slug: String) { lock.withLock { leases[slug] = nil } }
    func all() -> [TenantLease] { lock.withLock { Array(leases.values) } }
    var count: Int { lock.withLock { leases.count } }

    var outage: Outage? {
        get { lock.withLock { currentOutage } }
        set { lock.withLock { currentOutage = newValue } }
    }

    func remote(_ slug: String) -> ClusterMember? { remotes.value(for: slug) }
    func rememberRemote(_ slug: String, _ member: ClusterMember, for duration: Duration) {
        remotes.remember(member, for: slug, during: duration)
    }
    func forgetRemotes(of id: String) { remotes.forgetAll { $0.id == id } }
    func forgetAllRemotes() { remotes.forgetAll() }
}
