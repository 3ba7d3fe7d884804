// Benchmarks/jobs' helpers:
//   jobs-bench receiver PORT          a Hummingbird receiver: POST /hook/{name} records the arrival (and,
//                                     when the body's record has `sent_at` in ms, the latency since);
//                                     names starting with "slow" answer after 50 ms; names starting
//                                     with "gate" wait until POST /release/{name}, which forgets
//                                     what arrived so far (answering how many) so the rate is that
//                                     of a stored backlog; GET /stats/{name} reports count, rate
//                                     and latency percentiles.
//   jobs-bench bareloop URL N C       posts N signed webhook bodies with AsyncHTTPClient, C at a time,
//                                     and prints requests per second: the baseline the node's
//                                     deliveries are compared with.
import AsyncHTTPClient
import Foundation
import Hummingbird
import Jobs
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

struct Arrivals: Sendable {
    var count = 0
    var first: UInt64 = 0
    var last: UInt64 = 0
    var latencies: [Double] = []
}

let table = NIOLockedValueBox<[String: Arrivals]>([:])

/// Deliveries held at a closed gate until it is released.
struct Gates: Sendable {
    var open: Set<String> = []
    var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]
}
let gates = NIOLockedValueBox(Gates())

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

func receiver(port: Int) async throws {
    let router = Router()
    router.post("hook/:name") { request, context -> HTTPResponse.Status in
        let name = context.parameters.get("name") ?? ""
        let body = try await request.body.collect(upTo: 1 << 20)
        let now = DispatchTime.now().uptimeNanoseconds
        let wall = Date().timeIntervalSince1970 * 1000
        var latency: Double?
        if let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let record = object["record"] as? [String: Any], let sent = record["sent_at"] as? Double ?? (record["sent_at"] as? Int).map(Double.init)
        {
            latency = wall - sent
        }
        table.withLockedValue { table in
            var arrivals = table[name] ?? Arrivals()
            if arrivals.count == 0 { arrivals.first = now }
            arrivals.count += 1
            arrivals.last = now
            if let latency { arrivals.latencies.append(latency) }
            table[name] = arrivals
        }
        if name.hasPrefix("slow") { try await Task.sleep(for: .milliseconds(50)) }
        if name.hasPrefix("gate") {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let passes = gates.withLockedValue { gates -> Bool in
                    if gates.open.contains(name) { return true }
                    gates.waiting[name, default: []].append(continuation)
                    return false
                }
                if passes { continuation.resume() }
            }
        }
        return .ok
    }
    router.post("release/:name") { _, context -> Response in
        let name = context.parameters.get("name") ?? ""
        let held = table.withLockedValue { table -> Int in
            let count = table[name]?.count ?? 0
            table[name] = Arrivals()
            return count
        }
        let waiting = gates.withLockedValue { gates -> [CheckedContinuation<Void, Never>] in
            gates.open.insert(name)
            return gates.waiting.removeValue(forKey: name) ?? []
        }
        for continuation in waiting { continuation.resume() }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"held\":\(held)}")))
    }
    router.get("stats/:name") { _, context -> Response in
        let arrivals = table.withLockedValue { $0[context.parameters.get("name") ?? ""] } ?? Arrivals()
        let sorted = arrivals.latencies.sorted()
        let seconds = Double(arrivals.last &- arrivals.first) / 1e9
        let json: [String: Any] = [
            "count": arrivals.count, "seconds": seconds, "rate": seconds > 0 ? Double(arrivals.count - 1) / seconds : 0,
            "p50": percentile(sorted, 0.5), "p99": percentile(sorted, 0.99), "latencies": sorted.count,
        ]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: try JSONSerialization.data(withJSONObject: json))))
    }
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
    try await app.runService()
}

func bareLoop(url: String, count: Int, concurrency: Int) async throws {
    var configuration = HTTPClient.Configuration()
    configuration.redirectConfiguration = .disallow
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
    let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    let signer = WebhookSigner(encoded: [WebhookSigner.newSecret()])!
    let body = Array(#"{"type":"INSERT","table":"items","schema":"main","record":{"id":1,"name":"bench","sent_at":0},"old_record":null}"#.utf8)
    let next = NIOLockedValueBox(0)
    let started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                while true {
                    let index = next.withLockedValue { value -> Int in
                        value += 1
                        return value
                    }
                    guard index <= count else { return }
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    for (name, value) in signer.headers(id: "msg_\(index)", timestamp: Int64(Date().timeIntervalSince1970), body: body) {
                        request.headers.add(name: name, value: value)
                    }
                    request.body = .bytes(ByteBuffer(bytes: body))
                    let response = try await client.execute(request, timeout: .seconds(30))
                    for try await _ in response.body {}
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(String(format: "%.1f", Double(count) / seconds))
    try await client.shutdown()
}

/// The node's own outbound client in the same loop (to tell its cost from the store's).
func outboundLoop(url: String, count: Int, concurrency: Int) async throws {
    let client = OutboundClient(policy: try OutboundPolicy(allowList: "127.0.0.0/8"))
    let body = Array(#"{"type":"INSERT","table":"items","schema":"main","record":{"id":1,"name":"bench","sent_at":0},"old_record":null}"#.utf8)
    let next = NIOLockedValueBox(0)
    let failures = NIOLockedValueBox(0)
    let started = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                while true {
                    let index = next.withLockedValue { value -> Int in
                        value += 1
                        return value
                    }
                    guard index <= count else { return }
                    let answer = await client.send(url: url, headers: [("Content-Type", "application/json")], body: body, timeout: .seconds(10))
                    if !answer.succeeded { failures.withLockedValue { $0 += 1 } }
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(String(format: "%.1f", Double(count) / seconds), "failures", failures.withLockedValue { $0 })
}

let arguments = CommandLine.arguments
if ProcessInfo.processInfo.environment["ON_EVENT_LOOPS"] == "1" {
    _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
switch arguments.dropFirst().first {
case "receiver":
    try await receiver(port: Int(arguments[2]) ?? 0)
case "outbound":
    try await outboundLoop(url: arguments[2], count: Int(arguments[3]) ?? 1000, concurrency: Int(arguments[4]) ?? 8)
case "bareloop":
    try await bareLoop(url: arguments[2], count: Int(arguments[3]) ?? 1000, concurrency: Int(arguments[4]) ?? 8)
default:
    print("usage: jobs-bench receiver PORT | bareloop URL N C")
    exit(2)
}
