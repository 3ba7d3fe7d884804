// Benchmark-only tools for Benchmarks/search/run.sh:
//   search-bench engine N      in process: builds an index of N generated products, then runs the
//                              typo queries through it and through a brute-force scan of the same
//                              documents (same typo rules); prints JSON.
//   search-bench trgm URL S C  the same typo queries as pg_trgm in a raw postgres-nio loop: C
//                              connections for S seconds; prints JSON (p50, p99, q/s).
//   search-bench sql N         the products as SQL (the same generator), for the database.
//   search-bench freshness API KEY DBURL RATE SECONDS
//                              writes RATE rows a second into `products` through the REST API and,
//                              as long again, through SQL (postgres-nio); every 25th row is looked
//                              for with the search API every 10 ms until found: p50/p99 of the
//                              time from the write's answer to the first search that finds it.
//   search-bench vectors N D   N clustered D-dimensional vectors (N/500 Gaussian centres x3 plus
//                              unit noise, seeded) in an HNSW index: recall@10 against the exact
//                              scan and both one's queries per second; prints JSON.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NIOPosix
import PostgresNIO
import Runtime
import Search

let queries = [
    "laptpo", "wireles headphnes", "stainles steel botle", "blutooth speakr", "gamng mouse", "ergonomc chair", "mechanicl keyboard",
    "portabel charger", "smartwach", "coffe grinder", "noise canceling", "usb c cabel", "led desk lamp", "yoga mat", "runing shoes",
    "wterproof jacket",
]

/// A seeded generator, so the database and the process index the same products.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
}

let brands = ["Acme", "Zento", "Orbis", "Kyro", "Lumen", "Vexa", "Nordic", "Polar", "Summit", "Tidal", "Aero", "Brio", "Cobalt", "Delta",
              "Ember", "Fjord", "Garnet", "Helix", "Ionic", "Jade"]
let adjectives = ["wireless", "portable", "ergonomic", "stainless", "mechanical", "waterproof", "compact", "smart", "premium", "classic",
                  "ultra", "silent", "rechargeable", "foldable", "adjustable", "bluetooth", "gaming", "running", "noise", "organic",
                  "vintage", "modern", "heavy", "light", "digital", "analog", "magnetic", "solar", "thermal", "wooden"]
let nouns = ["laptop", "headphones", "speaker", "mouse", "keyboard", "chair", "bottle", "charger", "smartwatch", "grinder", "cable",
             "lamp", "mat", "shoes", "jacket", "backpack", "monitor", "tablet", "camera", "kettle", "blender", "desk", "router", "drone",
             "microphone", "projector", "printer", "scanner", "tripod", "umbrella", "wallet", "watch", "glasses", "helmet", "tent",
             "stove", "pillow", "blanket", "mug", "knife"]
let extras = ["steel", "coffee", "usb", "led", "yoga", "canceling", "pro", "max", "mini", "plus", "lite", "air", "edge", "one", "go"]

func product(_ id: Int, _ random: inout SplitMix) -> (id: Int, name: String, category: String, price: Int) {
    let name = "\(random.pick(brands)) \(random.pick(adjectives)) \(random.pick(extras)) \(random.pick(nouns)) \(random.pick(["X", "S", "Z", "Q"]))\(random.next() % 900 + 100)"
    return (id, name, random.pick(nouns), Int(random.next() % 50_000) + 100)
}

func products(_ count: Int) -> [(id: Int, name: String, category: String, price: Int)] {
    var random = SplitMix(state: 42)
    return (1...count).map { product($0, &random) }
}

func rss() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }
    return 0
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func printJSON(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Every document whose name matches every query word (the last as a prefix) within Meilisearch's
/// typo budget: what the index answers, found by reading everything.
func bruteForce(_ query: String, _ documents: [[String]], settings: IndexSettings) -> Int {
    let words = TextNormalizer.words(query)
    var distance = TypoDistance()
    let scalars = words.map { $0.unicodeScalars.map(\.value) }
    var found = 0
    for tokens in documents {
        let tokenScalars = tokens.map { $0.unicodeScalars.map(\.value) }
        var all = true
        for (position, word) in scalars.enumerated() {
            let budget = words[position].count >= 9 ? 2 : words[position].count >= 5 ? 1 : 0
            let prefix = position == scalars.count - 1
            let hit = tokenScalars.contains { token in
                guard var typos = distance.distance(word, token, limit: budget, prefix: prefix) else { return false }
                if token.first != word.first { typos += 1 }
                return typos <= budget
            }
            if !hit {
                all = false
                break
            }
        }
        if all { found += 1 }
    }
    return found
}

func engine(_ count: Int) async throws {
    let items = products(count)
    let before = rss()
    var settings = IndexSettings()
    try settings.apply(["searchableAttributes": ["name"], "filterableAttributes": ["category", "price"]])
    let index = SearchIndex(uid: "products", source: "bench", entity: "products", primaryKey: "id", settings: settings, createdAt: Date(), updatedAt: Date())
    let started = ContinuousClock.now
    // In batches, as a build reads pages from the source: only the index stays in memory.
    for start in stride(from: 0, to: items.count, by: 1_000) {
        index.upsert(items[start..<min(start + 1_000, items.count)].map {
            ["id": .integer(Int64($0.id)), "name": .string($0.name), "category": .string($0.category), "price": .integer(Int64($0.price))]
        })
    }
    let build = ContinuousClock.now - started
    _ = try await index.search(try SearchQuery(json: ["q": "warm"]), view: .everything)
    let after = rss()
    var indexed: [Double] = []
    var totals: [String: Int] = [:]
    for round in 0..<20 {
        for query in queries {
            let clock = ContinuousClock.now
            // "all": every word must match, as the scan below decides.
            let answer = try await index.search(try SearchQuery(json: ["q": .string(query), "matchingStrategy": "all"]), view: .everything)
            indexed.append(Double((ContinuousClock.now - clock).components.attoseconds) / 1e15 + Double((ContinuousClock.now - clock).components.seconds) * 1000)
            if round == 0 { totals[query] = Int(answer["estimatedTotalHits"]?.intValue ?? 0) }
        }
    }
    let tokens = items.map { TextNormalizer.words($0.name) }
    var scanned: [Double] = []
    var mismatches: [String] = []
    for query in queries {
        let clock = ContinuousClock.now
        let found = bruteForce(query, tokens, settings: settings)
        let elapsed = ContinuousClock.now - clock
        scanned.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        if min(found, 1_000) != totals[query] { mismatches.append("\(query): index \(totals[query] ?? -1), scan \(found)") }
    }
    printJSON([
        "documents": count, "buildSeconds": Double(build.components.seconds) + Double(build.components.attoseconds) / 1e18,
        "rssMB": Double(after - before) / 1024, "indexP50ms": percentile(indexed, 0.5), "indexP99ms": percentile(indexed, 0.99),
        "scanP50ms": percentile(scanned, 0.5), "scanMeanMs": scanned.reduce(0, +) / Double(scanned.count),
        "indexMeanMs": indexed.reduce(0, +) / Double(indexed.count), "mismatches": mismatches,
    ])
}

func trgm(_ url: String, seconds: Int, connections: Int) async throws {
    guard let parts = URLComponents(string: url), let host = parts.host, let user = parts.user else { fatalError("bad URL \(url)") }
    var configuration = PostgresClient.Configuration(
        host: host, port: parts.port ?? 5432, username: user, password: parts.password, database: String(parts.path.dropFirst()), tls: .disable)
    configuration.options.maximumConnections = connections
    configuration.options.minimumConnections = connections
    let client = PostgresClient(configuration: configuration)
    let logger = Logger(label: "trgm")
    try await withThrowingTaskGroup(of: [Double].self) { group in
        group.addTask {
            await client.run()
            return []
        }
        let deadline = ContinuousClock.now + .seconds(seconds)
        for worker in 0..<connections {
            group.addTask {
                var latencies: [Double] = []
                var turn = worker
                while ContinuousClock.now < deadline {
                    let query = queries[turn % queries.count]
                    turn += 1
                    let clock = ContinuousClock.now
                    let rows = try await client.query(
                        "SELECT id, name FROM products WHERE \(query) <% name ORDER BY \(query) <<-> name LIMIT 20", logger: logger)
                    for try await _ in rows {}
                    let elapsed = ContinuousClock.now - clock
                    latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                }
                return latencies
            }
        }
        var all: [Double] = []
        for _ in 0..<connections { all += try await group.next() ?? [] }
        group.cancelAll()
        printJSON(["p50ms": percentile(all, 0.5), "p99ms": percentile(all, 0.99), "qps": Double(all.count) / Double(seconds)])
    }
}

func sql(_ count: Int) {
    print("CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, category text NOT NULL, price int NOT NULL);")
    print("COPY products (id, name, category, price) FROM stdin;")
    for item in products(count) { print("\(item.id)\t\(item.name)\t\(item.category)\t\(item.price)") }
    print("\\.")
}

/// A standard normal draw (Box-Muller) from the seeded generator.
func gaussian(_ random: inout SplitMix) -> Float {
    let u1 = max(Double(random.next() >> 11) / Double(1 << 53), 1e-12)
    let u2 = Double(random.next() >> 11) / Double(1 << 53)
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
}

func vectors(_ count: Int, _ dimension: Int) async throws {
    var random = SplitMix(state: 7)
    let centres = (0..<max(count / 500, 1)).map { _ in (0..<dimension).map { _ in gaussian(&random) * 3 } }
    func sample() -> [Float] { random.pick(centres).map { $0 + gaussian(&random) } }
    let index = VectorIndex(name: "bench", dimension: dimension, metric: .euclidean)
    let before = rss()
    let started = ContinuousClock.now
    for start in stride(from: 0, to: count, by: 1_000) {
        index.upsert((start..<min(start + 1_000, count)).map { VectorRecord(id: "v\($0)", values: sample(), metadata: nil) }, namespace: "")
    }
    let build = ContinuousClock.now - started
    let after = rss()
    let queries = (0..<200).map { _ in sample() }
    func timed(_ exact: Bool) -> ([[String]], Double) {
        let clock = ContinuousClock.now
        let answers = queries.map { query in
            index.query(query, topK: 10, filter: nil, namespace: "", includeValues: false, includeMetadata: false, exact: exact).map(\.id)
        }
        let elapsed = ContinuousClock.now - clock
        return (answers, Double(queries.count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    }
    let (approximate, approximateQPS) = timed(false)
    let (exact, exactQPS) = timed(true)
    var hits = 0
    for (found, truth) in zip(approximate, exact) { hits += Set(found).intersection(truth).count }
    printJSON([
        "vectors": count, "dimension": dimension, "buildSeconds": Double(build.components.seconds) + Double(build.components.attoseconds) / 1e18,
        "recallAt10": Double(hits) / Double(10 * queries.count), "annQPS": approximateQPS, "exactQPS": exactQPS,
        "rssMB": Double(after - before) / 1024, "rawMB": Double(count * dimension * 4) / 1_048_576,
    ])
}

/// POSTs JSON and answers the status and body.
func post(_ url: String, key: String, _ body: String, apikey: Bool = false) async throws -> (Int, Data) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = "POST"
    request.httpBody = Data(body.utf8)
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
    if apikey { request.setValue(key, forHTTPHeaderField: "apikey") }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

/// Milliseconds until a search for `token` finds row `id`, polling every 10 ms (at most 10 s).
/// The id is checked: with two typos allowed, the token of a neighbouring row matches too.
func visible(_ api: String, key: String, token: String, id: Int, since start: ContinuousClock.Instant) async throws -> Double {
    while ContinuousClock.now - start < .seconds(10) {
        let (status, data) = try await post(api + "/search/v1/indexes/products/search", key: key, "{\"q\":\"\(token)\",\"limit\":20,\"attributesToRetrieve\":[\"id\"]}")
        if status == 200, let hits = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["hits"] as? [[String: Any]],
            hits.contains(where: { ($0["id"] as? Int) == id })
        {
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return 10_000
}

func freshness(api: String, key: String, database: String, rate: Int, seconds: Int) async throws {
    guard let parts = URLComponents(string: database), let host = parts.host, let user = parts.user else { fatalError("bad URL \(database)") }
    var configuration = PostgresClient.Configuration(
        host: host, port: parts.port ?? 5432, username: user, password: parts.password, database: String(parts.path.dropFirst()), tls: .disable)
    configuration.options.maximumConnections = 8
    let client = PostgresClient(configuration: configuration)
    let logger = Logger(label: "freshness")
    var results: [String: [Double]] = [:]
    try await withThrowingTaskGroup(of: Void.self) { runner in
        runner.addTask { await client.run() }
        for mode in ["rest", "sql"] {
            let samples = try await withThrowingTaskGroup(of: Double?.self) { group -> [Double] in
                let total = rate * seconds
                let base = mode == "rest" ? 10_000_000 : 20_000_000
                let started = ContinuousClock.now
                for n in 0..<total {
                    // Paced: row n goes out at n / rate seconds.
                    let due = started + .milliseconds(n * 1000 / rate)
                    if due > .now { try await Task.sleep(until: due) }
                    group.addTask {
                        let id = base + n
                        let token = "fresh\(id)x"
                        if mode == "rest" {
                            _ = try await post(api + "/rest/v1/products", key: key, "{\"id\":\(id),\"name\":\"\(token) item\",\"category\":\"fresh\",\"price\":1}", apikey: true)
                        } else {
                            try await client.query("INSERT INTO products (id, name, category, price) VALUES (\(id), \(token + " item"), 'fresh', 1)", logger: logger)
                        }
                        guard n % 25 == 0 else { return nil }
                        return try await visible(api, key: key, token: token, id: id, since: .now)
                    }
                }
                var found: [Double] = []
                for try await sample in group { if let sample { found.append(sample) } }
                return found
            }
            results[mode] = samples
        }
        runner.cancelAll()
    }
    printJSON([
        "rate": rate, "restP50ms": percentile(results["rest"]!, 0.5), "restP99ms": percentile(results["rest"]!, 0.99),
        "sqlP50ms": percentile(results["sql"]!, 0.5), "sqlP99ms": percentile(results["sql"]!, 0.99), "samples": results["rest"]!.count,
    ])
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "engine": try await engine(Int(arguments[2]) ?? 100_000)
case "trgm": try await trgm(arguments[2], seconds: Int(arguments[3]) ?? 10, connections: Int(arguments[4]) ?? 32)
case "sql": sql(Int(arguments[2]) ?? 100_000)
case "freshness":
    try await freshness(api: arguments[2], key: arguments[3], database: arguments[4], rate: Int(arguments[5]) ?? 500, seconds: Int(arguments[6]) ?? 5)
case "vectors": try await vectors(Int(arguments[2]) ?? 100_000, Int(arguments[3]) ?? 128)
default:
    FileHandle.standardError.write(Data("usage: search-bench engine N | trgm URL SECONDS CONNECTIONS | sql N\n".utf8))
    exit(2)
}
