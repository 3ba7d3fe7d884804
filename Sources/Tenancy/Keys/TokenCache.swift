import Runtime

/// A verified token's claims, and the same claims spelled out as JSON (made once, when the token
/// is first verified; the read cache's keys are made of it).
public struct VerifiedClaims: Sendable {
    public let claims: JSONObject
    public let key: String

    public init(_ claims: JSONObject) {
        self.claims = claims
        self.key = Self.key(of: claims)
    }

    public static func key(of claims: JSONObject) -> String {
        String(decoding: JSONValue.object(claims).encoded(), as: UTF8.self)
    }
}

/// Verified tokens and their claims, bounded: when full it starts over, which keeps the hot set and
/// costs nothing to maintain.
public final class TokenCache: @unchecked Sendable {
    private let lock = Lock()
    private var entries: [String: VerifiedClaims] = [:]
    private let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    public subscript(token: String) -> VerifiedClaims? {
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
