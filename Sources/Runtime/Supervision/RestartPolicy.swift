/// When a child that stopped should be started again (OTP's restart types).
public enum ChildRestart: String, Sendable, Codable {
    /// Always restarted, whether it failed or returned.
    case permanent
    /// Restarted only when it failed (threw).
    case transient
    /// Never restarted.
    case temporary
}

/// What a failure of one child does to its siblings (OTP's strategies).
public enum RestartStrategy: String, Sendable, Codable {
    /// Only the failed child restarts.
    case oneForOne
    /// Every child restarts when one fails, for children that depend on each other's state.
    case oneForAll
}

/// More than `maxRestarts` within `window` means restarting is not helping: the supervisor gives up
/// and escalates to its parent instead of looping forever.
public struct RestartIntensity: Sendable, Equatable {
    public var maxRestarts: Int
    public var window: Duration

    public static let standard = RestartIntensity(maxRestarts: 5, window: .seconds(30))

    public init(maxRestarts: Int, window: Duration) {
        self.maxRestarts = maxRestarts
        self.window = window
    }
}
