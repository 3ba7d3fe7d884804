import Foundation
import Runtime

/// Stops calling an upstream that keeps failing: after `threshold` failures in a row the breaker
/// opens and calls are refused at once for `cooldown`; then one trial call is let through, and its
/// outcome closes the breaker or opens it again. A dead upstream costs its tenant fast 503s instead
/// of requests that each wait for a timeout while holding the tenant's concurrency slots.
public final class CircuitBreaker: @unchecked Sendable {
    public enum State: String, Sendable { case closed, open, halfOpen }

    private let threshold: Int
    private let cooldown: Duration
    private let lock = Lock()
    private var failures = 0
    private var openedAt: ContinuousClock.Instant?
    private var trialInFlight = false

    public init(threshold: Int = 5, cooldown: Duration = .seconds(10)) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    public var state: State {
        lock.withLock {
            guard let openedAt else { return .closed }
            return ContinuousClock.now - openedAt >= cooldown ? .halfOpen : .open
        }
    }

    /// Whether a call may go ahead now; a caller that got true must report its outcome.
    public func admit() -> Bool {
        lock.withLock {
            guard let openedAt else { return true }
            guard ContinuousClock.now - openedAt >= cooldown, !trialInFlight else { return false }
            trialInFlight = true
            return true
        }
    }

    public func record(success: Bool) {
        lock.withLock {
            trialInFlight = false
            if success {
                failures = 0
                openedAt = nil
            } else {
                failures += 1
                if failures >= threshold || openedAt != nil { openedAt = .now }
            }
        }
    }
}
