import CMongoc
import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime

/// A MongoDB source's own changes, for realtime and webhooks, where the server keeps them (a
/// replica set or a sharded cluster): one `database.watch` per source on a thread of its own
/// (libmongoc blocks), with `fullDocument: updateLookup` and pre-images where the server has them.
/// Each event is handed over and dispatched before the next is read, and its resume token is
/// kept only then (at least once); a restart of the stream (the realtime subsystem restarts it
/// with backoff) resumes after the last dispatched event. The token lives in memory: a node that
/// restarts starts from the present, and says so in its log.
///
/// Not exercised by the tests here: the test server (mongoeco) has no change streams.
public final class MongoChangeStream: Sendable {
    let url: String
    let database: String
    let model: SchemaModel
    let logger: Logger
    private let resumeToken = NIOLockedValueBox<BSONDocument?>(nil)

    public init(source: MongoSource, logger: Logger) {
        self.url = source.url
        self.database = source.database
        self.model = source.model
        self.logger = logger
    }

    /// Runs until cancelled; throws when the stream fails (the caller restarts it).
    public func run(_ deliver: @escaping @Sendable ([ChangeEvent]) async -> Void) async throws {
        let handoff = Handoff()
        let (events, continuation) = AsyncThrowingStream<ChangeEvent, any Error>.makeStream()
        let thread = Thread { [self] in
            do {
                try self.read(handoff: handoff) { event in continuation.yield(event) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        thread.name = "mongo-change-stream"
        thread.start()
        defer { handoff.cancel() }
        try await withTaskCancellationHandler {
            for try await event in events {
                await deliver([event])
                handoff.dispatched()
            }
        } onCancel: {
            handoff.cancel()
        }
    }

    /// The blocking read loop, on the stream's own thread.
    private func read(handoff: Handoff, yield: (ChangeEvent) -> Void) throws {
        _ = MongoLibrary.ready
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(url, &error) else { throw MongoError(error) }
        defer { mongoc_uri_destroy(uri) }
        guard let client = mongoc_client_new_from_uri_with_error(uri, &error) else { throw MongoError(error) }
        defer { mongoc_client_destroy(client) }
        mongoc_client_set_error_api(client, 2)
        guard let handle = mongoc_client_get_database(client, database) else { throw MongoError(domain: MongoError.clientDomain, code: 0, message: "no database") }
        defer { mongoc_database_destroy(handle) }
        var options: BSONDocument = [
            "fullDocument": .string("updateLookup"), "fullDocumentBeforeChange": .string("whenAvailable"), "maxAwaitTimeMS": .int32(1_000),
        ]
        if let token = resumeToken.withLockedValue({ $0 }) { options.append("resumeAfter", .document(token)) }
        try BSONDocument.withBSONArray([]) { pipeline in
            try options.withBSON { opts in
                guard let stream = mongoc_database_watch(handle, pipeline, opts) else {
                    throw MongoError(domain: MongoError.clientDomain, code: 0, message: "cannot open the change stream")
                }
                defer { mongoc_change_stream_destroy(stream) }
                while !handoff.isCancelled {
                    var current: OpaquePointer?
                    if mongoc_change_stream_next(stream, &current), let current {
                        let document = try BSONDocument(bson: current)
                        if let event = self.event(document) {
                            yield(event)
                            guard handoff.waitForDispatch() else { return }
                        }
                        if let token = mongoc_change_stream_get_resume_token(stream) {
                            let kept = try BSONDocument(bson: token)
                            resumeToken.withLockedValue { $0 = kept }
                        }
                        continue
                    }
                    var failure = bson_error_t()
                    var reply: OpaquePointer?
                    if mongoc_change_stream_error_document(stream, &failure, &reply) { throw MongoError(failure) }
                }
            }
        }
    }

    /// A change event as realtime and webhooks see it: `schema` the database, `table` the
    /// collection, rows with the model's columns; events of other kinds or collections are skipped.
    func event(_ document: BSONDocument) -> ChangeEvent? {
        guard case .string(let operation)? = document["operationType"], case .document(let namespace)? = document["ns"],
            case .string(let collection)? = namespace["coll"], let entity = model.entity(named: collection)
        else { return nil }
        let kind: ChangeEvent.Kind
        switch operation {
        case "insert": kind = .insert
        case "update", "replace": kind = .update
        case "delete": kind = .delete
        default: return nil
        }
        func image(_ key: String) -> JSONObject {
            if case .document(let row)? = document[key] { return MongoRows.image(row, entity: entity) }
            return [:]
        }
        var old = image("fullDocumentBeforeChange")
        if kind == .delete, old.isEmpty { old = image("documentKey") }
        var at = Date()
        if case .date(let milliseconds)? = document["wallTime"] { at = Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
        return ChangeEvent(
            schema: database, table: collection, kind: kind, commitTimestamp: MongoJSON.isoDate(Int64(at.timeIntervalSince1970 * 1000)),
            record: kind == .delete ? [:] : image("fullDocument"), oldRecord: old,
            columns: entity.columns.map { (name: $0.name, type: $0.nativeType) })
    }

    /// The read thread waits for each event to be dispatched before it reads on (and keeps the
    /// event's resume token only then); cancelling releases it.
    final class Handoff: @unchecked Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private let cancelled = NIOLockedValueBox(false)

        var isCancelled: Bool { cancelled.withLockedValue { $0 } }

        func dispatched() { semaphore.signal() }

        func cancel() {
            cancelled.withLockedValue { $0 = true }
            semaphore.signal()
        }

        /// False once cancelled.
        func waitForDispatch() -> Bool {
            while semaphore.wait(timeout: .now() + 1) == .timedOut {
                if isCancelled { return false }
            }
            return !isCancelled
        }
    }
}
