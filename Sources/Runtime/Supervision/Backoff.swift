/// Exponential backoff between restarts: `base * 2^(attempt-1)`, capped, with optional jitter so that
/// many children failing together do not restart in lock-step.
public struct Backoff: Sendable, Equatable {
    public var base: Duration
    public var cap: Duration
    /// Fraction (0...1) of the delay that is randomised downward.
    public var jitter: Double

    public static let standard = Backoff(base: .milliseconds(100), cap: .seconds(30), jitter: 0.2)

    public init(base: Duration, cap: Duration, jitter: Double = 0) {
        precondition(base > .zero && cap >= base, "backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The delay before restart number `attempt` (1-based).
    public func delay(forAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 40)
        let raw = base * (1 << exponent)
        let capped = raw > cap ? cap : raw
        guard jitter > 0 else { return capped }
        let factor = 1 - Double.random(in: 0...jitter)
        return capped * factor
    }
}
