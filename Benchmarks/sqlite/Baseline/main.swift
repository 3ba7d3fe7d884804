// The hand-written service a user would write over a SQLite file instead of mini-baas —
// Hummingbird + sqlite-nio, a few connections, one query per request, JSON built by SQLite —
// reading the very file mini-baas hosts the benchmark tenant's tables in. Benchmark-only.
import Foundation
import Hummingbird
import Logging
import NIOCore
import SQLiteNIO
import Synchronization

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}

let path = option("--file", "bench.sqlite")
let count = Int(option("--connections", "4")) ?? 4
var opened: [SQLiteConnection] = []
for _ in 0..<count {
    let connection: SQLiteConnection = try await SQLiteConnection.open(storage: .file(path: path), logger: Logger(label: "baseline"))
    _ = try await connection.query("PRAGMA busy_timeout = 5000")
    _ = try await connection.query("PRAGMA query_only = ON")
    opened.append(connection)
}
let connections = opened
let next = Atomic<Int>(0)
func connection() -> SQLiteConnection {
    connections[next.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count]
}

let keySQL = "SELECT json_object('id', id, 'name', name, 'value', value, 'parent_id', parent_id) AS j FROM items WHERE id = ?1"
let embedSQL = """
    SELECT json_object('id', i.id, 'name', i.name, 'parents', json((SELECT json_object('id', p.id, 'name', p.name, 'groups',
      json((SELECT json_object('id', g.id, 'name', g.name) FROM groups g WHERE g.id = p.group_id))) FROM parents p WHERE p.id = i.parent_id))) AS j
    FROM items i WHERE i.id = ?1
    """

func fetch(_ sql: String, _ id: Int) async throws -> Response {
    let rows = try await connection().query(sql, [.integer(id)])
    let body = "[" + rows.compactMap { $0.column("j")?.string }.joined(separator: ",") + "]"
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
}

let router = Router()
router.get("items") { request, _ -> Response in
    guard let id = request.uri.queryParameters.get("id", as: Int.self) else { return Response(status: .badRequest) }
    return try await fetch(keySQL, id)
}
router.get("embed") { request, _ -> Response in
    guard let id = request.uri.queryParameters.get("id", as: Int.self) else { return Response(status: .badRequest) }
    return try await fetch(embedSQL, id)
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: Int(option("--port", "8091")) ?? 8091)))
try await app.runService()
