import NIOCore
import NIOPosix

/// A task executor over one of NIO's event loops, so a request's task runs its nonisolated async
/// code on the loop its socket belongs to without a switch at every call.
///
/// NIO installed as Swift's global executor runs each job as the loop's *serial* executor. The
/// runtime then sees every call into nonisolated async code as a change of executor (serial →
/// generic) and enqueues the task again before running it: measured with a uprobe on
/// `swift_job_run`, a REST read by primary key ran ~100 jobs where the hand-written baseline ran 3.
/// A job run here runs on the generic executor with this task executor as the task's preference,
/// so such calls continue in place; only real suspensions (I/O, a lock wait) enqueue.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let loop: any EventLoop

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One executor per loop of NIO's singleton group, made once: looked up on every request.
    private static let byLoop: [ObjectIdentifier: EventLoopTaskExecutor] = {
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            executors[ObjectIdentifier(loop)] = EventLoopTaskExecutor(loop: loop)
        }
        return executors
    }()

    /// The executor of `loop`, if it is one of the singleton group's.
    public static func of(_ loop: any EventLoop) -> EventLoopTaskExecutor? {
        byLoop[ObjectIdentifier(loop)]
    }

    /// Runs `body` with `loop`'s executor as the task's preference (as is, when `loop` is not one
    /// of the singleton group's).
    public static func preferring<T>(_ loop: any EventLoop, _ body: () async throws -> T) async rethrows -> T {
        guard let executor = of(loop) else { return try await body() }
        return try await withTaskExecutorPreference(executor, operation: body)
    }
}
