import Foundation

/// A small lock for state touched from synchronous and asynchronous code alike. Never held across
/// an `await`.
public final class Lock: @unchecked Sendable {
    private let nsLock = NSLock()
    public init() {}

    @inline(__always)
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        nsLock.lock()
        defer { nsLock.unlock() }
        return try body()
    }
}
