import NIOCore
import NIOPosix

/// At most `maxConcurrent` requests run at once; up to `maxQueued` more wait in FIFO order; beyond
/// that a request is refused at once rather than piling up. A waiter whose task is cancelled (for
/// example by its deadline) leaves the queue.
public final class ConcurrencyLimiter: @unchecked Sendable {
    public enum Refusal: Error, Equatable, Sendable {
        case queueFull
    }

    private let lock = Lock()
    private var maxConcurrent: Int
    private var maxQueued: Int
    private var active = 0
    private var waiters = CircularBuffer<(id: UInt64, continuation: UnsafeContinuation<Void, any Error>)>()
    private var nextID: UInt64 = 0
    /// The waiting limits of `acquire(within:)`: one timer for all waiters, not one each.
    private let deadlines = DeadlineQueue()

    public init(maxConcurrent: Int, maxQueued: Int) {
        self.maxConcurrent = maxConcurrent
        self.maxQueued = maxQueued
    }

    public var activeCount: Int { lock.withLock { active } }
    public var queuedCount: Int { lock.withLock { waiters.count } }

    public func reconfigure(maxConcurrent: Int, maxQueued: Int) {
        let released = lock.withLock { () -> [UnsafeContinuation<Void, any Error>] in
            self.maxConcurrent = maxConcurrent
            self.maxQueued = maxQueued
            var released: [UnsafeContinuation<Void, any Error>] = []
            while active < maxConcurrent, !waiters.isEmpty {
                active += 1
                released.append(waiters.removeFirst().continuation)
            }
            return released
        }
        released.forEach { $0.resume() }
    }

    /// Takes a slot if one is free now; never waits.
    public func tryAcquire() -> Bool {
        lock.withLock {
            guard active < maxConcurrent else { return false }
            active += 1
            return true
        }
    }

    /// Waits for a slot. Call `release()` exactly once after a successful acquire.
    public func acquire() async throws {
        enum Admission { case now, queued(UInt64), refused }
        let admission = lock.withLock { () -> Admission in
            if active < maxConcurrent { active += 1; return .now }
            guard waiters.count < maxQueued else { return .refused }
            nextID += 1
            return .queued(nextID)
        }
        switch admission {
        case .now: return
        case .refused: throw Refusal.queueFull
        case .queued(let id):
            try await waitInQueue(id: id)
        }
    }

    /// Waits for a slot at most `limit`, then throws `TimeoutError`. A free slot is taken at once;
    /// a waiter's limit is an entry in the limiter's `DeadlineQueue`, not a timer of its own —
    /// this is on every database read that finds the pool busy.
    public func acquire(within limit: Duration) async throws {
        if tryAcquire() { return }
        let expired = Flag()
        let id = lock.withLock { () -> UInt64 in nextID += 1; return nextID }
        let deadline = deadlines.add(after: limit) { [self] in
            // Set under the limiter's lock, so a waiter not yet queued sees it and never queues.
            lock.withLock { expired.set() }
            dequeue(id)?.resume(throwing: CancellationError())
        }
        defer { deadlines.remove(deadline) }
        do {
            try await waitInQueue(id: id, expired: expired)
        } catch is CancellationError where expired.isSet {
            throw TimeoutError(after: limit)
        }
    }

    /// Runs `body` holding a slot.
    public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    /// Queues the caller under `id` until `release()` hands it a slot; leaves the queue with
    /// `CancellationError` when its task is cancelled or `expired` is set.
    private func waitInQueue(id: UInt64, expired: Flag? = nil) async throws {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let resumeNow = lock.withLock { () -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let expired, expired.isSet { return .failure(CancellationError()) }
                    // A slot may have opened between the first check and here.
                    if active < maxConcurrent { active += 1; return .success(()) }
                    guard waiters.count < maxQueued else { return .failure(Refusal.queueFull) }
                    waiters.append((id, continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
            }
        } onCancel: {
            dequeue(id)?.resume(throwing: CancellationError())
        }
    }

    /// Takes waiter `id` out of the queue, if it is still there, to be resumed by the caller.
    private func dequeue(_ id: UInt64) -> UnsafeContinuation<Void, any Error>? {
        lock.withLock {
            guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return waiters.remove(at: index).continuation
        }
    }

    public func release() {
        let next = lock.withLock { () -> UnsafeContinuation<Void, any Error>? in
            if !waiters.isEmpty, active <= maxConcurrent { return waiters.removeFirst().continuation }
            active -= 1
            return nil
        }
        next?.resume()
    }
}
