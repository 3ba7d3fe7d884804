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

    /// nil when the attempt may go ahead, else the seconds to wait.
    public func attempt(tenant: String, email: String, address clientAddress: String) -> Int? {
        let decisions = [
            bucket("a|\(tenant)|\(email)", account).take(),
            bucket("i|\(tenant)|\(clientAddress)", address).take(),
        ]
        let waits = decisions.compactMap { decision -> Double? in
            if case .limited(let retryAfter) = decision { return retryAfter }
            return nil
        }
        return waits.max().map { max(1, Int($0.rounded(.up))) }
    }

    private func bucket(_ key: String, _ budget: Budget) -> TokenBucket {
        lock.withLock {
            if let bucket = buckets[key] { return bucket }
            // Bounded memory under a spray of addresses: forgetting everyone only forgives them.
            if buckets.count >= capacity { buckets.removeAll(keepingCapacity: true) }
            let bucket = TokenBucket(rate: budget.rate, capacity: budget.attempts)
            buckets[key] = bucket
            return bucket
        }
    }
}
