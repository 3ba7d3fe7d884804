import PostgresNIO
import Tracing

/// A CLIENT span around one statement, with OpenTelemetry's database conventions: the statement
/// text as planned (values are binds, so none appear), the database system and namespace, and on
/// failure the SQLSTATE. Made only when the node exports traces (`TraceSwitch`).
enum StatementSpan {
    static func around<Result>(
        _ sql: String, system: String, namespace: String, _ body: () async throws -> Result
    ) async throws -> Result {
        let operation = sql.prefix { !$0.isWhitespace && $0 != "(" }.uppercased()
        return try await withSpan(operation.isEmpty ? system : operation, ofKind: .client) { span in
            span.attributes["db.system.name"] = system
            span.attributes["db.namespace"] = namespace
            span.attributes["db.query.text"] = String(sql.prefix(4096))
            if !operation.isEmpty { span.attributes["db.operation.name"] = operation }
            do {
                return try await body()
            } catch let error as PSQLError {
                if let state = error.serverInfo?[.sqlState] { span.attributes["db.response.status_code"] = state }
                span.setStatus(SpanStatus(code: .error))
                span.attributes["error.type"] = error.serverInfo?[.sqlState] ?? "PSQLError"
                throw error
            } catch {
                span.setStatus(SpanStatus(code: .error))
                span.attributes["error.type"] = String(describing: type(of: error))
                throw error
            }
        }
    }
}
