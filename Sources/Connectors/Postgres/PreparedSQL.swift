import Crypto
import Logging
import PostgresNIO
import Runtime
import Tenancy

/// Runs a generated statement as a named prepared statement: the server parses and plans each
/// distinct statement once per connection instead of on every request (PostgREST does the same;
/// the server still plans each execution's parameters for the first five, then settles on a
/// generic plan where it is no worse).
/// The name is a digest of the SQL and its parameter types, so one text is prepared once, and the
/// pool replaces a connection holding more than `maxPrepared` (500) distinct ones, bounding what
/// each server process keeps.
///
/// postgres-nio prepares only statements whose SQL is a static property of a type; the SQL here is
/// generated per request, so the type reads it from a task-local bound around the call.
enum PreparedSQL {
    struct Statement: PostgresPreparedStatement {
        typealias Row = PostgresRow
        @TaskLocal static var current = (name: "", sql: "")
        // Read by postgres-nio synchronously in `execute`, inside the task-local's scope; an empty
        // name would be the unnamed statement, silently another query's.
        static var name: String {
            precondition(!current.name.isEmpty, "PreparedSQL.Statement used outside PreparedSQL.execute")
            return current.name
        }
        static var sql: String { current.sql }
        let bindings: PostgresBindings
        func makeBindings() throws -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// The statement's server-side name: one per SQL text and parameter types.
    static func name(of statement: SQLStatement) -> String {
        var hasher = SHA256()
        hasher.update(utf8: statement.sql)
        hasher.update(utf8: "\0")
        hasher.update(utf8: statement.parameterTypes)
        return "mb_" + hasher.finalize().hex(prefix: 16)
    }

    static func execute(
        _ statement: SQLStatement, name: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, PostgresRow> {
        try await Statement.$current.withValue((name, statement.sql)) {
            try await connection.execute(Statement(bindings: statement.binds), logger: logger)
        }
    }
}

extension PostgresURL {
    /// Supabase's pooler in transaction mode (port 6543, `*.pooler.supabase.com` on any port but
    /// 5432) and PgBouncer's usual port: a client's prepared statements do not follow it from one
    /// transaction to the next there, so such sources run statements unnamed unless told otherwise.
    public var isTransactionPooler: Bool {
        port == 6543 || port == 6432 || (host.lowercased().hasSuffix(".pooler.supabase.com") && port != 5432)
    }
}
