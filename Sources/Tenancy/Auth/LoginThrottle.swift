import Foundation
import Runtime

/// Slows password guessing: every password attempt takes a token from the account's bucket and
/// from the client address's bucket (both per tenant). An empty bucket refuses with a retry time.
/// Buckets live in this node's memory; a cluster spreads one attacker over at most N nodes' budgets.
public final class LoginThrottle: @unchecked Sendable {
    public struct Budget: Sendable {
        public var attempts: Int
        public var per: Duration
        public init(attempts: Int, per: Duration) {
            self.attempts = attempts
            self.per = per
        }
        var rate: Double { Double(attempts) / (Double(per.components.seconds) + Double(per.components.attoseconds) / 1e18) }
    }

    private let account: Budget
    private let address: Budget
    private let capacity: Int
    private let lock = Lock()
    private var buckets: [String: TokenBucket] = [:]

    public init(account: Budget = Budget(attempts: 10, per: .seconds(300)), address: Budget = Budget(attempts: 60, per: .seconds(300)), capacity: Int = 100_000) {
        self.account = account
        self.address = address
        self.capacity = capacity
    }

    /// nil when the attempt may go ahead, else the seconds to wait. The address is asked first, so
    /// a flood from one address is refused before it can touch (or create) any account's bucket.
    public func attempt(tenant: String, email: String, address clientAddress: String) -> Int? {
        if case .limited(let wait) = bucket("i|\(tenant)|\(clientAddress)", address).take() { return Self.seconds(wait) }
        if case .limited(let wait) = bucket("a|\(tenant)|\(email)", account).take() { return Self.seconds(wait) }
        return nil
    }

    private static func seconds(_ wait: Double) -> Int { max(1, Int(wait.rounded(.up))) }

    private func bucket(_ key: String, _ budget: Budget) -> TokenBucket {
        lock.withLock {
            if let bucket = buckets[key] { return bucket }
            // Bounded memory: forget buckets that have refilled (they hold no history). Only when
            // every bucket still holds history is an arbitrary half dropped — never all at once.
            if buckets.count >= capacity {
                buckets = buckets.filter { !$0.value.isFull }
                if buckets.count >= capacity { buckets = Dictionary(uniqueKeysWithValues: buckets.prefix(capacity / 2).map { ($0.key, $0.value) }) }
            }
            let bucket = TokenBucket(rate: budget.rate, capacity: budget.attempts)
            buckets[key] = bucket
            return bucket
        }
    }
}
