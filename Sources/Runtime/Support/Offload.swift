import NIOPosix

/// Runs CPU-heavy work (building a model of thousands of tables, a large document) on NIO's
/// blocking pool. The node runs Swift tasks on its event loops, so seconds of work inside a task
/// would stall every socket on that loop — cluster heartbeats included.
public func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}
