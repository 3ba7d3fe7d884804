import CSQLiteMemory
import NIOCore
import NIOPosix
import SQLiteNIO
import VaporCSQLite

/// One SQLite connection driven through SQLite's C API (the copy sqlite-nio builds), for the hot
/// paths sqlite-nio makes slow: it prepares every statement anew and takes one trip to its thread
/// pool per statement. Here a connection keeps its prepared statements (keyed by their text: the
/// renderers put every value in a bind, so a request shape always gives the same text), and
/// `perform` runs a whole unit of work — a read, or BEGIN … COMMIT with every statement between —
/// in one trip to the blocking pool.
///
/// A handle is used by one caller at a time (its pool or gate hands it out exclusively); SQLite
/// itself is opened without its own mutex for that reason.
public final class SQLiteHandle: @unchecked Sendable {
    /// How many prepared statements a connection keeps; the least recently used go beyond it.
    public static let cachedStatements = 64

    private var database: OpaquePointer?
    /// Held by the unit of work running now and by `close`: a source's tree may close a
    /// connection (the tree restarts) while a write is still running on it, and SQLite, opened
    /// without its own mutex, must not be closed under a running statement. Uncontended otherwise:
    /// one caller at a time already.
    private let running = Lock()
    private let pool: NIOThreadPool
    private var statements: [String: SQLiteSession.Prepared] = [:]
    private var recency: [String] = []

    private init(database: OpaquePointer, pool: NIOThreadPool) {
        self.database = database
        self.pool = pool
    }

    deinit {
        // Only a handle nobody closed gets here; no caller can still be using it.
        if let database { Self.finalize(statements.values.map(\.statement), database) }
    }

    /// Opens (creating if missing) the database at `path` (`:memory:` for a private in-memory
    /// database), with SQLite's busy timeout set so a locked file answers an error, not a hang.
    /// `lean` gives the connection no lookaside buffer: for the many small per-tenant files, whose
    /// statements stay prepared (lookaside mostly speeds up preparing), ~50 KB less each.
    public static func open(path: String, busyTimeoutMs: Int = 5_000, lean: Bool = false, pool: NIOThreadPool = .singleton) async throws -> SQLiteHandle {
        try await hop(pool) {
            _ = initialized
            var database: OpaquePointer?
            let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
            let opened = sqlite_nio_sqlite3_open_v2(path, &database, flags, nil)
            guard opened == SQLITE_OK, let database else {
                let failure = SQLiteFailure(code: opened, message: database.map(SQLiteFailure.message) ?? "cannot open the database")
                sqlite_nio_sqlite3_close_v2(database)
                throw failure
            }
            sqlite_nio_sqlite3_busy_timeout(database, Int32(clamping: busyTimeoutMs))
            if lean { _ = sqlite_memory_set_lookaside(UnsafeMutableRawPointer(database), 0, 0) }
            return SQLiteHandle(database: database, pool: pool)
        }
    }

    /// SQLite's one-time global set-up, before the first connection opens on any thread. A
    /// connection's page cache starts empty instead of with a bulk of ~20 pages (~85 KB): a node
    /// holds a connection per active tenant, most of which read a few pages.
    private static let initialized: Void = {
        _ = sqlite_memory_no_initial_page_bulk()
        sqlite_nio_sqlite3_initialize()
    }()

    public var isClosed: Bool { database == nil }

    /// Statements kept prepared now (for tests; read it while the handle is idle).
    var preparedStatements: Int { running.withLock { statements.count } }

    /// Whether `sql` is kept prepared now (for tests).
    func isPrepared(_ sql: String) -> Bool { running.withLock { statements[sql] != nil } }

    /// Runs `body` with the connection on the blocking pool: one trip, whatever it does. It runs
    /// to its end even if the calling task is cancelled (a transaction must reach its COMMIT or
    /// ROLLBACK).
    public func perform<T: Sendable>(_ body: @escaping @Sendable (SQLiteSession) throws -> T) async throws -> T {
        try await Self.hop(pool) { [self] in
            try running.withLock {
                guard let database else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
                return try body(SQLiteSession(handle: self, database: database))
            }
        }
    }

    /// One statement's rows (a convenience: one trip per statement).
    public func query(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteResultRow] {
        try await perform { try $0.rows(sql, binds) }
    }

    /// Finalizes the kept statements and closes the connection; later calls fail with MISUSE.
    public func close() async {
        _ = try? await Self.hop(pool) { [self] in
            running.withLock {
                guard let database else { return }
                Self.finalize(statements.values.map(\.statement), database)
                statements = [:]
                recency = []
                self.database = nil
            }
        }
    }

    private static func finalize(_ statements: [OpaquePointer], _ database: OpaquePointer) {
        for statement in statements { sqlite_nio_sqlite3_finalize(statement) }
        sqlite_nio_sqlite3_close_v2(database)
    }

    private static func hop<T: Sendable>(_ pool: NIOThreadPool, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            pool.submit { state in
                guard case .active = state else {
                    continuation.resume(throwing: SQLiteFailure(code: SQLITE_MISUSE, message: "the blocking thread pool has stopped"))
                    return
                }
                continuation.resume(with: Result { try body() })
            }
        }
    }

    // MARK: - The statement cache (touched only inside `perform`, by one caller at a time)

    fileprivate func cached(_ sql: String) -> SQLiteSession.Prepared? {
        guard let found = statements[sql] else { return nil }
        if recency.last != sql, let index = recency.lastIndex(of: sql) {
            recency.remove(at: index)
            recency.append(sql)
        }
        return found
    }

    fileprivate func keep(_ sql: String, _ prepared: SQLiteSession.Prepared) {
        // The least recently used goes — never one being stepped now (by a caller of `each`
        // whose row handler runs other statements).
        if statements.count >= Self.cachedStatements,
           let index = recency.firstIndex(where: { statements[$0]?.inUse != true }) {
            let oldest = recency.remove(at: index)
            if let evicted = statements.removeValue(forKey: oldest) { sqlite_nio_sqlite3_finalize(evicted.statement) }
        }
        statements[sql] = prepared
        recency.append(sql)
    }
}

/// The connection inside one `SQLiteHandle.perform`: statements run synchronously on the
/// calling (blocking-pool) thread. Not to be kept beyond the closure.
public struct SQLiteSession {
    fileprivate final class Prepared {
        let statement: OpaquePointer
        var names: SQLiteColumnNames
        /// SQLite's count of this statement's re-preparations (after schema changes) when
        /// `names` was read: a column renamed under `*` keeps the count and changes the name.
        var preparations: Int32
        /// Being stepped now: not to be evicted, and not to be reset under its stepper by a
        /// nested use of the same text (which gets a statement of its own).
        var inUse = false
        init(statement: OpaquePointer) {
            self.statement = statement
            self.names = SQLiteColumnNames.of(statement)
            self.preparations = Self.preparations(of: statement)
        }

        static func preparations(of statement: OpaquePointer) -> Int32 {
            sqlite_nio_sqlite3_stmt_status(statement, SQLITE_STMTSTATUS_REPREPARE, 0)
        }
    }

    fileprivate let handle: SQLiteHandle
    fileprivate let database: OpaquePointer

    /// `body` in one write transaction: BEGIN IMMEDIATE, then COMMIT — or ROLLBACK when `rollback`
    /// asks for it or `body` throws (the error is rethrown). Through `rows`, so even BEGIN and
    /// COMMIT stay prepared.
    public func transaction<T>(rollback: Bool = false, _ body: () throws -> T) throws -> T {
        try rows("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try rows(rollback ? "ROLLBACK" : "COMMIT")
            return result
        } catch {
            _ = try? rows("ROLLBACK")
            throw error
        }
    }

    /// Runs one statement (prepared once per connection and kept) and returns its rows.
    @discardableResult
    public func rows(_ sql: String, _ binds: [SQLiteData] = []) throws -> [SQLiteResultRow] {
        var result: [SQLiteResultRow] = []
        try each(sql, binds) { result.append($0) }
        return result
    }

    /// Runs one statement, handing each row to `body` as it is stepped.
    public func each(_ sql: String, _ binds: [SQLiteData] = [], _ body: (SQLiteResultRow) throws -> Void) throws {
        var prepared = try prepare(sql)
        var kept = true
        if prepared.inUse {
            prepared = try compile(sql)
            kept = false
        }
        let statement = prepared.statement
        prepared.inUse = true
        defer {
            prepared.inUse = false
            if kept {
                sqlite_nio_sqlite3_reset(statement)
                sqlite_nio_sqlite3_clear_bindings(statement)
            } else {
                sqlite_nio_sqlite3_finalize(statement)
            }
        }
        try bind(binds, to: statement)
        while true {
            let stepped = sqlite_nio_sqlite3_step(statement)
            if stepped == SQLITE_DONE { return }
            guard stepped == SQLITE_ROW else { throw failure(stepped) }
            // SQLite prepares a kept statement again after a schema change: `*` may now name
            // other columns.
            let preparations = Prepared.preparations(of: statement)
            if preparations != prepared.preparations {
                prepared.names = SQLiteColumnNames.of(statement)
                prepared.preparations = preparations
            }
            let count = prepared.names.count
            var values: [SQLiteData] = []
            values.reserveCapacity(count)
            for column in 0..<Int32(count) { values.append(value(statement, column)) }
            try body(SQLiteResultRow(names: prepared.names, values: values))
        }
    }

    /// Runs statements that answer no rows (DDL, PRAGMA, BEGIN …) without keeping them prepared.
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite_nio_sqlite3_exec(database, sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? SQLiteFailure.message(database)
            sqlite_nio_sqlite3_free(message)
            throw SQLiteFailure(code: sqlite_nio_sqlite3_extended_errcode(database), message: text)
        }
    }

    /// Frees the page cache's unused pages (those of no running statement), e.g. the schema's
    /// pages once a new connection has parsed it: they are read again only if the schema changes.
    public func releaseCachedPages() {
        _ = sqlite_nio_sqlite3_db_release_memory(database)
    }

    /// Allocations the connection's lookaside has served so far (for tests: none on a lean one).
    var lookasideHits: Int { status(SQLITE_DBSTATUS_LOOKASIDE_HIT).highest }

    /// Bytes the page cache holds now (for tests).
    var pageCacheBytes: Int { status(SQLITE_DBSTATUS_CACHE_USED).current }

    private func status(_ option: Int32) -> (current: Int, highest: Int) {
        var current: Int32 = 0
        var highest: Int32 = 0
        _ = sqlite_nio_sqlite3_db_status(database, option, &current, &highest, 0)
        return (Int(current), Int(highest))
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite_nio_sqlite3_changes64(database)) }

    private func prepare(_ sql: String) throws -> Prepared {
        if let found = handle.cached(sql) { return found }
        let prepared = try compile(sql)
        handle.keep(sql, prepared)
        return prepared
    }

    private func compile(_ sql: String) throws -> Prepared {
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        var trailing = false
        let code = sql.withCString { text in
            let code = sqlite_nio_sqlite3_prepare_v3(database, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            // One statement per call: text after it would otherwise be dropped without a word.
            if code == SQLITE_OK, let tail, tail.pointee != 0 {
                trailing = !String(cString: tail).allSatisfy { $0.isWhitespace || $0 == ";" }
            }
            return code
        }
        guard code == SQLITE_OK else { throw failure(code) }
        guard let statement else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "no statement in the text") }
        guard !trailing else {
            sqlite_nio_sqlite3_finalize(statement)
            throw SQLiteFailure(code: SQLITE_MISUSE, message: "one statement per call: \(sql.prefix(80))")
        }
        return Prepared(statement: statement)
    }

    private func bind(_ binds: [SQLiteData], to statement: OpaquePointer) throws {
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .integer(let integer): code = sqlite_nio_sqlite3_bind_int64(statement, index, Int64(integer))
            case .float(let double): code = sqlite_nio_sqlite3_bind_double(statement, index, double)
            case .null: code = sqlite_nio_sqlite3_bind_null(statement, index)
            case .text(let text):
                code = sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
            case .blob(let buffer):
                code = buffer.withUnsafeReadableBytes { bytes in
                    sqlite_nio_sqlite3_bind_blob64(statement, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), UInt64(bytes.count), Self.transient)
                }
            }
            guard code == SQLITE_OK else { throw failure(code) }
        }
    }

    private func value(_ statement: OpaquePointer, _ column: Int32) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, column)))
        case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            guard let text = sqlite_nio_sqlite3_column_text(statement, column) else { return .text("") }
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if count > 0, let bytes = sqlite_nio_sqlite3_column_blob(statement, column) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return .blob(buffer)
        default: return .null
        }
    }

    private func failure(_ code: Int32) -> SQLiteFailure {
        // The connection's extended code says which constraint failed; `code` may be the primary one.
        let extended = sqlite_nio_sqlite3_extended_errcode(database)
        return SQLiteFailure(code: extended & 0xff == code & 0xff ? extended : code, message: SQLiteFailure.message(database))
    }

    /// SQLITE_TRANSIENT: SQLite copies a bound value before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// A statement's column names, shared by its rows.
public final class SQLiteColumnNames: Sendable {
    public let names: [String]
    var count: Int { names.count }
    init(_ names: [String]) { self.names = names }

    static func of(_ statement: OpaquePointer) -> SQLiteColumnNames {
        SQLiteColumnNames((0..<sqlite_nio_sqlite3_column_count(statement)).map { column in
            sqlite_nio_sqlite3_column_name(statement, column).map { String(cString: $0) } ?? ""
        })
    }

    func index(of name: String) -> Int? { names.firstIndex(of: name) }
}

/// One row of a statement's answer.
public struct SQLiteResultRow: Sendable {
    public let names: SQLiteColumnNames
    public let values: [SQLiteData]

    /// The value of the first column called `name` (nil when there is none).
    public func column(_ name: String) -> SQLiteData? {
        names.index(of: name).map { values[$0] }
    }
}

/// A failed SQLite call: its extended result code and SQLite's message.
public struct SQLiteFailure: Error, CustomStringConvertible, Sendable {
    /// SQLite's extended result code (its low byte is the primary code).
    public let code: Int32
    public let message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public var primary: Int32 { code & 0xff }

    public var isUniqueViolation: Bool { [SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_ROWID].contains(code) }
    public var isForeignKeyViolation: Bool { code == SQLITE_CONSTRAINT_FOREIGNKEY }
    public var isNotNullViolation: Bool { code == SQLITE_CONSTRAINT_NOTNULL }
    public var isCheckViolation: Bool { code == SQLITE_CONSTRAINT_CHECK }
    public var isConstraintViolation: Bool { primary == SQLITE_CONSTRAINT }
    /// Another connection holds the lock past the busy timeout.
    public var isBusy: Bool { primary == SQLITE_BUSY || primary == SQLITE_LOCKED }
    /// The file cannot serve at all: damaged, not a database, unreadable, full or read-only.
    public var isUnusableFile: Bool {
        [SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY].contains(primary)
    }

    static func message(_ database: OpaquePointer) -> String {
        sqlite_nio_sqlite3_errmsg(database).map { String(cString: $0) } ?? "SQLite error"
    }
}

// Extended codes ClangImporter does not import (macros over macros).
private let SQLITE_CONSTRAINT_CHECK = Int32(SQLITE_CONSTRAINT) | (1 << 8)
private let SQLITE_CONSTRAINT_FOREIGNKEY = Int32(SQLITE_CONSTRAINT) | (3 << 8)
private let SQLITE_CONSTRAINT_NOTNULL = Int32(SQLITE_CONSTRAINT) | (5 << 8)
private let SQLITE_CONSTRAINT_PRIMARYKEY = Int32(SQLITE_CONSTRAINT) | (6 << 8)
private let SQLITE_CONSTRAINT_UNIQUE = Int32(SQLITE_CONSTRAINT) | (8 << 8)
private let SQLITE_CONSTRAINT_ROWID = Int32(SQLITE_CONSTRAINT) | (10 << 8)
