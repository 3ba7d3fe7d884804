import NIOConcurrencyHelpers

/// The node's job slots, shared by every tenant's workers: at most `capacity` jobs run on the
/// node at once. Waiters are served in arrival order and a tenant asks again after each job, so
/// tenants with due work take turns (round-robin) and a tenant with a huge backlog holds no more
/// than its own in-flight limit while others wait.
public final class JobSlots: Sendable {
    private struct State {
        var free: Int
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID: UInt64 = 0
    }

    public let capacity: Int
    private let state: NIOLockedValueBox<State>

    public init(capacity: Int = 256) {
        self.capacity = capacity
        self.state = NIOLockedValueBox(State(free: capacity))
    }

    /// Waits for a slot; false when cancelled while waiting (no slot taken).
    public func acquire() async -> Bool {
        if tryAcquire() { return true }
        let id = state.withLockedValue { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let granted = state.withLockedValue { state -> Bool in
                    if state.free > 0 && state.waiters.isEmpty {
                        state.free -= 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return false
                }
                if granted { continuation.resume(returning: true) }
                if Task.isCancelled { cancel(id) }
            }
        } onCancel: {
            cancel(id)
        }
    }

    /// A slot if one is free now and nobody waits for one.
    public func tryAcquire() -> Bool {
        state.withLockedValue { state in
            guard state.free > 0, state.waiters.isEmpty else { return false }
            state.free -= 1
            return true
        }
    }

    public func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
            if state.waiters.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume(returning: true)
    }

    public var inUse: Int { state.withLockedValue { capacity - $0.free } }

    private func cancel(_ id: UInt64) {
        let removed = state.withLockedValue { state -> CheckedContinuation<Bool, Never>? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index).continuation
        }
        removed?.resume(returning: false)
    }
}
