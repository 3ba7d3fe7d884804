import CMongoc
import Foundation

/// libmongoc is initialised once per process, before the first URI or client.
public enum MongoLibrary {
    static let ready: Bool = {
        mongoc_init()
        return true
    }()

    /// libmongoc's load-time constructor maps its counters into `/dev/shm/mongoc-<pid>` for
    /// monitoring tools, and removes the file only in `mongoc_cleanup`: a process that ends
    /// otherwise (kill -9, or simply exiting) leaves it behind, and a later process given the same
    /// pid cannot create its own and prints "Falling back to malloc for counters" on startup.
    /// Removing the name at once keeps the mapping and leaves nothing behind.
    public static func releaseCounterFile() {
        _ = shm_unlink("/mongoc-\(getpid())")
    }
}

/// What libmongoc or the server reported: its error domain and code, and the server's reply
/// where there was one (write errors carry their own codes).
struct MongoError: Error, CustomStringConvertible {
    var domain: UInt32
    var code: UInt32
    var message: String

    init(domain: UInt32, code: UInt32, message: String) {
        self.domain = domain
        self.code = code
        self.message = message
    }

    init(_ error: bson_error_t) {
        var copy = error
        let message = withUnsafeBytes(of: &copy.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        self.init(domain: error.domain, code: error.code, message: message)
    }

    var description: String { "\(message) (domain \(domain), code \(code))" }

    /// libmongoc's domains (mongoc-error.h) this code tells apart.
    static let clientDomain = MONGOC_ERROR_CLIENT.rawValue
    static let streamDomain = MONGOC_ERROR_STREAM.rawValue
    static let queryDomain = MONGOC_ERROR_QUERY.rawValue
    static let commandDomain = MONGOC_ERROR_COMMAND.rawValue
    static let serverSelectionDomain = MONGOC_ERROR_SERVER_SELECTION.rawValue
    static let serverDomain = MONGOC_ERROR_SERVER.rawValue
    static let writeConcernDomain = MONGOC_ERROR_WRITE_CONCERN.rawValue
    static let poolDomain = MONGOC_ERROR_POOL.rawValue
    static let authenticateCode = MONGOC_ERROR_CLIENT_AUTHENTICATE.rawValue

    var isUnreachable: Bool {
        !isAuthentication && (domain == Self.serverSelectionDomain || domain == Self.streamDomain || domain == Self.clientDomain)
    }

    var isAuthentication: Bool {
        (domain == Self.clientDomain && code == Self.authenticateCode) || (domain == Self.serverDomain && code == 18)
            || message.contains("Authentication failed")
    }
}

/// Commands on one libmongoc client, run on the calling thread: they block, so only a source's
/// own thread pool (or a registration's thread) calls them, never an event loop.
struct MongoSession {
    let client: OpaquePointer
    let database: String

    /// An aggregation's documents, every batch read.
    func aggregate(_ collection: String, pipeline: [BSON], maxTimeMS: Int32? = nil, limit: Int = .max) throws -> [BSONDocument] {
        guard let handle = mongoc_client_get_collection(client, database, collection) else {
            throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot open collection \(collection)")
        }
        defer { mongoc_collection_destroy(handle) }
        var options = BSONDocument()
        if let maxTimeMS { options.append("maxTimeMS", .int32(maxTimeMS)) }
        return try BSONDocument.withBSONArray(pipeline) { stages in
            try options.withBSON { opts in
                guard let cursor = mongoc_collection_aggregate(handle, MONGOC_QUERY_NONE, stages, opts, nil) else {
                    throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot start the aggregation")
                }
                defer { mongoc_cursor_destroy(cursor) }
                return try Self.drain(cursor, limit: limit)
            }
        }
    }

    /// A `find`: what a read without joins, policy lookups or null-placed sorting needs (cheaper
    /// for the server than the same as an aggregation).
    func find(_ collection: String, _ query: MongoFind, maxTimeMS: Int32? = nil) throws -> [BSONDocument] {
        guard let handle = mongoc_client_get_collection(client, database, collection) else {
            throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot open collection \(collection)")
        }
        defer { mongoc_collection_destroy(handle) }
        var options = BSONDocument()
        options.append("projection", .document(query.projection))
        // int32: some servers (and mongoeco) refuse int64 skip and limit.
        if let skip = query.skip, skip > 0 { options.append("skip", .int32(Int32(clamping: skip))) }
        if let limit = query.limit { options.append("limit", .int32(Int32(clamping: limit))) }
        if let maxTimeMS { options.append("maxTimeMS", .int32(maxTimeMS)) }
        return try query.filter.withBSON { filter in
            try options.withBSON { opts in
                guard let cursor = mongoc_collection_find_with_opts(handle, filter, opts, nil) else {
                    throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot start the find")
                }
                defer { mongoc_cursor_destroy(cursor) }
                return try Self.drain(cursor, limit: .max)
            }
        }
    }

    /// Collections (and views) of the database, with their options (validators).
    func listCollections() throws -> [BSONDocument] {
        guard let handle = mongoc_client_get_database(client, database) else {
            throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot open database \(database)")
        }
        defer { mongoc_database_destroy(handle) }
        guard let cursor = mongoc_database_find_collections_with_opts(handle, nil) else { return [] }
        defer { mongoc_cursor_destroy(cursor) }
        return try Self.drain(cursor, limit: .max)
    }

    func listIndexes(_ collection: String) throws -> [BSONDocument] {
        guard let handle = mongoc_client_get_collection(client, database, collection) else { return [] }
        defer { mongoc_collection_destroy(handle) }
        guard let cursor = mongoc_collection_find_indexes_with_opts(handle, nil) else { return [] }
        defer { mongoc_cursor_destroy(cursor) }
        return try Self.drain(cursor, limit: .max)
    }

    /// Runs one command on the database and answers the server's reply. A reply with
    /// `writeErrors` throws the first (its index in `message`), so no write error passes as success.
    @discardableResult
    func command(_ command: BSONDocument, on database: String? = nil) throws -> BSONDocument {
        // Storage for libbson's `bson_t` (128 bytes, 128-byte aligned; opaque to Swift).
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        defer { storage.deallocate() }
        let reply = OpaquePointer(storage)
        var error = bson_error_t()
        let ok = try command.withBSON { built in
            mongoc_client_command_simple(client, database ?? self.database, built, nil, reply, &error)
        }
        // libmongoc initialises the reply either way.
        defer { bson_destroy(reply) }
        let answer = (try? BSONDocument(bson: reply)) ?? BSONDocument()
        guard ok else { throw MongoError(error) }
        if case .array(let errors)? = answer["writeErrors"], case .document(let first)? = errors.first {
            let code = first["code"].flatMap(Self.integer) ?? 0
            let index = first["index"].flatMap(Self.integer) ?? 0
            let text: String
            if case .string(let message)? = first["errmsg"] { text = message } else { text = "write error" }
            throw MongoWriteError(code: UInt32(truncatingIfNeeded: code), index: Int(index), message: text, reply: answer)
        }
        if case .document(let concern)? = answer["writeConcernError"] {
            let code = concern["code"].flatMap(Self.integer) ?? 0
            throw MongoError(domain: MongoError.writeConcernDomain, code: UInt32(truncatingIfNeeded: code), message: "write concern error")
        }
        return answer
    }

    static func integer(_ value: BSON) -> Int64? {
        switch value {
        case .int32(let number): Int64(number)
        case .int64(let number): number
        case .double(let number): Int64(exactly: number)
        default: nil
        }
    }

    private static func drain(_ cursor: OpaquePointer, limit: Int) throws -> [BSONDocument] {
        var documents: [BSONDocument] = []
        var current: OpaquePointer?
        while documents.count < limit, mongoc_cursor_next(cursor, &current), let current {
            documents.append(try BSONDocument(bson: current))
        }
        var error = bson_error_t()
        if mongoc_cursor_error(cursor, &error) { throw MongoError(error) }
        return documents
    }
}

/// A write the server refused for one document: its code (11000 duplicate key, 121 validation),
/// which document (`index` in the command's batch), and what the rest of the reply said (how
/// many went in before it).
struct MongoWriteError: Error, CustomStringConvertible {
    var code: UInt32
    var index: Int
    var message: String
    var reply: BSONDocument

    var description: String { "\(message) (code \(code), document \(index))" }
}
