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
    /// Idle connections, oldest first, each with the affinity of the last caller it served.
    private var idle: [(connection: PostgresConnection, since: ContinuousClock.Instant, affinity: Int)] = []
    /// Prepared statements per connection (false: its first use failed, so it runs unnamed
    /// there). The server keeps each for the connection's life, so a connection holding more
    /// than `maxPrepared` is closed and replaced.
    private var prepared: [PostgresConnection.ID: [String: Bool]] = [:]
    private let maxPrepared: Int
    /// Connections opened and not yet closed, idle or leased.
    private var open: Set<PostgresConnection.ID> = []
    private var nextID = 0
    private var stopped = false
    /// Called before a connection is opened (the node's hosted pools make room under their
    /// common cap there).
    private let beforeOpening: (@Sendable () -> Void)?
    /// Asked when a connection comes back: false closes it instead of keeping it idle (over the
    /// hosted pools' common cap, which concurrent openings in two pools can pass for a moment).
    private let keepsIdle: (@Sendable () -> Bool)?

    init(
        idleTimeout: Duration = .seconds(60), maxPrepared: Int = 500, logger: Logger,
        beforeOpening: (@Sendable () -> Void)? = nil, keepsIdle: (@Sendable () -> Bool)? = nil,
        configuration: @escaping @Sendable () throws -> PostgresConnection.Configuration
    ) {
        self.maxPrepared = maxPrepared
        self.configuration = configuration
        self.idleTimeout = idleTimeout
        self.logger = logger
        self.beforeOpening = beforeOpening
        self.keepsIdle = keepsIdle
    }

    /// Runs `body` on a connection; the connection goes back afterwards unless it closed (a
    /// database restart, a broken socket), in which case the next lease opens a fresh one.
    ///
    /// A cancelled caller (its deadline passed) closes the connection: postgres-nio's `query`
    /// does not stop for cancellation, so closing is what frees the caller — and the server rolls
    /// back whatever the connection had open. A connection that failed with anything but the
    /// server's own error (a broken protocol, a timeout) is closed too, never reused.
    ///
    /// `affinity`: callers sharing a pool (the node's hosted schemas) name themselves, and get back
    /// a connection that last served them where one is idle — one whose prepared statements are
    /// theirs, so each connection prepares a few sources' statements rather than every source's.
    func withConnection<T>(affinity: Int = 0, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease(affinity: affinity)
        do {
            let result = try await withTaskCancellationHandler {
                try await body(connection)
            } onCancel: {
                self.close(connection)
            }
            // Cancelled just as the body finished: the connection may already be closing.
            if Task.isCancelled { close(connection) } else { giveBack(connection, affinity: affinity) }
            return result
        } catch let error as PSQLError where error.serverInfo != nil && !Task.isCancelled {
            giveBack(connection, affinity: affinity)
            throw error
        } catch let error as RestError where !Task.isCancelled {
            // Decided by us after the statement (a policy check, a singular answer): the
            // transaction was rolled back on a healthy connection.
            giveBack(connection, affinity: affinity)
            throw error
        } catch {
            close(connection)
            throw error
        }
    }

    private func lease(affinity: Int) async throws -> PostgresConnection {
        while let connection = lock.withLock({ takeIdle(affinity: affinity) }) {
            // One the server closed while it sat idle (a restart) is dropped, not used.
            if !connection.isClosed { return connection }
            forget(connection)
        }
        beforeOpening?()
        let id = lock.withLock { () -> Int in
            nextID += 1
            return nextID
        }
        let connection = try await PostgresConnection.connect(configuration: try configuration(), id: id, logger: logger)
        _ = lock.withLock { open.insert(connection.id) }
        return connection
    }

    /// Connections open now, idle or in use.
    var openCount: Int { lock.withLock { open.count } }

    /// The most recently used idle connection on the caller's own event loop if there is one, else
    /// the most recently used. Tasks run on the event loops, so a statement on a connection of the
    /// same loop needs no thread hop for its query, its answer, or the caller's response after it.
    /// With an `affinity`, one that last served the same caller comes first (on the caller's loop
    /// if possible).
    private func takeIdle(affinity: Int) -> PostgresConnection? {
        if affinity != 0 {
            if let index = idle.lastIndex(where: { $0.affinity == affinity && $0.connection.eventLoop.inEventLoop })
                ?? idle.lastIndex(where: { $0.affinity == affinity })
            {
                return idle.remove(at: index).connection
            }
        }
        if let index = idle.lastIndex(where: { $0.connection.eventLoop.inEventLoop }) {
            return idle.remove(at: index).connection
        }
        return idle.popLast()?.connection
    }

    /// Closes the connection idle longest, if any (room for another pool's new connection).
    func closeOldestIdle() -> Bool {
        guard let oldest = lock.withLock({ idle.isEmpty ? nil : idle.removeFirst().connection }) else { return false }
        close(oldest)
        return true
    }

    enum PreparedUse { case first, again, failedBefore }

    /// Records a use of the prepared statement `name` on `connection`: its first, a later one, or
    /// one after its first use failed (see `failed`).
    func use(_ name: String, on connection: PostgresConnection) -> PreparedUse {
        lock.withLock {
            switch prepared[connection.id]?[name] {
            case true?: return .again
            case false?: return .failedBefore
            case nil:
                prepared[connection.id, default: [:]][name] = true
                return .first
            }
        }
    }

    /// The first use of `name` on `connection` failed: postgres-nio may hold that as the statement's
    /// answer for the connection's life, so it runs unnamed there from now on.
    func failed(_ name: String, on connection: PostgresConnection) {
        lock.withLock { prepared[connection.id]?[name] = false }
    }

    private func forget(_ connection: PostgresConnection) {
        lock.withLock {
            prepared.removeValue(forKey: connection.id)
            open.remove(connection.id)
        }
    }

    private func giveBack(_ connection: PostgresConnection, affinity: Int) {
        guard !connection.isClosed else { return forget(connection) }
        if let keepsIdle, !keepsIdle() { return close(connection) }
        let keep = lock.withLock { () -> Bool in
            guard !stopped, (prepared[connection.id]?.count ?? 0) <= maxPrepared else { return false }
            idle.append((connection, .now, affinity))
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
        forget(connection)
        Task { try? await connection.close() }
    }
}
