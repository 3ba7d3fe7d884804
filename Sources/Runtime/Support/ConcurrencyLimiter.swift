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
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextID: UInt64 = 0

    public init(maxConcurrent: Int, maxQueued: Int) {
        self.maxConcurrent = maxConcurrent
        self.maxQueued = maxQueued
    }

    public var activeCount: Int { lock.withLock { active } }
    public var queuedCount: Int { lock.withLock { waiters.count } }

    public func reconfigure(maxConcurrent: Int, maxQueued: Int) {
        let released = lock.withLock { () -> [CheckedContinuation<Void, any Error>] in
            self.maxConcurrent = maxConcurrent
            self.maxQueued = maxQueued
            var released: [CheckedContinuation<Void, any Error>] = []
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
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let resumeNow = lock.withLock { () -> Bool? in
                        if Task.isCancelled { return false }
                        // A slot may have opened between the first check and here.
                        if active < maxConcurrent { active += 1; return true }
                        waiters.append((id, continuation))
                        return nil
                    }
                    switch resumeNow {
                    case true?: continuation.resume()
                    case false?: continuation.resume(throwing: CancellationError())
                    case nil: break
                    }
                }
            } onCancel: {
                let continuation = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
                    guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return waiters.remove(at: index).continuation
                }
                continuation?.resume(throwing: CancellationError())
            }
        }
    }

    /// Runs `body` holding a slot.
    public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    public func release() {
        let next = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
            if !waiters.isEmpty, active <= maxConcurrent { return waiters.removeFirst().continuation }
            active -= 1
            return nil
        }
        next?.resume()
    }
}
