import NIOConcurrencyHelpers

/// The embedded control plane's single writer, handed out in turn by lane (a tenant's jobs, or
/// everything else): one tenant with a backlog of claims and settles queued gets one transaction,
/// then the next lane with work gets one, so another tenant waits for at most one transaction per
/// busy lane rather than for the whole backlog. Within a lane, first come, first served.
final class FairWriterGate: Sendable {
    private struct State {
        var busy = false
        var lanes: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Lanes with waiters, in the order they get their next turn.
        var turns: [String] = []
    }

    private let state = NIOLockedValueBox(State())

    func acquire(lane: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLockedValue { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                if state.lanes[lane, default: []].isEmpty { state.turns.append(lane) }
                state.lanes[lane, default: []].append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Passes the writer to the next lane's first waiter (still busy), or frees it.
    func release() {
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.turns.isEmpty else {
                state.busy = false
                return nil
            }
            let lane = state.turns.removeFirst()
            var waiting = state.lanes[lane] ?? []
            let first = waiting.removeFirst()
            if waiting.isEmpty {
                state.lanes[lane] = nil
            } else {
                state.lanes[lane] = waiting
                state.turns.append(lane)
            }
            return first
        }
        next?.resume()
    }
}
