import Foundation
import Logging
import PostgresNIO
import Tenancy
import TestSupport
import XCTest
@testable import Connectors

/// The sources' own connection pool against the suite's PostgreSQL: reuse, a connection the
/// server ended, and a cancelled statement.
final class SourceConnectionPoolTests: XCTestCase {
    private func backendPID(_ pool: SourceConnectionPool) async throws -> Int32 {
        try await pool.withConnection { connection in
            var pid: Int32 = 0
            for try await value in try await connection.query("select pg_backend_pid()", logger: Logger(label: "test")).decode(Int32.self) {
                pid = value
            }
            return pid
        }
    }

    func testReuseDeadConnectionsAndCancellation() async throws {
        let url = try PostgresURL(try TestServices.postgresURL())
        let pool = SourceConnectionPool(logger: Logger(label: "test.pool")) { try url.connectionConfiguration() }
        let sweeper = Task { await pool.run() }
        defer { sweeper.cancel() }

        let first = try await backendPID(pool)
        let second = try await backendPID(pool)
        XCTAssertEqual(first, second, "an idle connection is reused")

        // The server ends the connection while it sits idle: the pool gets over it by itself.
        try await TestServices.withClient(url) { client in
            _ = try await client.query("select pg_terminate_backend(\(first))")
        }
        var answered: Int32?
        for _ in 0..<3 where answered == nil {
            answered = try? await backendPID(pool)
            if answered == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertNotNil(answered)
        XCTAssertNotEqual(answered, first, "a fresh connection replaced the ended one")

        // A caller cancelled mid-statement is freed at once (the connection is closed, not kept
        // busy), and the next caller gets a working connection.
        let started = ContinuousClock.now
        let slow = Task {
            try await pool.withConnection { connection in
                for try await _ in try await connection.query("select pg_sleep(10)", logger: Logger(label: "test")) {}
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        slow.cancel()
        _ = try? await slow.value
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5), "cancellation does not wait for the statement")
        let after = try await backendPID(pool)
        XCTAssertNotEqual(after, answered, "the cancelled statement's connection was not reused")
    }

    func testPreparedStatementsAreCountedPerConnectionAndFailedFirstUsesRemembered() async throws {
        let url = try PostgresURL(try TestServices.postgresURL())
        let pool = SourceConnectionPool(maxPrepared: 2, logger: Logger(label: "test.pool")) { try url.connectionConfiguration() }
        let sweeper = Task { await pool.run() }
        defer { sweeper.cancel() }
        let first = try await backendPID(pool)
        let uses = try await pool.withConnection { connection -> [SourceConnectionPool.PreparedUse] in
            let a1 = pool.use("a", on: connection)
            let b1 = pool.use("b", on: connection)
            pool.failed("b", on: connection)
            let b2 = pool.use("b", on: connection)
            let b3 = pool.use("b", on: connection)
            let a2 = pool.use("a", on: connection)
            return [a1, b1, b2, b3, a2]
        }
        XCTAssertEqual(uses, [.first, .first, .failedBefore, .failedBefore, .again], "a name whose first use failed runs unnamed after")
        let second = try await backendPID(pool)
        XCTAssertEqual(first, second, "two distinct statements are within the bound")
        let third = try await pool.withConnection { connection -> SourceConnectionPool.PreparedUse in pool.use("c", on: connection) }
        XCTAssertEqual(third, .first)
        let fourth = try await backendPID(pool)
        XCTAssertNotEqual(second, fourth, "a third distinct statement: the connection is replaced")
        let fresh = try await pool.withConnection { connection -> SourceConnectionPool.PreparedUse in pool.use("a", on: connection) }
        XCTAssertEqual(fresh, .first, "a new connection starts with nothing prepared")
    }
}
