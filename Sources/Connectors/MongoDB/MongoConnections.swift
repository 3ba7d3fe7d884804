import CMongoc
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Runtime

/// One MongoDB source's connections: a `mongoc_client_pool_t` of `maxConnections` clients and a
/// thread pool of as many threads, so every blocking libmongoc call (BSON decoding included)
/// runs off the event loops and a client is always free for the thread that runs. Callers wait
/// for a turn at most `acquireTimeout` (then 503 MB600). Closed when the tenant's tree stops the
/// source: running calls finish first, later ones are refused (503 MB601).
final class MongoConnections: @unchecked Sendable {
    struct Settings: Sendable {
        var maxConnections = 10
        var acquireTimeout: Duration = .seconds(5)
        /// Each command's `maxTimeMS` (90 % of the tenant's request deadline).
        var maxTimeMS: Int32 = 27_000
        var socketTimeoutMS: Int32 = 31_000
    }

    let source: String
    let database: String
    let settings: Settings
    private let pool: MongoPoolHandle
    private let threads: NIOThreadPool
    private let gate: ConcurrencyLimiter
    /// Threads start with the first call (a source built for a tree that then fails to start
    /// holds none); `closed` once the tree stops the source.
    private let state = NIOLockedValueBox<(started: Bool, closed: Bool)>((false, false))

    init(source: String, url: String, database: String, settings: Settings) throws {
        _ = MongoLibrary.ready
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else { throw MongoError(error) }
        defer { mongoc_uri_destroy(uri) }
        mongoc_uri_set_option_as_int32(uri, "maxPoolSize", Int32(settings.maxConnections))
        mongoc_uri_set_option_as_int32(uri, "waitQueueTimeoutMS", Int32(clamping: settings.acquireTimeout.components.seconds * 1000))
        mongoc_uri_set_option_as_int32(uri, "serverSelectionTimeoutMS", 5_000)
        mongoc_uri_set_option_as_int32(uri, "connectTimeoutMS", 5_000)
        mongoc_uri_set_option_as_int32(uri, "socketTimeoutMS", settings.socketTimeoutMS)
        guard let pool = mongoc_client_pool_new_with_error(uri, &error) else { throw MongoError(error) }
        mongoc_client_pool_set_error_api(pool, 2)
        mongoc_client_pool_set_appname(pool, "mini-baas")
        self.pool = MongoPoolHandle(pointer: pool)
        self.source = source
        self.database = database
        self.settings = settings
        self.threads = NIOThreadPool(numberOfThreads: settings.maxConnections)
        self.gate = ConcurrencyLimiter(maxConcurrent: settings.maxConnections, maxQueued: 10_000)
    }

    /// Runs `body` with a client of the pool on one of the source's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable (MongoSession) throws -> T) async throws -> T {
        try await gate.admit(source: source, waitingFor: "connection", within: settings.acquireTimeout)
        defer { gate.release() }
        let admitted = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            if !state.started {
                threads.start()
                state.started = true
            }
            return true
        }
        guard admitted else { throw RestError(status: 503, code: "MB601", message: "source '\(source)' is restarting", hint: "retry shortly") }
        let pool = self.pool
        let database = self.database
        do {
            return try await threads.runIfActive {
                guard let client = mongoc_client_pool_pop(pool.pointer) else {
                    throw MongoError(domain: MongoError.clientDomain, code: 0, message: "no free client in the pool")
                }
                defer { mongoc_client_pool_push(pool.pointer, client) }
                return try body(MongoSession(client: client, database: database))
            }
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw RestError(status: 503, code: "MB601", message: "source '\(source)' is restarting", hint: "retry shortly")
        }
    }

    /// Stops taking calls, lets running ones end, then frees the threads and the pool.
    func close() async {
        let (first, started) = state.withLockedValue { state -> (Bool, Bool) in
            defer { state.closed = true }
            return (!state.closed, state.started)
        }
        guard first else { return }
        if started { try? await threads.shutdownGracefully() }
        mongoc_client_pool_destroy(pool.pointer)
    }

    deinit {
        // Never closed (its tree did not start): nothing can be using the pool any more.
        if !state.withLockedValue({ $0.closed }) { mongoc_client_pool_destroy(pool.pointer) }
    }
}

/// libmongoc's pool is thread-safe (its clients are not: each is used by one thread at a time).
struct MongoPoolHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// MongoDB's errors as PostgREST's clients expect them (contract table): duplicate key 11000 →
/// 409 `23505`, validation 121 → 400 `23514`, time limit 50 → 504 `57014`, unauthorised 13 →
/// 403 `42501`; an unreachable server → 503 MB602.
enum MongoErrorMapping {
    static func restError(_ error: any Error, source: String) -> any Error {
        switch error {
        case let error as RestError:
            return error
        case let error as MongoWriteError:
            return serverError(code: error.code, message: error.message, source: source)
        case let error as MongoError:
            if error.domain == MongoError.serverDomain || error.domain == MongoError.queryDomain || error.domain == MongoError.writeConcernDomain {
                return serverError(code: error.code, message: error.message, source: source)
            }
            if error.message.contains("waitQueueTimeoutMS") || error.message.contains("no free client") {
                return RestError(status: 503, code: "MB600", message: "source '\(source)' has no free connection", hint: "retry shortly")
            }
            if error.isUnreachable {
                return RestError(status: 503, code: "MB602", message: "the MongoDB server of source '\(source)' is unreachable", details: error.message)
            }
            return RestError(status: 502, code: "MB342", message: "the MongoDB server of source '\(source)' failed the command", details: error.message)
        case let error as BSONError:
            return RestError(status: 400, code: "MB340", message: "the document cannot be stored", details: error.description)
        default:
            return error
        }
    }

    static func serverError(code: UInt32, message: String, source: String) -> RestError {
        switch code {
        case 11000, 11001:
            return RestError(status: 409, code: "23505", message: "duplicate key value violates unique constraint", details: message)
        case 121:
            return RestError(status: 400, code: "23514", message: "the document failed the collection's validation", details: message)
        case 50, 262:
            return RestError(status: 504, code: "57014", message: "canceling statement due to statement timeout", details: message)
        case 13:
            return RestError(status: 403, code: "42501", message: "the MongoDB server refused the operation (unauthorized)", details: message)
        case 10334, 10329, 17419, 17420:
            return RestError(status: 413, code: "MB340", message: "the document is larger than MongoDB's 16 MiB limit", details: message)
        case 51091, 2:
            return RestError(status: 400, code: "MB337", message: "the MongoDB server refused the query", details: message)
        default:
            return RestError(status: 502, code: "MB342", message: "the MongoDB server of source '\(source)' refused the command", details: "\(message) (code \(code))")
        }
    }
}
