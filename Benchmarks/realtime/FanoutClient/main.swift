// Benchmark-only: the fan-out half of Benchmarks/realtime/run.sh. N WebSocket subscribers join
// `postgres_changes` on `ticks`; each commit stamps `sent_at` with the database's clock and every
// arrival is compared with it. Written in Swift on NIO so that what is measured is the node's
// fan-out: a single Python asyncio process spends ~50 µs reading each frame, which at 1,000
// subscribers is itself ~50 ms of the figure.
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import PostgresNIO
import Synchronization

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}
let socketURL = option("--url", "")
let databaseURL = URL(string: option("--database", ""))!
let subscribers = Int(option("--subscribers", "1000")) ?? 1000
let commits = Int(option("--commits", "20")) ?? 20
let logger = Logger(label: "fanout")

/// Every `postgres_changes` frame with the time it was read.
final class Arrivals: Sendable {
    private let state = Mutex<(frames: [(Double, String)], joined: Int)>(([], 0))
    func add(_ text: String) {
        let now = Date().timeIntervalSince1970
        state.withLock { $0.frames.append((now, text)) }
    }
    func joinedOne() { state.withLock { $0.joined += 1 } }
    var joined: Int { state.withLock { $0.joined } }
    var count: Int { state.withLock { $0.frames.count } }
    func since(_ start: Int) -> [(Double, String)] { state.withLock { Array($0.frames[start...]) } }
}
let arrivals = Arrivals()

func subscribe() async throws {
    let join = #"{"topic":"realtime:ticks","event":"phx_join","ref":"1","join_ref":"1","payload":{"config":{"postgres_changes":[{"event":"INSERT","schema":"public","table":"ticks"}]}}}"#
    _ = try await WebSocketClient.connect(url: socketURL, configuration: .init(maxFrameSize: 1 << 20), logger: logger) { inbound, outbound, _ in
        try await outbound.write(.text(join))
        var joined = false
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message else { continue }
            if !joined {
                joined = true
                arrivals.joinedOne()
            } else if text.contains("postgres_changes") {
                arrivals.add(text)
            }
        }
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((p / 100 * Double(sorted.count - 1)).rounded()))]
}

var configuration = PostgresConnection.Configuration(
    host: databaseURL.host ?? "127.0.0.1", port: databaseURL.port ?? 5432, username: databaseURL.user ?? "postgres",
    password: databaseURL.password, database: String(databaseURL.path.dropFirst()), tls: .disable)
let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)

try await withThrowingTaskGroup(of: Void.self) { group in
    // In waves, as clients arrive in practice, not one burst of a thousand handshakes.
    for index in 0..<subscribers {
        group.addTask { try await subscribe() }
        if index % 50 == 49 { try await Task.sleep(for: .milliseconds(20)) }
    }
    let joinDeadline = Date().addingTimeInterval(60)
    while arrivals.joined < subscribers && Date() < joinDeadline { try await Task.sleep(for: .milliseconds(20)) }
    guard arrivals.joined == subscribers else {
        print("only \(arrivals.joined) of \(subscribers) subscribers joined")
        exit(1)
    }
    try await Task.sleep(for: .seconds(1))

    var latencies: [Double] = []
    var missing = 0
    for number in 1...commits {
        let before = arrivals.count
        var id: Int64 = 0
        let rows = try await connection.query(
            "insert into ticks (sent_at) values (extract(epoch from clock_timestamp())) returning id", logger: logger)
        for try await value in rows.decode(Int64.self) { id = value }
        let deadline = Date().addingTimeInterval(10)
        while arrivals.count - before < subscribers && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let marker = "\"id\":\(id),"
        var these: [Double] = []
        for (received, text) in arrivals.since(before) where text.contains(marker) {
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let payload = object["payload"] as? [String: Any], let data = payload["data"] as? [String: Any],
                let record = data["record"] as? [String: Any], let sentAt = record["sent_at"] as? Double
            else { continue }
            these.append((received - sentAt) * 1000)
        }
        missing += subscribers - these.count
        latencies += these
        if let first = these.min(), let last = these.max() {
            FileHandle.standardError.write(Data(String(format: "  commit %d: first %.1f ms, last %.1f ms\n", number, first, last).utf8))
        }
        try await Task.sleep(for: .milliseconds(300))
    }
    latencies.sort()
    guard !latencies.isEmpty else {
        print("no deliveries")
        exit(1)
    }
    print(String(
        format: "fan-out to %d subscribers, %d commits: %d deliveries, %d missing, p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 <= 100 ms)",
        subscribers, commits, latencies.count, missing, percentile(latencies, 50), percentile(latencies, 99), latencies.last!))
    try? await connection.close()
    exit(missing == 0 ? 0 : 1)
}
