/// Unexpected failures a person should hear about — a supervised child crashing, a subsystem
/// giving up — handed to whatever reporter the node installed (Sentry, when configured). Runtime
/// code reports without knowing where reports go; with no reporter installed, a report is dropped.
public struct Problem: Sendable {
    /// A stable name for the kind of failure (`supervisor.child_failed`, `supervisor.degraded`).
    public var kind: String
    public var message: String
    public var tags: [String: String]

    public init(kind: String, message: String, tags: [String: String] = [:]) {
        self.kind = kind
        self.message = message
        self.tags = tags
    }
}

public enum ProblemReports {
    private final class Slot: @unchecked Sendable {
        let lock = Lock()
        var sink: (@Sendable (Problem) -> Void)?
    }

    private static let slot = Slot()

    /// Installs the node's reporter; `nil` removes it. The sink must not block: it is called from
    /// supervisors and request paths.
    public static func install(_ sink: (@Sendable (Problem) -> Void)?) {
        slot.lock.withLock { slot.sink = sink }
    }

    public static func report(_ problem: Problem) {
        slot.lock.withLock { slot.sink }?(problem)
    }

    /// The tenant a supervisor belongs to, from its name (`tenant:{slug}:{subsystem}`).
    public static func tags(supervisor: String) -> [String: String] {
        var tags = ["supervisor": supervisor]
        let parts = supervisor.split(separator: ":", maxSplits: 2)
        if parts.count == 3, parts[0] == "tenant" {
            tags["tenant"] = String(parts[1])
            tags["subsystem"] = String(parts[2])
        }
        return tags
    }
}
