import Foundation
import NIOCore
import SQLiteNIO
import XCTest

@testable import Runtime

/// SQLite through its C API: values round-trip through binds, statements stay prepared per
/// connection (and follow schema changes), failures carry SQLite's extended codes, and misuse is
/// an error rather than a crash.
final class SQLiteHandleTests: XCTestCase {
    var directory: URL!

    override func setUp() {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-handle-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    func testValuesRoundTripThroughBinds() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        let blob = ByteBuffer(bytes: [0, 1, 2, 255])
        let row = try await handle.query(
            "SELECT ?1 AS i, ?2 AS f, ?3 AS t, ?4 AS b, ?5 AS n, length(?3) AS chars",
            [.integer(-42), .float(2.5), .text("héllo ✓"), .blob(blob), .null]
        ).first
        XCTAssertEqual(row?.column("i"), .integer(-42))
        XCTAssertEqual(row?.column("f"), .float(2.5))
        XCTAssertEqual(row?.column("t"), .text("héllo ✓"))
        XCTAssertEqual(row?.column("b"), .blob(blob))
        XCTAssertEqual(row?.column("n"), .null)
        XCTAssertEqual(row?.column("chars"), .integer(7), "text is bound as UTF-8 with its exact length")
        XCTAssertNil(row?.column("missing"))
        let edges = try await handle.query(
            "SELECT ?1 AS t, ?2 AS b, length(?2) AS n, ?3 AS z", [.text(""), .blob(ByteBuffer()), .text("a\u{0}b")]
        ).first
        XCTAssertEqual(edges?.column("t"), .text(""), "empty text stays text")
        XCTAssertEqual(edges?.column("n"), .integer(0))
        XCTAssertEqual(edges?.column("z"), .text("a\u{0}b"), "a NUL inside text is kept")
        await handle.close()
    }

    func testStatementsArePreparedOnceAndTheCacheIsBounded() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        try await handle.perform { try $0.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)") }
        for id in 1...5 { _ = try await handle.query("INSERT INTO t (id, name) VALUES (?1, ?2)", [.integer(id), .text("n\(id)")]) }
        XCTAssertEqual(handle.preparedStatements, 1, "one text, one prepared statement, whatever the values")
        let names = try await handle.query("SELECT name FROM t WHERE id >= ?1 ORDER BY id", [.integer(4)]).compactMap { $0.column("name")?.string }
        XCTAssertEqual(names, ["n4", "n5"], "a kept statement is reset and its binds cleared between uses")
        let hot = "SELECT name FROM t WHERE id >= ?1 ORDER BY id"
        for n in 0..<(SQLiteHandle.cachedStatements + 10) {
            _ = try await handle.query("SELECT \(n) AS n")
            _ = try await handle.query(hot, [.integer(n)])
        }
        XCTAssertEqual(handle.preparedStatements, SQLiteHandle.cachedStatements)
        XCTAssertTrue(handle.isPrepared(hot), "the least recently used go, not the oldest")
        XCTAssertFalse(handle.isPrepared("SELECT 0 AS n"))
        await handle.close()
    }

    func testALeanConnectionKeepsNoLookasideAndGivesBackItsSchemaPages() async throws {
        let path = directory.appendingPathComponent("wide.sqlite").path
        let maker = try await SQLiteHandle.open(path: path)
        try await maker.perform { session in
            for table in 0..<60 { try session.execute("CREATE TABLE t\(table) (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT)") }
        }
        await maker.close()
        let standard = try await SQLiteHandle.open(path: path)
        let lean = try await SQLiteHandle.open(path: path, lean: true)
        for handle in [standard, lean] { _ = try await handle.query("SELECT id, name FROM t59 WHERE id > ?1", [.integer(0)]) }
        let standardHits = try await standard.perform { $0.lookasideHits }
        let leanHits = try await lean.perform { $0.lookasideHits }
        XCTAssertGreaterThan(standardHits, 0, "the control: preparing a statement uses lookaside")
        XCTAssertEqual(leanHits, 0, "a lean connection has no lookaside buffer")
        let (before, after) = try await lean.perform { session in
            _ = try session.rows("SELECT count(*) AS n FROM sqlite_schema", [])
            let before = session.pageCacheBytes
            session.releaseCachedPages()
            return (before, session.pageCacheBytes)
        }
        XCTAssertGreaterThan(before, 0)
        XCTAssertLessThan(after, before, "the schema's pages are handed back")
        let rows = try await lean.query("SELECT count(*) AS n FROM sqlite_schema")
        XCTAssertEqual(rows.first?.column("n"), .integer(60), "and read again when needed")
        await standard.close()
        await lean.close()
    }

    func testStatementsRunFromARowHandlerLeaveTheOuterOneAlone() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        let pairs = try await handle.perform { session -> [String] in
            try session.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            for id in 1...3 { try session.rows("INSERT INTO t VALUES (?1)", [.integer(id)]) }
            var seen: [String] = []
            try session.each("SELECT id FROM t ORDER BY id") { outer in
                // The same text again (its own statement), then enough others to fill the cache.
                let inner = try session.rows("SELECT id FROM t ORDER BY id").count
                for n in 0..<(SQLiteHandle.cachedStatements + 2) { try session.rows("SELECT \(n)") }
                seen.append("\(outer.column("id")?.integer ?? -1):\(inner)")
            }
            return seen
        }
        XCTAssertEqual(pairs, ["1:3", "2:3", "3:3"], "the outer statement kept stepping through nested use and evictions")
        await handle.close()
    }

    func testAKeptStatementFollowsASchemaChange() async throws {
        let handle = try await SQLiteHandle.open(path: directory.appendingPathComponent("a.sqlite").path)
        try await handle.perform { try $0.execute("CREATE TABLE t (a INTEGER)") }
        _ = try await handle.query("INSERT INTO t VALUES (1)")
        let before = try await handle.query("SELECT * FROM t").first
        XCTAssertEqual(before?.names.names, ["a"])
        try await handle.perform { try $0.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'") }
        let row = try await handle.query("SELECT * FROM t").first
        XCTAssertEqual(row?.names.names, ["a", "b"])
        XCTAssertEqual(row?.column("b"), .text("x"))
        // Same count of columns, another name: the kept statement's names follow too.
        try await handle.perform { try $0.execute("ALTER TABLE t RENAME COLUMN b TO c") }
        let renamed = try await handle.query("SELECT * FROM t").first
        XCTAssertEqual(renamed?.names.names, ["a", "c"])
        XCTAssertNil(renamed?.column("b"))
        await handle.close()
    }

    func testFailuresCarrySQLitesExtendedCodes() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        try await handle.perform { session in
            try session.execute("PRAGMA foreign_keys = ON")
            try session.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
            try session.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id), v INTEGER NOT NULL CHECK (v > 0), u TEXT UNIQUE)")
            try session.execute("INSERT INTO p VALUES (1)")
            try session.execute("INSERT INTO c VALUES (1, 1, 1, 'a')")
        }
        func failure(_ sql: String) async -> SQLiteFailure? {
            do {
                _ = try await handle.query(sql)
                return nil
            } catch {
                return error as? SQLiteFailure
            }
        }
        let unique = await failure("INSERT INTO c VALUES (2, 1, 1, 'a')")
        XCTAssertEqual(unique?.isUniqueViolation, true, "\(String(describing: unique))")
        let primaryKey = await failure("INSERT INTO c VALUES (1, 1, 1, 'b')")
        XCTAssertEqual(primaryKey?.isUniqueViolation, true, "primary key")
        let foreignKey = await failure("INSERT INTO c VALUES (3, 9, 1, 'c')")
        XCTAssertEqual(foreignKey?.isForeignKeyViolation, true)
        let notNull = await failure("INSERT INTO c VALUES (4, 1, NULL, 'd')")
        XCTAssertEqual(notNull?.isNotNullViolation, true)
        let check = await failure("INSERT INTO c VALUES (5, 1, 0, 'e')")
        XCTAssertEqual(check?.isCheckViolation, true)
        let syntax = await failure("SELEKT 1")
        XCTAssertEqual(syntax?.isConstraintViolation, false)
        XCTAssertTrue(syntax?.message.contains("syntax error") == true, "\(String(describing: syntax))")
        await handle.close()
    }

    func testOneStatementPerCallAndNothingOfARefusedTextRuns() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        try await handle.perform { try $0.execute("CREATE TABLE t (a INTEGER)") }
        do {
            _ = try await handle.query("INSERT INTO t VALUES (1); DROP TABLE t")
            XCTFail("two statements in one text were accepted")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.message.contains("one statement"), failure.message)
        }
        let none = try await handle.query("SELECT count(*) AS n FROM t").first?.column("n")
        XCTAssertEqual(none, .integer(0))
        _ = try await handle.query("INSERT INTO t VALUES (2);  ")
        let one = try await handle.query("SELECT count(*) AS n FROM t").first?.column("n")
        XCTAssertEqual(one, .integer(1), "a trailing ';' is fine")
        do {
            _ = try await handle.query("  ;")
            XCTFail("a text without a statement ran")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.message.contains("no statement"), failure.message)
        }
        await handle.close()
    }

    func testAFailedUnitOfWorkRollsBackAsAWhole() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        try await handle.perform { try $0.execute("CREATE TABLE t (a INTEGER UNIQUE)") }
        do {
            try await handle.perform { session in
                try session.execute("BEGIN IMMEDIATE")
                do {
                    try session.rows("INSERT INTO t VALUES (?1)", [.integer(1)])
                    try session.rows("INSERT INTO t VALUES (?1)", [.integer(1)])
                    try session.execute("COMMIT")
                } catch {
                    try? session.execute("ROLLBACK")
                    throw error
                }
            }
            XCTFail("the duplicate was accepted")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.isUniqueViolation)
        }
        let rows = try await handle.query("SELECT count(*) AS n FROM t").first?.column("n")
        XCTAssertEqual(rows, .integer(0))
        await handle.close()
    }

    func testALockedFileAnswersBusyWithinItsTimeout() async throws {
        let path = directory.appendingPathComponent("b.sqlite").path
        let first = try await SQLiteHandle.open(path: path)
        let second = try await SQLiteHandle.open(path: path, busyTimeoutMs: 50)
        try await first.perform { session in
            try session.execute("PRAGMA journal_mode = WAL")
            try session.execute("CREATE TABLE t (a INTEGER)")
            try session.execute("BEGIN IMMEDIATE")
        }
        let started = Date()
        do {
            try await second.perform { try $0.execute("BEGIN IMMEDIATE") }
            XCTFail("a second writer began while the first held the lock")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.isBusy, failure.message)
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.04, "it waited for the lock about as long as its timeout")
        XCTAssertLessThan(waited, 3, "the busy timeout bounds the wait")
        try await first.perform { try $0.execute("COMMIT") }
        await first.close()
        await second.close()
    }

    func testClosingWaitsForTheUnitOfWorkRunningNow() async throws {
        let handle = try await SQLiteHandle.open(path: directory.appendingPathComponent("c.sqlite").path)
        try await handle.perform { try $0.execute("CREATE TABLE t (a INTEGER)") }
        let started = Date()
        async let written: Int = handle.perform { session in
            try session.rows("BEGIN IMMEDIATE")
            try session.rows("INSERT INTO t VALUES (1)")
            usleep(200_000)
            try session.rows("INSERT INTO t VALUES (2)")
            try session.rows("COMMIT")
            return 2
        }
        try await Task.sleep(for: .milliseconds(50))
        await handle.close()
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.2, "close waited for the transaction")
        let count = try await written
        XCTAssertEqual(count, 2, "the transaction ran to its COMMIT")
        XCTAssertTrue(handle.isClosed)
        let reopened = try await SQLiteHandle.open(path: directory.appendingPathComponent("c.sqlite").path)
        let rows = try await reopened.query("SELECT count(*) AS n FROM t").first?.column("n")
        XCTAssertEqual(rows, .integer(2))
        await reopened.close()
    }

    func testAClosedHandleAnswersAnError() async throws {
        let handle = try await SQLiteHandle.open(path: ":memory:")
        await handle.close()
        XCTAssertTrue(handle.isClosed)
        do {
            _ = try await handle.query("SELECT 1")
            XCTFail("a closed handle ran a statement")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.message.contains("closed"), failure.message)
        }
        await handle.close()
    }

    func testAFileThatIsNotADatabaseFailsAsUnusable() async throws {
        let path = directory.appendingPathComponent("junk.sqlite").path
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        let handle = try await SQLiteHandle.open(path: path)
        do {
            _ = try await handle.query("SELECT count(*) FROM sqlite_schema")
            XCTFail("a file of junk was read as a database")
        } catch let failure as SQLiteFailure {
            XCTAssertTrue(failure.isUnusableFile, "\(failure.code) \(failure.message)")
        }
        await handle.close()
    }
}
