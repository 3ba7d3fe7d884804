import Logging
import PostgresNIO
import Runtime
import Tenancy

/// The node's connections to its hosted database, shared by every tenant's provisioned schemas.
///
/// A provisioned source is one schema in the node's hosted database, and every statement names its
/// schema, so any connection can serve any tenant. With a pool per source (10 connections, kept
/// 60 s when idle) the connections grew with the active tenants: a cluster node with ~290 of them
/// active ran into PostgreSQL's `max_connections` (`53300`, Benchmarks/tenancy). Here the node
/// holds at most `capacity` connections to the hosted database in all, whatever the number of
/// tenants; each source still takes one of its own slots first, and may hold at most
/// `perSourceShare` of the node's, so one tenant's burst cannot take every connection.
///
/// Connections differ only by `statement_timeout` (derived from each tenant's request timeout), so
/// there is one pool per timeout in use — in practice one or two — under one admission and one cap.
/// Within a pool a source gets back a connection it used last where one is idle, so each
/// connection holds a few sources' prepared statements, not every tenant's (a connection with more
/// than 500 is replaced).
public final class HostedConnectionPools: @unchecked Sendable {
    /// What a source served from the hosted database uses in place of a pool of its own.
    struct Shared: Sendable {
        let pool: SourceConnectionPool
        let admission: ConcurrencyLimiter
    }

    public let url: PostgresURL
    public let capacity: Int
    private let admission: ConcurrencyLimiter
    private let logger: Logger
    private let lock = Lock()
    private var pools: [Int: (shared: Shared, sweeper: Task<Void, Never>)] = [:]

    public init(url: PostgresURL, capacity: Int, logger: Logger) {
        self.url = url
        self.capacity = max(1, capacity)
        self.admission = ConcurrencyLimiter(maxConcurrent: max(1, capacity), maxQueued: 100_000)
        var logger = logger
        logger[metadataKey: "pool"] = "hosted"
        self.logger = logger
    }

    /// The most of the node's connections one source may hold at once.
    public var perSourceShare: Int { max(1, capacity / 4) }

    /// Whether a source at `other` is in this database (same server, database and user): its
    /// schema can then be served over the shared connections.
    public func serves(_ other: PostgresURL) -> Bool {
        other.host == url.host && other.port == url.port && other.database == url.database && other.username == url.username
    }

    /// The pool whose connections run statements under `statementTimeoutMs`, made on first use with
    /// its idle sweeper.
    func shared(statementTimeoutMs: Int) -> Shared {
        lock.withLock {
            if let existing = pools[statementTimeoutMs] { return existing.shared }
            let url = url
            // Built once: a TLS context (and its trust roots) is not remade for every connection.
            let configuration = Result { () throws -> PostgresConnection.Configuration in
                var configuration = try url.connectionConfiguration()
                configuration.options.additionalStartupParameters.append(("statement_timeout", String(statementTimeoutMs)))
                return configuration
            }
            // One cap over every timeout's pool: opening a connection beyond it first closes one
            // idle in another pool, and a connection coming back while the pools are over it
            // (two pools opened at once) is closed rather than kept.
            let pool = SourceConnectionPool(
                logger: logger, beforeOpening: { [weak self] in self?.makeRoom(for: statementTimeoutMs) },
                keepsIdle: { [weak self] in self.map { $0.openConnections <= $0.capacity } ?? false }
            ) { try configuration.get() }
            let shared = Shared(pool: pool, admission: admission)
            pools[statementTimeoutMs] = (shared, Task { await pool.run() })
            return shared
        }
    }

    /// Before the pool for `statementTimeoutMs` opens a connection: at the cap, another pool's
    /// idle connection is closed. (A pool's own idle ones are used before it opens any.)
    private func makeRoom(for statementTimeoutMs: Int) {
        let all = lock.withLock { pools }
        guard all.values.reduce(0, { $0 + $1.shared.pool.openCount }) >= capacity else { return }
        for (timeout, entry) in all where timeout != statementTimeoutMs {
            if entry.shared.pool.closeOldestIdle() { return }
        }
    }

    /// Connections open now, idle or in use, over all timeouts (for tests and the benchmark).
    public var openConnections: Int {
        lock.withLock { pools.values.reduce(0) { $0 + $1.shared.pool.openCount } }
    }

    /// Closes every connection; called once the node's trees have stopped.
    public func shutdown() async {
        let sweepers = lock.withLock {
            defer { pools.removeAll() }
            return pools.values.map(\.sweeper)
        }
        for sweeper in sweepers {
            sweeper.cancel()
            await sweeper.value
        }
    }
}
