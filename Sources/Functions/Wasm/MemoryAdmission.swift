import Runtime

/// The node-wide memory admission of function calls (`MINIBAAS_FUNCTION_MEMORY_MB`): a call runs
/// only while the memory limits of all running calls, its own included, fit the node's budget, so
/// that many tenants' calls each allowed 256 MB cannot together take more than the node has. Calls
/// wait in arrival order (a large limit is not overtaken for ever by small ones), each at most until
/// its own deadline.
public final class MemoryAdmission: @unchecked Sendable {
    public let totalBytes: Int
    private let lock = Lock()
    private var inUse = 0
    private var waiters: [(id: UInt64, bytes: Int, continuation: UnsafeContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0
    /// Waiters whose deadline passed before they were queued (they must not queue), and the
    /// waiters still in `acquire` (a deadline firing after its waiter left records nothing).
    private var expired: Set<UInt64> = []
    private var live: Set<UInt64> = []
    private let deadlines = DeadlineQueue()

    public init(totalBytes: Int) {
        self.totalBytes = max(1, totalBytes)
    }

    /// The bytes the running calls hold.
    public var admittedBytes: Int { lock.withLock { inUse } }
    public var waitingCount: Int { lock.withLock { waiters.count } }

    /// Waits until `bytes` fit, at most `limit`; call `release(bytes)` once after it returns.
    public func acquire(_ bytes: Int, within limit: Duration) async throws(FunctionError) {
        guard bytes <= totalBytes else {
            throw FunctionError(
                status: 503, code: "MB875", message: "the function's memory limit is more than the node admits for all its running calls",
                details: "limit \(bytes >> 20) MB, node \(totalBytes >> 20) MB (MINIBAAS_FUNCTION_MEMORY_MB)")
        }
        let id = lock.withLock { () -> UInt64? in
            if waiters.isEmpty, inUse + bytes <= totalBytes {
                inUse += bytes
                return nil
            }
            nextID += 1
            live.insert(nextID)
            return nextID
        }
        guard let id else { return }
        let deadline = deadlines.add(after: limit) { [self] in
            lock.withLock { if live.contains(id) { expired.insert(id) } }
            dequeue(id)?.resume(throwing: CancellationError())
        }
        defer {
            deadlines.remove(deadline)
            lock.withLock {
                live.remove(id)
                expired.remove(id)
            }
        }
        do {
            try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                    let now = lock.withLock { () -> Bool? in
                        if Task.isCancelled || expired.contains(id) { return false }
                        if waiters.isEmpty, inUse + bytes <= totalBytes {
                            inUse += bytes
                            return true
                        }
                        waiters.append((id, bytes, continuation))
                        return nil
                    }
                    switch now {
                    case true?: continuation.resume()
                    case false?: continuation.resume(throwing: CancellationError())
                    case nil: break
                    }
                }
            } onCancel: {
                dequeue(id)?.resume(throwing: CancellationError())
            }
        } catch {
            throw FunctionError(
                status: 503, code: "MB875", message: "the node's memory for function calls is taken by running calls",
                details: "waited \(limit) for \(bytes >> 20) MB of \(totalBytes >> 20) MB (MINIBAAS_FUNCTION_MEMORY_MB)")
        }
    }

    public func release(_ bytes: Int) {
        let admitted = lock.withLock { () -> [UnsafeContinuation<Void, any Error>] in
            inUse -= bytes
            return admitWaiters()
        }
        admitted.forEach { $0.resume() }
    }

    /// Under the lock: the waiters at the head that now fit, in order.
    private func admitWaiters() -> [UnsafeContinuation<Void, any Error>] {
        var admitted: [UnsafeContinuation<Void, any Error>] = []
        while let first = waiters.first, inUse + first.bytes <= totalBytes {
            inUse += first.bytes
            admitted.append(waiters.removeFirst().continuation)
        }
        return admitted
    }

    /// Takes waiter `id` out of the queue (its deadline passed, or its task was cancelled); those
    /// behind it may fit now.
    private func dequeue(_ id: UInt64) -> UnsafeContinuation<Void, any Error>? {
        let (removed, admitted) = lock.withLock { () -> (UnsafeContinuation<Void, any Error>?, [UnsafeContinuation<Void, any Error>]) in
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
            let removed = waiters.remove(at: index).continuation
            return (removed, admitWaiters())
        }
        admitted.forEach { $0.resume() }
        return removed
    }
}
