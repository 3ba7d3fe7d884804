// Benchmarks/mongo's baseline: the same GET by `_id` as a bare libmongoc loop — THREADS threads
// sharing one `mongoc_client_pool_t` of as many clients, each popping a client, running
// `find` with `{_id: <random ObjectId>}` and reading the document, for SECONDS seconds.
// Prints "<finds per second> <p50 ms> <p99 ms>".
// Usage: mongo-baseline URL DATABASE COLLECTION IDS_FILE THREADS SECONDS
import CMongoc
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 7, let threads = Int(arguments[5]), let seconds = Double(arguments[6]) else {
    FileHandle.standardError.write(Data("usage: mongo-baseline URL DATABASE COLLECTION IDS_FILE THREADS SECONDS\n".utf8))
    exit(2)
}
let (url, database, collection) = (arguments[1], arguments[2], arguments[3])
let ids = try String(contentsOfFile: arguments[4], encoding: .utf8).split(separator: "\n").map(String.init)

mongoc_init()
var error = bson_error_t()
guard let uri = mongoc_uri_new_with_error(url, &error) else { fatalError("bad url") }
mongoc_uri_set_option_as_int32(uri, "maxPoolSize", Int32(threads))
guard let pool = mongoc_client_pool_new(uri) else { fatalError("no pool") }
mongoc_client_pool_set_error_api(pool, 2)

struct Pool: @unchecked Sendable { let pointer: OpaquePointer }
let shared = Pool(pointer: pool)
let results = NSLock()
nonisolated(unsafe) var latencies: [Double] = []
nonisolated(unsafe) var failures = 0
let deadline = Date().addingTimeInterval(seconds)
let started = Date()

DispatchQueue.concurrentPerform(iterations: threads) { _ in
    var mine: [Double] = []
    var failed = 0
    var generator = SystemRandomNumberGenerator()
    while Date() < deadline {
        let hex = ids[Int.random(in: 0..<ids.count, using: &generator)]
        let begin = DispatchTime.now().uptimeNanoseconds
        guard let client = mongoc_client_pool_pop(shared.pointer) else { continue }
        let handle = mongoc_client_get_collection(client, database, collection)
        var oid = bson_oid_t()
        bson_oid_init_from_string(&oid, hex)
        let filter = bson_new()
        bson_append_oid(filter, "_id", 3, &oid)
        let options = bson_new()
        // int32: mongoeco refuses an int64 limit.
        bson_append_int32(options, "limit", 5, 1)
        let cursor = mongoc_collection_find_with_opts(handle, filter, options, nil)
        var document: OpaquePointer?
        var found = false
        while mongoc_cursor_next(cursor, &document) { found = true }
        var cursorError = bson_error_t()
        if mongoc_cursor_error(cursor, &cursorError) || !found { failed += 1 }
        mongoc_cursor_destroy(cursor)
        bson_destroy(options)
        bson_destroy(filter)
        mongoc_collection_destroy(handle)
        mongoc_client_pool_push(shared.pointer, client)
        mine.append(Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e6)
    }
    results.lock()
    latencies += mine
    failures += failed
    results.unlock()
}
let elapsed = Date().timeIntervalSince(started)
let sorted = latencies.sorted()
func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))] }
if failures > 0 {
    // A loop of failing finds is fast and measures nothing: refuse to report it.
    FileHandle.standardError.write(Data("\(failures) of \(sorted.count) finds failed\n".utf8))
    exit(1)
}
print(String(format: "%.1f %.3f %.3f", Double(sorted.count) / elapsed, percentile(0.5), percentile(0.99)))
mongoc_client_pool_destroy(pool)
mongoc_uri_destroy(uri)
