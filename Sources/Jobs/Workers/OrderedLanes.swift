import NIOConcurrencyHelpers

/// Jobs that share an ordering key (one webhook's changes to one row) run one at a time, in the
/// order they were claimed; jobs with different keys, or none, still run side by side. A ticket
/// is taken synchronously while the claimed batch is handed out — the tasks themselves may start
/// in any order — and the job's task waits until its ticket is first in its lane.
final class OrderedLanes: Sendable {
    private struct Lane {
        var tickets: [UInt64] = []
        var waiting: [UInt64: CheckedContinuation<Bool, Never>] = [:]
    }
    private struct State {
        var next: UInt64 = 0
        var lanes: [String: Lane] = [:]
    }
    private let state = NIOLockedValueBox(State())

    /// A place in `key`'s lane, behind every ticket taken before it.
    func enter(_ key: String) -> UInt64 {
        state.withLockedValue { state in
            state.next += 1
            state.lanes[key, default: Lane()].tickets.append(state.next)
            return state.next
        }
    }

    /// Until `ticket` is first in its lane; false when cancelled first (the ticket is given up).
    func wait(_ key: String, ticket: UInt64) async -> Bool {
        if state.withLockedValue({ $0.lanes[key]?.tickets.first == ticket }) { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                // Decided under one lock: a ticket already given up (cancelled before the wait
                // began), first now, or left waiting for `leave` to resume it.
                let go = state.withLockedValue { state -> Bool? in
                    guard state.lanes[key]?.tickets.contains(ticket) == true else { return false }
                    if state.lanes[key]?.tickets.first == ticket { return true }
                    state.lanes[key]?.waiting[ticket] = continuation
                    return nil
                }
                if let go { continuation.resume(returning: go) }
            }
        } onCancel: {
            leave(key, ticket: ticket)
        }
    }

    /// `ticket` is done (or given up): the next in its lane may run.
    func leave(_ key: String, ticket: UInt64) {
        let resumed = state.withLockedValue { state -> (CheckedContinuation<Bool, Never>, Bool)? in
            guard var lane = state.lanes[key], let index = lane.tickets.firstIndex(of: ticket) else { return nil }
            lane.tickets.remove(at: index)
            // A ticket given up while waiting answers false; the new head of the lane, if it
            // already waits, may go.
            var resumed: (CheckedContinuation<Bool, Never>, Bool)?
            if let own = lane.waiting.removeValue(forKey: ticket) {
                resumed = (own, false)
            } else if index == 0, let head = lane.tickets.first, let next = lane.waiting.removeValue(forKey: head) {
                resumed = (next, true)
            }
            state.lanes[key] = lane.tickets.isEmpty ? nil : lane
            return resumed
        }
        if let (continuation, go) = resumed { continuation.resume(returning: go) }
    }

    /// Keys with tickets outstanding (tests; an idle lane is removed).
    var busyLanes: Int { state.withLockedValue { $0.lanes.count } }
}
