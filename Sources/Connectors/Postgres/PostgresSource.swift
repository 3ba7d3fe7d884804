import Foundation
import Logging
import PostgresNIO
import Runtime
import Tenancy
import Tracing

/// One registered PostgreSQL database of a tenant: its connection pool, its model, and the way a
/// statement runs on it. The pool is capped; waiting for a connection is bounded, so an exhausted
/// pool answers 503 instead of hanging; `statement_timeout` is set on every connection.
public final class PostgresSource: Sendable {
    public struct Settings: Sendable {
        public var maxConnections: Int = 10
        public var acquireTimeout: Duration = .seconds(5)
        public var statementTimeoutMs: Int = 15_000
        /// Statements run as named prepared statements (parsed and planned once per connection).
        /// Off for databases reached through a pooler in transaction mode (PgBouncer, Supavisor
        /// on port 6543), where a connection's prepared statements do not follow the client.
        public var preparedStatements = true
        public init() {}
    }

    public let name: String
    /// `postgres`, `supabase` (with its database URL) or `schema` (an upload over a database).
    public let kind: SourceKind
    public let url: PostgresURL
    public let schemas: [String]
    public let settings: Settings
    public let model: SchemaModel
    private let gate: ConcurrencyLimiter
    private let pool: SourceConnectionPool
    /// The node's admission to its hosted database, for a source served over the shared
    /// connections; nil when the source has a pool of its own.
    private let nodeAdmission: ConcurrencyLimiter?
    /// On shared connections, this source's name for them (see `SourceConnectionPool.withConnection`).
    private let affinity: Int
    private let logger: Logger

    /// `hosted`: the node's shared connections to its hosted database, used in place of a pool of
    /// the source's own (a provisioned schema there); `maxConnections` is then held to its share.
    public init(
        name: String, kind: SourceKind = .postgres, url: PostgresURL, schemas: [String], model: SchemaModel, settings: Settings,
        hosted: HostedConnectionPools? = nil, logger: Logger
    ) {
        self.name = name
        self.kind = kind
        self.url = url
        self.schemas = schemas
        self.model = model
        var settings = settings
        if let hosted { settings.maxConnections = min(settings.maxConnections, hosted.perSourceShare) }
        self.settings = settings
        self.gate = ConcurrencyLimiter(maxConcurrent: settings.maxConnections, maxQueued: 10_000)
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
        if let shared = hosted?.shared(statementTimeoutMs: settings.statementTimeoutMs) {
            self.pool = shared.pool
            self.nodeAdmission = shared.admission
            var hasher = Hasher()
            hasher.combine(url.database)
            hasher.combine(schemas)
            self.affinity = hasher.finalize() | 1
            return
        }
        self.nodeAdmission = nil
        self.affinity = 0
        // Built once: a TLS context (and its trust roots) is not remade for every connection.
        let configuration = Result { () throws -> PostgresConnection.Configuration in
            var configuration = try url.connectionConfiguration()
            configuration.options.additionalStartupParameters.append(("statement_timeout", String(settings.statementTimeoutMs)))
            return configuration
        }
        self.pool = SourceConnectionPool(logger: logger) { try configuration.get() }
    }

    /// The pool's life: closes idle connections until cancelled, then all. A supervised child of
    /// the tenant's tree. Shared connections are the node's: the child only waits to be stopped.
    public func runPool() async {
        guard nodeAdmission == nil else { return await untilCancelled() }
        await pool.run()
    }

    /// Runs one statement and returns its single row (body, page_count, total).
    /// `rows`: a write touching more rows than allowed (or not exactly the one a singular answer
    /// asked for, PGRST116 as in PostgREST) is undone.
    public func execute(_ statement: SQLStatement, rollback: Bool = false, expecting rows: WrittenRows = .any) async throws -> StatementResult {
        guard rollback || statement.checked || rows.bounds else {
            try await admitted()
            defer { released() }
            do {
                return try await pool.withConnection(affinity: affinity) { connection in try await run(statement, on: connection) }
            } catch let error as PSQLError {
                throw PostgresErrorMapping.restError(error, source: name)
            }
        }
        // A transaction, so that a write whose rows fail their policy check or their bound, or
        // that asked for tx=rollback, leaves nothing behind.
        do {
            return try await executeAll([(statement, rows)], rollback: rollback)[0]
        } catch let failure as TransactionStepFailure {
            throw failure.error
        }
    }

    /// Runs statements in one transaction on one connection: each is held to its row bound and
    /// its policy check, and any failure (thrown as `TransactionStepFailure`) undoes them all.
    /// `rollback`: undone even when every statement succeeds (`Prefer: tx=rollback`).
    public func executeAll(_ statements: [(statement: SQLStatement, expecting: WrittenRows)], rollback: Bool = false) async throws -> [StatementResult] {
        try await admitted()
        defer { released() }
        let outcome: Result<[StatementResult], TransactionStepFailure>
        do {
            outcome = try await inTransaction(statements, rollback: rollback)
        } catch let error as PSQLError {
            throw PostgresErrorMapping.restError(error, source: name)
        }
        return try outcome.get()
    }

    /// A step's failure comes back as a value, after its ROLLBACK: thrown through the pool, an error
    /// the pool does not know would make it close a healthy connection.
    private func inTransaction(
        _ statements: [(statement: SQLStatement, expecting: WrittenRows)], rollback: Bool
    ) async throws -> Result<[StatementResult], TransactionStepFailure> {
        try await pool.withConnection(affinity: affinity) { connection in
            try await connection.query("BEGIN", logger: logger)
            var results: [StatementResult] = []
            for (index, step) in statements.enumerated() {
                do {
                    let result = try await run(step.statement, on: connection)
                    try step.expecting.check(result.count)
                    if result.violations > 0 {
                        throw RestError(
                            status: 403, code: "42501", message: "new row violates the policy check",
                            details: "\(result.violations) row(s) would be outside what the policy allows")
                    }
                    results.append(result)
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    let mapped = (error as? PSQLError).map { PostgresErrorMapping.restError($0, source: name) } ?? error
                    return .failure(TransactionStepFailure(index: index, error: mapped))
                }
            }
            do {
                try await connection.query(rollback ? "ROLLBACK" : "COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            return .success(results)
        }
    }

    /// Waits for one of the source's `maxConnections` slots, then (on shared connections) for one
    /// of the node's, at most the acquisition timeout in all; the caller calls `released()`.
    private func admitted() async throws {
        guard let nodeAdmission else {
            return try await gate.admit(source: name, waitingFor: "connection", within: settings.acquireTimeout)
        }
        let start = ContinuousClock.now
        try await gate.admit(source: name, waitingFor: "connection", within: settings.acquireTimeout)
        do {
            if !nodeAdmission.tryAcquire() {
                let left = settings.acquireTimeout - (ContinuousClock.now - start)
                try await nodeAdmission.admit(source: name, waitingFor: "connection on the node's hosted database", within: max(left, .milliseconds(1)))
            }
        } catch {
            gate.release()
            throw error
        }
    }

    private func released() {
        nodeAdmission?.release()
        gate.release()
    }

    /// The planner's estimate of the rows a statement (an `EXPLAIN (FORMAT JSON)`) would touch.
    public func estimate(_ statement: SQLStatement) async throws -> Int {
        try await admitted()
        defer { released() }
        do {
            return try await pool.withConnection(affinity: affinity) { connection in
                let rows = try await connection.query(statement.query, logger: logger)
                var estimate = 0
                for try await text in rows.decode(String.self) {
                    let plan = try JSONValue.parse(Array(text.utf8))
                    estimate = Int(plan.arrayValue?.first?["Plan"]?["Plan Rows"]?.doubleValue ?? 0)
                }
                return estimate
            }
        } catch let error as PSQLError {
            throw PostgresErrorMapping.restError(error, source: name)
        }
    }

    private func run(_ statement: SQLStatement, on connection: PostgresConnection) async throws -> StatementResult {
        guard TraceSwitch.enabled else { return try await runUntraced(statement, on: connection) }
        return try await StatementSpan.around(
            statement.sql, system: "postgresql", namespace: "\(url.database).\(schemas.first ?? "public")"
        ) {
            try await runUntraced(statement, on: connection)
        }
    }

    private func runUntraced(_ statement: SQLStatement, on connection: PostgresConnection) async throws -> StatementResult {
        let name = PreparedSQL.name(of: statement)
        let use = settings.preparedStatements && statement.reusable ? pool.use(name, on: connection) : nil
        guard let use, use != .failedBefore else {
            return try await Self.collect(try await connection.query(statement.query, logger: logger), statement)
        }
        do {
            return try await Self.collect(try await PreparedSQL.execute(statement, name: name, on: connection, logger: logger), statement)
        } catch let error as PSQLError where use == .first && error.serverInfo != nil {
            // postgres-nio keeps a failed preparation as failed for the connection's life — and a
            // first use may have failed preparing (a lock wait cut by statement_timeout, a model the
            // database no longer matches): this shape runs unnamed here from now on.
            pool.failed(name, on: connection)
            throw error
        }
    }

    private static func collect<Rows: AsyncSequence>(_ rows: Rows, _ statement: SQLStatement) async throws -> StatementResult
    where Rows.Element == PostgresRow {
        if statement.streaming {
            var body = "["
            var count = 0
            for try await cells in rows {
                let row = try cells.decode(String.self)
                if count > 0 { body += "," }
                body += row
                count += 1
            }
            return StatementResult(body: body + "]", count: count, total: nil)
        }
        if statement.publishes {
            for try await row in rows {
                let (body, count, total, violations, changes) = try row.decode((String?, Int64?, Int64?, Int64?, String?).self)
                return StatementResult(
                    body: body, count: Int(count ?? 0), total: total.map(Int.init), violations: Int(violations ?? 0), changes: changes)
            }
        }
        for try await row in rows {
            let (body, count, total, violations) = try row.decode((String?, Int64?, Int64?, Int64?).self)
            return StatementResult(body: body, count: Int(count ?? 0), total: total.map(Int.init), violations: Int(violations ?? 0))
        }
        return StatementResult(body: nil, count: 0, total: nil, violations: 0)
    }

    /// Connects once (so a wrong address or password fails at once, with its reason), checks the
    /// schemas exist, and reads the model.
    /// Connects once and runs `SELECT 1`: the database is there and takes these credentials.
    public static func ping(url: PostgresURL, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: logger)
        defer { Task { try? await connection.close() } }
        try await withTimeout(.seconds(10)) { _ = try await connection.query("SELECT 1", logger: logger) }
    }

    public static func introspect(url: PostgresURL, schemas: [String], logger: Logger) async throws -> SchemaModel {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 0, logger: logger)
        do {
            let introspector = PostgresIntrospector(schemas: schemas)
            let model = try await withTimeout(.seconds(60)) {
                let missing = try await introspector.missingSchemas(connection, logger: logger)
                guard missing.isEmpty else { throw SourceError.missingSchemas(missing) }
                return try await introspector.introspect(connection, logger: logger)
            }
            try? await connection.close()
            return model
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

public struct StatementResult: Sendable {
    public var body: String?
    public var count: Int
    public var total: Int?
    public var violations: Int = 0
    /// The written rows as a JSON array, when the statement `publishes`.
    public var changes: String?

    public init(body: String?, count: Int, total: Int?, violations: Int = 0, changes: String? = nil) {
        self.body = body
        self.count = count
        self.total = total
        self.violations = violations
        self.changes = changes
    }
}

/// What can go wrong registering a source, each with its own clear answer.
public enum SourceError: Error, Equatable, CustomStringConvertible {
    case missingSchemas([String])
    public var description: String {
        switch self {
        case .missingSchemas(let names): "schema(s) \(names.joined(separator: ", ")) do not exist in the database"
        }
    }
}
