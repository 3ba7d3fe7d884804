import Crypto
import Logging
import PostgresNIO
import Runtime

/// Runs a generated statement as a named prepared statement: the server parses and plans each
/// distinct statement once per connection instead of on every request (PostgREST does the same).
/// The name is a digest of the SQL and its parameter types, so one text is prepared once, and the
/// pool closes a connection after `SourceConnectionPool.maxPreparedPerConnection` distinct ones,
/// bounding what each server process keeps.
///
/// postgres-nio prepares only statements whose SQL is a static property of a type; the SQL here is
/// generated per request, so the type reads it from a task-local bound around the call.
enum PreparedSQL {
    struct Statement: PostgresPreparedStatement {
        typealias Row = PostgresRow
        @TaskLocal static var current = (name: "", sql: "")
        static var name: String { current.name }
        static var sql: String { current.sql }
        let bindings: PostgresBindings
        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// The statement's server-side name: one per SQL text and parameter types.
    static func name(of statement: SQLStatement) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(statement.sql.utf8))
        hasher.update(data: [0] + Array(statement.parameterTypes.utf8))
        return "mb_" + Hex.encode(hasher.finalize().prefix(16))
    }

    /// Errors the server raises while parsing or planning (a model that no longer matches the
    /// database, a changed result type): postgres-nio remembers them for the statement's name on
    /// that connection, so the connection must not be used again.
    static func mayHaveFailedPreparing(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return ["42", "0A", "3F", "26", "XX"].contains(String(state.prefix(2)))
    }

    static func execute(
        _ statement: SQLStatement, name: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, PostgresRow> {
        try await Statement.$current.withValue((name, statement.sql)) {
            try await connection.execute(Statement(bindings: statement.binds), logger: logger)
        }
    }
}
