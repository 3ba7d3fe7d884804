/// Values by key that count only until their own deadline, behind a lock: hints that may be a
/// little stale (does a tenant exist, who holds a lease elsewhere). Beyond `capacity` keys it
/// starts again empty rather than grow.
public final class ExpiringCache<Value: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [String: (value: Value, until: ContinuousClock.Instant)] = [:]
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public func value(for key: String) -> Value? {
        lock.withLock {
            guard let entry = entries[key], entry.until > .now else { return nil }
            return entry.value
        }
    }

    public func remember(_ value: Value, for key: String, during duration: Duration) {
        lock.withLock {
            if entries.count > capacity { entries.removeAll() }
            entries[key] = (value, .now + duration)
        }
    }

    public func forget(_ key: String) {
        lock.withLock { entries[key] = nil }
    }

    public func forgetAll(where matches: (Value) -> Bool = { _ in true }) {
        lock.withLock { entries = entries.filter { !matches($0.value.value) } }
    }
}
