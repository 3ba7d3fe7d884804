import Runtime

/// Verified tokens and their claims, bounded: when full it starts over, which keeps the hot set and
/// costs nothing to maintain.
public final class TokenCache: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [String: JSONObject] = [:]
    private let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public subscript(token: String) -> JSONObject? {
        get { lock.withLock { entries[token] } }
        set {
            lock.withLock {
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
                entries[token] = newValue
            }
        }
    }

    public func removeAll() { lock.withLock { entries.removeAll() } }
}
