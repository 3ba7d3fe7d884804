import Logging
import NIOCore
import PostgresNIO
import Runtime

/// A source's database connections, opened on demand and reused most recently used first.
///
/// It does not limit or queue: the source's `ConcurrencyLimiter` already admits at most
/// `capacity` statements, with its own acquisition timeout, so a lease here only ever takes an idle
/// connection or opens one. What it saves over postgres-nio's `PostgresClient` pool is the timer
/// work of parking: that pool arms a keep-alive and an idle timer every time a connection goes
/// back with nobody waiting — which, behind our limiter, is every request — and each timer is a
/// few tasks and a sleep that outlives its cancellation until its deadline. Here one sweeper per
/// pool closes connections idle for longer than `idleTimeout`.
final class SourceConnectionPool: @unchecked Sendable {
    private let configuration: @Sendable () throws -> PostgresConnection.Configuration
    private let idleTimeout: Duration
    private let logger: Logger
    private let lock = Lock()
    private var idle: [(connection: PostgresConnection, since: ContinuousClock.Instant)] = []
    /// Distinct prepared statements per connection: the server keeps each for the connection's
    /// life, so beyond `maxPrepared` a connection is closed and replaced.
    private var prepared: [PostgresConnection.ID: Set<String>] = [:]
    private let maxPrepared: Int
    private var retiring: Set<PostgresConnection.ID> = []
    private var nextID = 0
    private var stopped = false

    init(
        idleTimeout: Duration = .seconds(60), maxPrepared: Int = 500, logger: Logger,
        configuration: @escaping @Sendable () throws -> PostgresConnection.Configuration
    ) {
        self.maxPrepared = maxPrepared
        self.configuration = configuration
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    /// Runs `body` on a connection; the connection goes back afterwards unless it closed (a
    /// database restart, a broken socket), in which case the next lease opens a fresh one.
    ///
    /// A cancelled caller (its deadline passed) closes the connection: postgres-nio's `query`
    /// does not stop for cancellation, so closing is what frees the caller — and the server rolls
    /// back whatever the connection had open. A connection that failed with anything but the
    /// server's own error (a broken protocol, a timeout) is closed too, never reused.
    func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let result = try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                self.close(connection)
            }
            // Cancelled just as the body finished: the connection may already be closing.
            if Task.isCancelled { close(connection) } else { giveBack(connection) }
            return result
        } catch let error as PSQLError where error.serverInfo != nil && !Task.isCancelled {
            giveBack(connection)
            throw error
        } catch let error as RestError where !Task.isCancelled {
            // Decided by us after the statement (a policy check, a singular answer): the
            // transaction was rolled back on a healthy connection.
            giveBack(connection)
            throw error
        } catch {
            close(connection)
            throw error
        }
    }

    private func lease() async throws -> PostgresConnection {
        while let connection = lock.withLock({ takeIdle() }) {
            // One the server closed while it sat idle (a restart) is dropped, not used.
            if !connection.isClosed { return connection }
        }
        let id = lock.withLock { () -> Int in
            nextID += 1
            return nextID
        }
        return try await PostgresConnection.connect(configuration: try configuration(), id: id, logger: logger)
    }

    /// The most recently used idle connection on the caller's own event loop if there is one, else
    /// the most recently used. Tasks run on the event loops, so a statement on a connection of the
    /// same loop needs no thread hop for its query, its answer, or the caller's response after it.
    private func takeIdle() -> PostgresConnection? {
        if let index = idle.lastIndex(where: { $0.connection.eventLoop.inEventLoop }) {
            return idle.remove(at: index).connection
        }
        return idle.popLast()?.connection
    }

    /// Records that `name` is prepared (or about to be) on `connection`.
    func notePrepared(_ name: String, on connection: PostgresConnection) {
        lock.withLock { _ = prepared[connection.id, default: []].insert(name) }
    }

    /// The connection is closed when it comes back instead of being reused: postgres-nio keeps a
    /// statement that failed to prepare as failed for the connection's life.
    func retire(_ connection: PostgresConnection) {
        lock.withLock { retiring.insert(connection.id) }
    }

    private func giveBack(_ connection: PostgresConnection) {
        guard !connection.isClosed else { return }
        let keep = lock.withLock { () -> Bool in
            guard !stopped, !retiring.contains(connection.id), prepared[connection.id]?.count ?? 0 <= maxPrepared else { return false }
            idle.append((connection, .now))
            return true
        }
        if !keep { close(connection) }
    }

    /// Closes connections idle for longer than `idleTimeout` until cancelled, then all of them.
    /// The source's supervised child; may run again after a restart.
    func run() async {
        lock.withLock { stopped = false }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            let cutoff = ContinuousClock.now - idleTimeout
            let expired = lock.withLock { () -> [PostgresConnection] in
                // Oldest first: the front of the list has waited longest.
                let count = idle.prefix { $0.since < cutoff }.count
                defer { idle.removeFirst(count) }
                return idle.prefix(count).map(\.connection)
            }
            expired.forEach(close)
        }
        let all = lock.withLock { () -> [PostgresConnection] in
            stopped = true
            defer { idle = [] }
            return idle.map(\.connection)
        }
        all.forEach(close)
    }

    private func close(_ connection: PostgresConnection) {
        lock.withLock {
            prepared.removeValue(forKey: connection.id)
            retiring.remove(connection.id)
        }
        Task { try? await connection.close() }
    }
}
