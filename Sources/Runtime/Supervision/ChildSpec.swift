/// A unit of work a supervisor keeps alive. `run` should run until cancelled; returning or throwing
/// ends this incarnation and the supervisor decides (per `restart`) whether to start another.
public struct ChildSpec: Sendable {
    public let name: String
    public let restart: ChildRestart
    public let run: @Sendable () async throws -> Void

    public init(name: String, restart: ChildRestart = .permanent, run: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.restart = restart
        self.run = run
    }
}

/// What the supervisor endpoint shows of one child.
public struct ChildSnapshot: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        case running, backingOff, stopped, failed
    }
    public var name: String
    public var state: State
    public var restarts: Int
    public var lastError: String?
    /// Milliseconds until the next restart while backing off.
    public var backoffMs: Int?
}

/// The supervisor as a whole: `degraded` once it has escalated.
public struct SupervisorSnapshot: Sendable, Codable, Equatable {
    public var name: String
    public var status: String
    public var escalation: String?
    public var children: [ChildSnapshot]
}
