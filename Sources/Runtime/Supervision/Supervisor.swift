import Logging
import Metrics

/// Keeps a set of children running: restarts a child that stops (per its `ChildRestart`) after an
/// exponential backoff, and gives up — escalating to `onEscalate` — when restarts exceed the
/// restart intensity. Modelled on OTP supervisors, with Swift tasks as the processes.
///
/// Each incarnation of a child carries a generation number, so that the exit of a task the
/// supervisor already replaced or cancelled is recognised as stale and ignored.
public actor Supervisor {
    public enum Status: String, Sendable { case running, degraded, stopped }

    public nonisolated let name: String
    private let strategy: RestartStrategy
    private let intensity: RestartIntensity
    private let backoff: Backoff
    private let onEscalate: @Sendable (String) async -> Void
    private let logger: Logger
    private let clock = ContinuousClock()

    private var order: [String] = []
    private var children: [String: Child] = [:]
    private var restartLog: [ContinuousClock.Instant] = []
    private var status: Status = .running
    private var escalation: String?

    private struct Child {
        var spec: ChildSpec
        var task: Task<Void, Never>?
        var generation = 0
        var state: ChildSnapshot.State = .stopped
        var restarts = 0
        var consecutiveFailures = 0
        var lastError: String?
        var startedAt: ContinuousClock.Instant?
        var backoffUntil: ContinuousClock.Instant?
    }

    public init(
        name: String,
        strategy: RestartStrategy = .oneForOne,
        intensity: RestartIntensity = .standard,
        backoff: Backoff = .standard,
        logger: Logger = Logger(label: "minibaas.supervisor"),
        onEscalate: @escaping @Sendable (String) async -> Void = { _ in }
    ) {
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.backoff = backoff
        self.onEscalate = onEscalate
        var logger = logger
        logger[metadataKey: "supervisor"] = .string(name)
        self.logger = logger
        // Exported at zero from the start, so dashboards and alerts see the series before the
        // first restart (a counter that appears only on failure reads as "no data").
        _ = Counter(label: "minibaas_supervisor_restarts_total", dimensions: [("supervisor", name)])
    }

    public var currentStatus: Status { status }

    /// Registers a child and starts it. A name already in use replaces nothing and is refused.
    @discardableResult
    public func start(_ spec: ChildSpec) -> Bool {
        guard status == .running, children[spec.name] == nil else { return false }
        order.append(spec.name)
        children[spec.name] = Child(spec: spec)
        launch(spec.name)
        return true
    }

    /// Stops one child for good (its work was deleted) and forgets it, so its name may be used
    /// again; waits for it to finish.
    public func remove(_ name: String) async {
        // Once removed, the child's exit finds no entry and starts nothing.
        guard let child = children.removeValue(forKey: name) else { return }
        order.removeAll { $0 == name }
        child.task?.cancel()
        await child.task?.value
    }

    /// Stops every child in reverse start order and waits for each to finish.
    public func stop() async {
        guard status != .stopped else { return }
        status = .stopped
        await stopChildren(finalState: .stopped)
    }

    public func snapshot() -> SupervisorSnapshot {
        let now = clock.now
        let list = order.compactMap { name -> ChildSnapshot? in
            guard let child = children[name] else { return nil }
            var backoffMs: Int?
            if child.state == .backingOff, let until = child.backoffUntil {
                backoffMs = max(0, Self.milliseconds(until - now))
            }
            return ChildSnapshot(
                name: name, state: child.state, restarts: child.restarts,
                lastError: child.lastError, backoffMs: backoffMs)
        }
        return SupervisorSnapshot(name: name, status: status.rawValue, escalation: escalation, children: list)
    }

    // MARK: - Lifecycle of one child

    private func launch(_ name: String) {
        guard status == .running, var child = children[name] else { return }
        child.generation += 1
        child.state = .running
        child.backoffUntil = nil
        child.startedAt = clock.now
        let generation = child.generation
        let run = child.spec.run
        // Detached: a child belongs to its supervisor, not to whatever request happened to start
        // the tree, so it must not inherit that request's task-locals (ServiceLifecycle's
        // graceful-shutdown signal among them) or its cancellation.
        child.task = Task.detached { [weak self] in
            let outcome: Result<Void, any Error>
            do {
                try await run()
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await self?.childExited(name, generation: generation, outcome: outcome)
        }
        children[name] = child
    }

    private func childExited(_ name: String, generation: Int, outcome: Result<Void, any Error>) {
        guard status == .running, var child = children[name], child.generation == generation else { return }
        child.task = nil
        let failed: Bool
        switch outcome {
        case .success:
            failed = false
        case .failure(let error):
            failed = !(error is CancellationError)
            child.lastError = String(describing: error)
        }
        let restart: Bool
        switch child.spec.restart {
        case .permanent: restart = true
        case .transient: restart = failed
        case .temporary: restart = false
        }
        guard restart else {
            child.state = failed ? .failed : .stopped
            children[name] = child
            return
        }
        if failed {
            logger.warning("child failed", metadata: ["child": .string(name), "error": .string(child.lastError ?? "")])
            var tags = ProblemReports.tags(supervisor: self.name)
            tags["child"] = name
            ProblemReports.report(Problem(kind: "supervisor.child_failed", message: "child '\(name)' failed: \(child.lastError ?? "")", tags: tags))
        }

        // A child that stayed up for a whole intensity window earned a fresh backoff.
        if let started = child.startedAt, clock.now - started > intensity.window {
            child.consecutiveFailures = 0
        }
        child.consecutiveFailures += 1
        child.restarts += 1
        children[name] = child
        Counter(label: "minibaas_supervisor_restarts_total", dimensions: [("supervisor", self.name)]).increment()

        let now = clock.now
        restartLog.append(now)
        restartLog.removeAll { now - $0 > intensity.window }
        if restartLog.count > intensity.maxRestarts {
            escalate(culprit: name)
            return
        }

        let delay = backoff.delay(forAttempt: child.consecutiveFailures)
        switch strategy {
        case .oneForOne:
            scheduleRestart(of: [name], after: delay)
        case .oneForAll:
            for sibling in order where sibling != name {
                children[sibling]?.generation += 1
                children[sibling]?.task?.cancel()
                children[sibling]?.task = nil
            }
            scheduleRestart(of: order, after: delay)
        }
    }

    private func scheduleRestart(of names: [String], after delay: Duration) {
        let until = clock.now + delay
        for name in names {
            guard var child = children[name] else { continue }
            child.generation += 1
            child.state = .backingOff
            child.backoffUntil = until
            let generation = child.generation
            child.task = Task.detached { [weak self] in
                do { try await Task.sleep(for: delay) } catch { return }
                await self?.restartAfterBackoff(name, generation: generation)
            }
            children[name] = child
        }
    }

    private func restartAfterBackoff(_ name: String, generation: Int) {
        guard let child = children[name], child.generation == generation, child.state == .backingOff else { return }
        launch(name)
    }

    private func escalate(culprit: String) {
        status = .degraded
        let reason = "child '\(culprit)' restarted more than \(intensity.maxRestarts) times in \(intensity.window)"
            + (children[culprit]?.lastError.map { ": \($0)" } ?? "")
        escalation = reason
        logger.error("supervisor escalates", metadata: ["reason": .string(reason)])
        ProblemReports.report(Problem(kind: "supervisor.degraded", message: reason, tags: ProblemReports.tags(supervisor: name)))
        children[culprit]?.state = .failed
        let tasks = order.compactMap { children[$0]?.task }
        for name in order {
            children[name]?.generation += 1
            children[name]?.task = nil
            if children[name]?.state != .failed { children[name]?.state = .stopped }
        }
        tasks.forEach { $0.cancel() }
        let onEscalate = self.onEscalate
        Task { await onEscalate(reason) }
    }

    private func stopChildren(finalState: ChildSnapshot.State) async {
        for name in order.reversed() {
            guard var child = children[name] else { continue }
            child.generation += 1
            let task = child.task
            child.task = nil
            if child.state != .failed { child.state = finalState }
            child.backoffUntil = nil
            children[name] = child
            task?.cancel()
            await task?.value
        }
    }

    public static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
