import NIOCore
import NIOPosix

/// Thrown by `withTimeout` when the deadline passes first.
public struct TimeoutError: Error, CustomStringConvertible {
    public let after: Duration
    public var description: String { "timed out after \(after)" }
}

/// Runs `body` against a deadline: when it passes, `body` is cancelled and `TimeoutError` thrown.
/// On the request path, so it costs one task and one event-loop timer, not a task group.
public func withTimeout<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    let expired = Flag()
    let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(deadline)) {
        expired.set()
        task.cancel()
    }
    defer { timer.cancel() }
    do {
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    } catch {
        if expired.isSet { throw TimeoutError(after: deadline) }
        throw error
    }
}

/// A flag that is set once, from any thread.
final class Flag: @unchecked Sendable {
    private let lock = Lock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

