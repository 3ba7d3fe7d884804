// The hand-written service a user would write instead of mini-baas — Hummingbird + postgres-nio,
// one query per request — and the raw postgres-nio query loop. Benchmark-only.
import Foundation
import Hummingbird
import Logging
import PostgresNIO

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}

let url = URL(string: option("--database", "postgresql://postgres@127.0.0.1:5432/bench"))!
var configuration = PostgresClient.Configuration(
    host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: String(url.path.dropFirst()), tls: .disable)
configuration.options.maximumConnections = Int(option("--connections", "10")) ?? 10
let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "baseline"))

/// One of the two queries, by the row's id. Run plainly (`client.query`, what (c) measures) or, with
/// `--prepared`, as a postgres-nio prepared statement — what a user who knows postgres-nio well
/// might write; shown beside (c) for comparison, not used for the ratios.
protocol ByID: PostgresPreparedStatement where Row == String {
    var id: Int { get }
}
extension ByID {
    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        return bindings
    }
    func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
    var plain: PostgresQuery { PostgresQuery(unsafeSQL: Self.sql, binds: try! makeBindings()) }
}
struct KeyStatement: ByID {
    static let sql = "SELECT row_to_json(t)::text FROM (SELECT id, name, value, parent_id FROM items WHERE id = $1) t"
    let id: Int
}
struct EmbedStatement: ByID {
    static let sql = """
        SELECT row_to_json(t)::text FROM (
          SELECT i.id, i.name,
                 (SELECT row_to_json(p) FROM (
                    SELECT pa.id, pa.name,
                           (SELECT row_to_json(g) FROM (SELECT gr.id, gr.name FROM groups gr WHERE gr.id = pa.group_id) g) AS groups
                    FROM parents pa WHERE pa.id = i.parent_id) p) AS parents
          FROM items i WHERE i.id = $1) t
        """
    let id: Int
}
let prepared = arguments.contains("--prepared")

func fetch<Statement: ByID>(_ statement: Statement) async throws -> String {
    guard prepared else { return try await fetch(statement.plain) }
    var body = "[]"
    for try await text in try await client.execute(statement) { body = "[\(text)]" }
    return body
}

func fetch(_ query: PostgresQuery) async throws -> String {
    let rows = try await client.query(query)
    var body = "[]"
    for try await text in rows.decode(String.self) { body = "[\(text)]" }
    return body
}

if arguments.contains("--raw-loop") {
    // (d) The raw query loop: `concurrency` tasks issuing primary-key queries for `seconds`.
    let seconds = Double(option("--seconds", "10")) ?? 10
    let concurrency = Int(option("--concurrency", "32")) ?? 32
    let rowsCount = Int(option("--rows", "10000")) ?? 10000
    try await withThrowingTaskGroup(of: [Double].self) { group in
        group.addTask { await client.run(); return [] }
        let deadline = Date().addingTimeInterval(seconds)
        for _ in 0..<concurrency {
            group.addTask {
                var latencies: [Double] = []
                while Date() < deadline {
                    let start = ContinuousClock.now
                    _ = try await fetch(KeyStatement(id: Int.random(in: 1...rowsCount)).plain)
                    let elapsed = ContinuousClock.now - start
                    latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
                }
                return latencies
            }
        }
        var all: [Double] = []
        for _ in 0..<concurrency { all += try await group.next() ?? [] }
        group.cancelAll()
        all.sort()
        let p50 = all.isEmpty ? 0 : all[all.count / 2]
        let p99 = all.isEmpty ? 0 : all[min(all.count - 1, Int(Double(all.count) * 0.99))]
        print(String(format: "raw %.1f %.3f %.3f", Double(all.count) / seconds, p50, p99))
    }
    exit(0)
}

let router = Router()
router.get("items") { request, _ -> Response in
    guard let id = request.uri.queryParameters.get("id", as: Int.self) else { return Response(status: .badRequest) }
    let body = try await fetch(KeyStatement(id: id))
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
}
router.get("embed") { request, _ -> Response in
    guard let id = request.uri.queryParameters.get("id", as: Int.self) else { return Response(status: .badRequest) }
    let body = try await fetch(EmbedStatement(id: id))
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
}
var app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: Int(option("--port", "8090")) ?? 8090)))
app.addServices(client)
try await app.runService()
