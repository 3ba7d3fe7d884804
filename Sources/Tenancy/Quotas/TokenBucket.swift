import Foundation
import Runtime

/// Requests-per-second limiting: `capacity` tokens, refilled at `rate` per second; one request takes
/// one token. Refusals say when the next token will be there, for `Retry-After`.
public final class TokenBucket: @unchecked Sendable {
    private let lock = Lock()
    private var rate: Double
    private var capacity: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant
    private let clock = ContinuousClock()

    public init(rate: Double, capacity: Int) {
        self.rate = rate
        self.capacity = Double(capacity)
        self.tokens = Double(capacity)
        self.last = clock.now
    }

    public enum Decision: Equatable, Sendable {
        case allowed
        /// Seconds until a token is available.
        case limited(retryAfter: Double)
    }

    public func take() -> Decision {
        lock.withLock {
            refill()
            if tokens >= 1 {
                tokens -= 1
                return .allowed
            }
            return .limited(retryAfter: (1 - tokens) / rate)
        }
    }

    /// Whether the bucket has refilled completely, i.e. holds nothing worth remembering.
    public var isFull: Bool {
        lock.withLock {
            refill()
            return tokens >= capacity
        }
    }

    /// Tokens taken but not used (a claim found less work than it was allowed) go back.
    public func giveBack(_ count: Int) {
        lock.withLock { tokens = min(capacity, tokens + Double(count)) }
    }

    public func reconfigure(rate: Double, capacity: Int) {
        lock.withLock {
            refill()
            self.rate = rate
            self.capacity = Double(capacity)
            tokens = min(tokens, self.capacity)
        }
    }

    private func refill() {
        let now = clock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(capacity, tokens + seconds * rate)
    }
}
