import Runtime

/// Verified tokens and their claims, bounded: when full it starts over, which keeps the hot set and
/// costs nothing to maintain.
final class TokenCache: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [String: JSONObject] = [:]
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(token: String) -> JSONObject? {
        get { lock.withLock { entries[token] } }
        set {
            lock.withLock {
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
                entries[token] = newValue
            }
        }
    }

    func removeAll() { lock.withLock { entries.removeAll() } }
}
