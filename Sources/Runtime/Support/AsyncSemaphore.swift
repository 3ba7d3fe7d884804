/// A counting semaphore for async code that never blocks a thread. Waiters are served in FIFO order;
/// a cancelled waiter leaves the queue and throws `CancellationError`.
public final class AsyncSemaphore: @unchecked Sendable {
    private let lock = Lock()
    private var permits: Int
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0

    public init(permits: Int) {
        precondition(permits > 0)
        self.permits = permits
    }

    public func wait() async throws {
        try Task.checkCancellation()
        let id: UInt64? = lock.withLock {
            if permits > 0 { permits -= 1; return nil }
            nextID += 1
            return nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = lock.withLock { () -> Bool in
                    if Task.isCancelled { return true }
                    waiters.append((id, continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let continuation = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
                guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return waiters.remove(at: index).continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    public func signal() {
        let next = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
            if waiters.isEmpty { permits += 1; return nil }
            return waiters.removeFirst().continuation
        }
        next?.resume()
    }

    public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await wait()
        defer { signal() }
        return try await body()
    }
}
