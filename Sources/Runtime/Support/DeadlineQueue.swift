import NIOCore
import NIOPosix
import Synchronization

/// Deadlines of (nearly) one length — a tenant's request timeout, a pool's acquisition wait — which
/// therefore expire in the order they were set, so one event-loop timer, armed for the earliest,
/// serves them all. A NIO timer per request would be scheduled and cancelled on every request, and
/// the cancel is a cross-thread wake-up whenever the request finishes on another event loop than
/// it started on (they move: tasks run on the loops). Here finishing only forgets the entry; when
/// the timer fires it fires what is due and re-arms for the next deadline still wanted.
public final class DeadlineQueue: @unchecked Sendable {
    /// Plain values, so walking the buffer retains nothing; the actions are in `wanted`.
    private struct Entry {
        let id: UInt64
        let deadline: NIODeadline
    }

    private let lock = Lock()
    private let loop: any EventLoop
    private var entries = CircularBuffer<Entry>()
    private var wanted: [UInt64: @Sendable () -> Void] = [:]
    private var nextID: UInt64 = 0
    /// When the earliest scheduled timer fires (nil: none is scheduled).
    private var armedFor: NIODeadline?

    public init(loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.loop = loop
    }

    /// Entries set and not yet fired or removed.
    public var count: Int { lock.withLock { wanted.count } }

    /// Calls `fire` (on an event loop, outside any lock of this queue) once `delay` has passed,
    /// unless `remove` is called with the returned id first.
    public func add(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        let deadline = NIODeadline.now() + TimeAmount(delay)
        let (id, arm) = lock.withLock { () -> (UInt64, NIODeadline?) in
            nextID += 1
            dropForgottenFront()
            let entry = Entry(id: nextID, deadline: deadline)
            if let last = entries.last, last.deadline > deadline {
                // Set later with a shorter length (the length changed): goes before longer ones.
                let index = entries.firstIndex { $0.deadline > deadline } ?? entries.endIndex
                entries.insert(entry, at: index)
            } else {
                entries.append(entry)
            }
            wanted[nextID] = fire
            guard armedFor.map({ deadline < $0 }) ?? true else { return (nextID, nil) }
            armedFor = deadline
            return (nextID, deadline)
        }
        if let arm { schedule(at: arm) }
        return id
    }

    /// Forgets entry `id`; its `fire` is not called after this returns (unless it already was).
    public func remove(_ id: UInt64) {
        _ = lock.withLock { wanted.removeValue(forKey: id) }
    }

    private func schedule(at deadline: NIODeadline) {
        loop.scheduleTask(deadline: deadline) { [self] in expire(timer: deadline) }
    }

    /// A timer fired: fires what is due, and — if this was the earliest timer — arms the next.
    private func expire(timer: NIODeadline) {
        let now = NIODeadline.now()
        let (due, arm) = lock.withLock { () -> ([@Sendable () -> Void], NIODeadline?) in
            var due: [@Sendable () -> Void] = []
            while let first = entries.first, first.deadline <= now {
                entries.removeFirst()
                if let fire = wanted.removeValue(forKey: first.id) { due.append(fire) }
            }
            dropForgottenFront()
            // A later timer (armed before an earlier deadline arrived) finds nothing to re-arm.
            guard armedFor == timer else { return (due, nil) }
            armedFor = entries.first?.deadline
            return (due, armedFor)
        }
        due.forEach { $0() }
        if let arm { schedule(at: arm) }
    }

    /// Entries at the front that were removed: dropped, so the buffer holds roughly what is in flight.
    private func dropForgottenFront() {
        while let first = entries.first, wanted[first.id] == nil { entries.removeFirst() }
    }

    /// Runs `body` in the calling task against a deadline `delay` away: when it passes, the calling
    /// task itself is cancelled, and `TimeoutError` is thrown once `body` has returned or thrown.
    /// It makes no task (what `withTimeout` costs), which is what the request path wants: a request
    /// runs in its connection's task, and a connection whose request ran out of time is closed after
    /// its answer. The calling task stays cancelled afterwards, so this is for a caller whose work
    /// ends with `body`.
    public func cancellingCaller<T>(after delay: Duration, _ body: () async throws -> T) async throws -> T {
        let alarm = withUnsafeCurrentTask { CancellationAlarm(task: $0) }
        let id = add(after: delay) { alarm.fire() }
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        // Disarmed before this frame ends: the alarm never touches a task that has moved on.
        let fired = alarm.disarm()
        remove(id)
        if fired, case .failure = result { throw TimeoutError(after: delay) }
        return try result.get()
    }
}

/// The calling task, held only while `cancellingCaller` runs in it, cancelled when the deadline
/// fires. `UnsafeCurrentTask` must not outlive its task: `disarm` returns only once no `fire` is
/// using it, and a `fire` after `disarm` does nothing. A state word rather than a lock: this is made
/// on every request, and an `NSLock` is an allocation of its own plus a mutex to set up.
private final class CancellationAlarm: @unchecked Sendable {
    private static let armed = 0, firing = 1, fired = 2, disarmed = 3
    private let task: UnsafeCurrentTask?
    private let state = Atomic<Int>(CancellationAlarm.armed)

    init(task: UnsafeCurrentTask?) {
        self.task = task
    }

    func fire() {
        guard state.compareExchange(expected: Self.armed, desired: Self.firing, ordering: .acquiring).exchanged else { return }
        task?.cancel()
        state.store(Self.fired, ordering: .releasing)
    }

    /// Whether the deadline passed while armed; waits out a `fire` in progress.
    func disarm() -> Bool {
        while true {
            let (exchanged, current) = state.compareExchange(expected: Self.armed, desired: Self.disarmed, ordering: .acquiring)
            if exchanged { return false }
            if current == Self.fired { return true }
            // `fire` is cancelling the task on another thread: a few instructions away.
        }
    }
}
