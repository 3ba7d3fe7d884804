import Foundation
import Logging
import NIOCore
import NIOPosix
import Runtime
import SQLiteNIO
import Tenancy
import Tracing

/// A tenant's tables hosted in a SQLite database file of its own under the node's data
/// directory (an embedded node's default), or an existing SQLite file registered with
/// `kind: sqlite`. One writer connection takes writes one at a time from a bounded queue; a few
/// reader connections read beside it (WAL). A request's statements run on NIO's blocking thread
/// pool in one trip (`SQLiteHandle.perform`), never on an event loop, and stay prepared on their
/// connection for the next request of the same shape. Connections open on first use, so a damaged or locked file is an
/// error on this source's requests only, and close when the tenant's tree stops the source.
public final class SQLiteSource: Sendable {
    public struct Settings: Sendable {
        /// Readers are cheap (lazily opened, a page cache each) and a read waits mostly on hops
        /// between the event loop and the blocking pool: with 4 the pool idled and the node
        /// answered 9.5k primary-key reads a second, with 16 13.5k, with 32 no more (2 cores).
        public var readers = 16
        /// Writes waiting for the writer beyond this are refused (503) instead of queueing forever.
        public var maxQueuedWrites = 512
        public var busyTimeoutMs = 5_000
        public var acquireTimeout: Duration = .seconds(5)
        public init() {}
    }

    public let name: String
    public let kind: SourceKind
    public let path: String
    public let model: SchemaModel
    public let settings: Settings
    private let connections: SQLiteConnections
    private let writeGate: ConcurrencyLimiter
    private let readGate: ConcurrencyLimiter
    private let logger: Logger

    public init(name: String, kind: SourceKind, path: String, model: SchemaModel, settings: Settings = Settings(), logger: Logger) {
        self.name = name
        self.kind = kind
        self.path = path
        self.model = model
        self.settings = settings
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
        self.connections = SQLiteConnections(path: path, busyTimeoutMs: settings.busyTimeoutMs)
        self.writeGate = ConcurrencyLimiter(maxConcurrent: 1, maxQueued: settings.maxQueuedWrites)
        self.readGate = ConcurrencyLimiter(maxConcurrent: settings.readers, maxQueued: 10_000)
    }

    /// The source's life as a supervised child of the tenant's tree: nothing to do until
    /// cancelled, then every connection is closed.
    public func runPool() async {
        await untilCancelled()
        await close()
    }

    /// Connections open now (the writer and the readers), for tests.
    var openConnections: Int { connections.openCount }

    /// Closes the connections now (a source made for one job: provisioning, a migration).
    public func close() async {
        await connections.closeAll()
    }

    // MARK: - Statements

    public func read(_ plan: ReadPlan, count: Bool) async throws -> StatementResult {
        let query = try SQLiteRenderer().read(plan, count: count)
        return try await reading { connection in
            try await self.traced(query.sql) {
                try await connection.perform { session in
                    // The renderer's one row: body, page_count, total.
                    let row = try session.rows(query.sql, query.binds).first?.values
                    return StatementResult(
                        body: row?[0].string ?? "[]", count: Int(row?[1].integer ?? 0), total: row?[2].integer)
                }
            }
        }
    }

    /// A span per statement when the node exports traces (see `StatementSpan`).
    private func traced<Result>(_ sql: String, _ body: () async throws -> Result) async throws -> Result {
        guard TraceSwitch.enabled else { return try await body() }
        return try await StatementSpan.around(sql, system: "sqlite", namespace: name, body)
    }

    /// Exact: SQLite keeps no row estimates to answer `count=planned` from.
    public func estimate(_ plan: ReadPlan) async throws -> Int {
        let query = try SQLiteRenderer().count(plan)
        return try await reading { connection in
            Int(try await connection.query(query.sql, query.binds).first?.column("total")?.integer ?? 0)
        }
    }

    public func write(_ plan: WritePlan, returnRows: Bool, publishRows: Bool, rollback: Bool, expecting rows: WrittenRows) async throws -> StatementResult {
        let writer = SQLiteWriter(plan: plan, returnRows: returnRows, publishRows: publishRows, expecting: rows)
        // One span for the write's statements, named by what it does (never by its values).
        let operation: String
        switch plan.kind {
        case .insert: operation = "INSERT"
        case .update: operation = "UPDATE"
        case .delete: operation = "DELETE"
        }
        return try await writing { connection in
            try await self.traced("\(operation) \(plan.target.entity.name)") {
                try await connection.perform { try writer.run(on: $0, rollback: rollback) }
            }
        }
    }

    public func transaction(_ steps: [TransactionStep]) async throws -> [StatementResult] {
        let name = self.name
        return try await writing { connection in
            try await self.traced("TRANSACTION") {
                try await connection.perform { session in
                    try session.transaction {
                        var results: [StatementResult] = []
                        for (index, step) in steps.enumerated() {
                            do {
                                switch step {
                                case .write(let plan, let publishRows, let expecting):
                                    let writer = SQLiteWriter(plan: plan, returnRows: true, publishRows: publishRows, expecting: expecting)
                                    results.append(try writer.runInOpenTransaction(on: session))
                                case .call(let plan):
                                    throw Self.noFunction(plan)
                                }
                            } catch {
                                let mapped = (error as? SQLiteFailure).map { SQLiteErrorMapping.restError($0, source: name, entity: nil) } ?? error
                                throw TransactionStepFailure(index: index, error: mapped)
                            }
                        }
                        return results
                    }
                }
            }
        }
    }

    public func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) async throws -> [Bool] {
        let query = try SQLiteRenderer().decide(checks, rows: rows)
        return try await reading { connection in
            let text = try await connection.query(query.sql, query.binds).first?.column("body")?.string ?? "[]"
            return (try JSONValue.parse(Array(text.utf8)).arrayValue ?? []).map { $0.intValue == 1 || $0.boolValue == true }
        }
    }

    /// Runs DDL (provisioning, migrations) on the writer in one transaction.
    public func apply(_ statements: [String]) async throws {
        try await writing { connection in
            try await connection.perform { session in
                // The DDL itself through `execute`: one-off texts are not kept prepared.
                try session.transaction { for statement in statements { try session.execute(statement) } }
            }
        }
    }

    // MARK: - Connections

    private func reading<T: Sendable>(_ body: @Sendable (SQLiteHandle) async throws -> T) async throws -> T {
        try await readGate.admit(source: name, waitingFor: "reader", within: settings.acquireTimeout)
        defer { readGate.release() }
        let connection = try await opened { try await connections.takeReader() }
        do {
            let value = try await mapped { try await body(connection) }
            await connections.returnReader(connection)
            return value
        } catch {
            await connections.returnReader(connection)
            throw error
        }
    }

    private func writing<T: Sendable>(_ body: @escaping @Sendable (SQLiteHandle) async throws -> T) async throws -> T {
        try await writeGate.admit(source: name, waitingFor: "place in its write queue", within: settings.acquireTimeout)
        defer { writeGate.release() }
        let connection = try await opened { try await connections.writer() }
        // A write runs to its COMMIT or ROLLBACK even when its request goes away (`perform` runs
        // its closure to the end): cut short, it would leave the writer inside an open transaction.
        return try await mapped { try await body(connection) }
    }

    private func opened(_ body: () async throws -> SQLiteHandle) async throws -> SQLiteHandle {
        do {
            return try await body()
        } catch let error as SQLiteFailure {
            logger.error("cannot open the SQLite database", metadata: ["path": .string(path), "error": .string(error.message)])
            throw SQLiteErrorMapping.unavailable(error, source: name)
        }
    }

    private func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as SQLiteFailure {
            throw SQLiteErrorMapping.restError(error, source: name, entity: nil)
        }
    }
}

/// A source's open connections: one writer and the readers the source's read gate lets in,
/// opened on demand with the pragmas every one needs. A lock, not an actor: taking and returning an idle reader is on
/// every read and must not cost two hops of the request's task.
final class SQLiteConnections: @unchecked Sendable {
    let path: String
    let busyTimeoutMs: Int
    private let lock = Lock()
    private var writerConnection: SQLiteHandle?
    private var idleReaders: [SQLiteHandle] = []
    private var openReaders = 0
    private var fileInWALMode = false
    private var closed = false

    init(path: String, busyTimeoutMs: Int) {
        self.path = path
        self.busyTimeoutMs = busyTimeoutMs
    }

    func writer() async throws -> SQLiteHandle {
        if let existing = lock.withLock({ writerConnection }) { return existing }
        let connection = try await open(writer: true)
        let raced = lock.withLock { () -> SQLiteHandle? in
            if let writerConnection { return writerConnection }
            writerConnection = connection
            return nil
        }
        if let raced {
            await connection.close()
            return raced
        }
        return connection
    }

    func takeReader() async throws -> SQLiteHandle {
        if let idle = lock.withLock({ idleReaders.popLast() }) { return idle }
        // The writer makes the file (and its WAL mode) before any reader opens it — unless the
        // file is in WAL mode already: then a tenant that only reads opens no writer, whose
        // parsed schema costs as much as a reader's (~270 KB with 100 tables).
        if lock.withLock({ writerConnection == nil && !fileInWALMode }) {
            let path = path
            if (try? await offloaded { Self.isInWALMode(path) }) == true {
                lock.withLock { fileInWALMode = true }
            } else {
                _ = try await writer()
            }
        }
        let reader = try await open(writer: false)
        lock.withLock { openReaders += 1 }
        return reader
    }

    /// Whether the file at `path` is a database in WAL mode: its header's write and read format
    /// versions (bytes 18 and 19) are 2, which `journal_mode = WAL` writes and keeps. Read before
    /// the first reader opens (20 bytes of a local file, off the event loops).
    static func isInWALMode(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let header = try? handle.read(upToCount: 20), header.count == 20 else { return false }
        return header[header.startIndex + 18] == 2 && header[header.startIndex + 19] == 2
    }

    /// Connections open now: the writer (if opened) and the readers.
    var openCount: Int { lock.withLock { openReaders + (writerConnection == nil ? 0 : 1) } }

    func returnReader(_ connection: SQLiteHandle) async {
        let kept = lock.withLock { () -> Bool in
            guard !closed, !connection.isClosed else {
                openReaders -= 1
                return false
            }
            idleReaders.append(connection)
            return true
        }
        if !kept { await connection.close() }
    }

    func closeAll() async {
        let open = lock.withLock { () -> [SQLiteHandle] in
            closed = true
            openReaders -= idleReaders.count
            defer { idleReaders = []; writerConnection = nil }
            return idleReaders + (writerConnection.map { [$0] } ?? [])
        }
        for connection in open { await connection.close() }
    }

    private func open(writer: Bool) async throws -> SQLiteHandle {
        // A busy timeout, so a locked file answers an error instead of hanging the request.
        let connection = try await SQLiteHandle.open(path: path, busyTimeoutMs: busyTimeoutMs, lean: true)
        do {
            try await connection.perform { session in
                if writer {
                    try session.execute("PRAGMA journal_mode = WAL")
                    // With WAL, NORMAL survives a crash of the process (kill -9): a commit is in
                    // the log before it is acknowledged. Only a power loss may lose the last commits.
                    try session.execute("PRAGMA synchronous = NORMAL")
                    try session.execute("PRAGMA foreign_keys = ON")
                } else {
                    try session.execute("PRAGMA query_only = ON")
                }
                // A file that is not a database fails here, at once, with its reason.
                try session.execute("SELECT count(*) FROM sqlite_schema")
                // The schema is parsed now; its pages (~40 KB with 100 tables) need not stay.
                session.releaseCachedPages()
            }
            return connection
        } catch {
            await connection.close()
            throw error
        }
    }
}

/// SQLite's errors as PostgREST's clients expect them: the SQLSTATE PostgreSQL would give for
/// the same violation, with its status.
enum SQLiteErrorMapping {
    static func restError(_ error: SQLiteFailure, source: String, entity: String?) -> RestError {
        let message = error.message
        if error.isUniqueViolation {
            return RestError(status: 409, code: "23505", message: "duplicate key value violates unique constraint", details: message)
        }
        if error.isForeignKeyViolation {
            return RestError(status: 409, code: "23503", message: "insert or update violates a foreign key constraint", details: message)
        }
        if error.isNotNullViolation {
            return RestError(status: 400, code: "23502", message: "null value violates not-null constraint", details: message)
        }
        if error.isCheckViolation {
            return RestError(status: 400, code: "23514", message: "new row violates check constraint", details: message)
        }
        if error.isConstraintViolation {
            return RestError(status: 409, code: "23000", message: "the write violates a constraint", details: message)
        }
        if error.isBusy {
            return RestError(status: 503, code: "MB603", message: "source '\(source)' is locked by another writer", details: message, hint: "retry shortly")
        }
        if error.isUnusableFile { return unavailable(error, source: source) }
        return RestError(status: 500, code: "MB605", message: "the SQLite database of source '\(source)' failed a statement", details: message)
    }

    static func unavailable(_ error: SQLiteFailure, source: String) -> RestError {
        RestError(status: 503, code: "MB604", message: "the SQLite database of source '\(source)' cannot be used", details: error.message)
    }
}
