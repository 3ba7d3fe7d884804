import Runtime

/// A small type-keyed store: one value per type.
public final class Attachments: @unchecked Sendable {
    private let lock = Lock()
    private var values: [ObjectIdentifier: any Sendable] = [:]

    public init() {}

    public func set<T: Sendable>(_ value: T) {
        lock.withLock { values[ObjectIdentifier(T.self)] = value }
    }

    public func get<T: Sendable>(_ type: T.Type = T.self) -> T? {
        lock.withLock { values[ObjectIdentifier(T.self)] as? T }
    }

    /// The value of that type, made and kept by the first caller.
    public func getOrSet<T: Sendable>(_ make: () -> T) -> T {
        lock.withLock {
            if let existing = values[ObjectIdentifier(T.self)] as? T { return existing }
            let made = make()
            values[ObjectIdentifier(T.self)] = made
            return made
        }
    }
}
