import Foundation
import Logging
import Runtime
import Tenancy

/// A tenant's MongoDB database as a source: the sampled model served through the same REST
/// grammar, policies and realtime as SQL sources. Reads are one aggregation each (plus one for
/// `count=exact`); writes read the `_id`s they touch first, so what is answered, checked and
/// published is known before anything is written. Connections and threads are the source's own
/// (`MongoConnections`), opened when the tree runs the source and closed when it stops it.
public final class MongoSource: Sendable {
    public let name: String
    public let model: SchemaModel
    public let database: String
    /// The sealed URL, opened: the change stream connects with a client of its own.
    let url: String
    /// Whether the source's own changes are read from change streams (a replica set or sharded
    /// cluster registered with `changeStreams: auto`); otherwise REST writes are published.
    public let changeStreams: Bool
    let connections: MongoConnections
    let logger: Logger

    public struct Settings: Sendable {
        public var maxConnections = 10
        public var acquireTimeout: Duration = .seconds(5)
        /// The tenant's request deadline: each command gets 90 % of it as `maxTimeMS`.
        public var requestTimeoutMs = 30_000
        public init() {}
    }

    public init(name: String, url: String, database: String, model: SchemaModel, changeStreams: Bool = false, settings: Settings, logger: Logger) throws {
        self.name = name
        self.url = url
        self.changeStreams = changeStreams
        self.model = model
        self.database = database
        var logger = logger
        logger[metadataKey: "source"] = .string(name)
        self.logger = logger
        var pool = MongoConnections.Settings()
        pool.maxConnections = max(1, settings.maxConnections)
        pool.acquireTimeout = settings.acquireTimeout
        pool.maxTimeMS = Int32(clamping: max(50, settings.requestTimeoutMs * 9 / 10))
        pool.socketTimeoutMS = Int32(clamping: settings.requestTimeoutMs + 1_000)
        self.connections = try MongoConnections(source: name, url: url, database: database, settings: pool)
    }

    var maxTimeMS: Int32 { connections.settings.maxTimeMS }

    /// The source's life as a supervised child of the tenant's tree: its pool lives until
    /// cancelled, then running commands finish and the clients close.
    public func runPool() async {
        await untilCancelled()
        await connections.close()
    }

    /// Runs `body` on one of the source's threads with a client, errors in REST terms.
    func session<T: Sendable>(_ body: @escaping @Sendable (MongoSession) throws -> T) async throws -> T {
        do {
            return try await connections.run(body)
        } catch {
            throw MongoErrorMapping.restError(error, source: name)
        }
    }

    // MARK: - Reads

    public func read(_ plan: ReadPlan, count: Bool) async throws -> StatementResult {
        var renderer = MongoRenderer()
        let find = try renderer.find(plan)
        let pipeline = find == nil ? try renderer.pipeline(plan) : []
        let countPipeline = count ? try renderer.countPipeline(plan) : nil
        let collection = plan.entity.name
        let maxTimeMS = self.maxTimeMS
        return try await session { session in
            let documents = try find.map { try session.find(collection, $0, maxTimeMS: maxTimeMS) }
                ?? session.aggregate(collection, pipeline: pipeline, maxTimeMS: maxTimeMS)
            var total: Int?
            if let countPipeline {
                let counted = try session.aggregate(collection, pipeline: countPipeline, maxTimeMS: maxTimeMS)
                total = Int(counted.first?["n"].flatMap(MongoSession.integer) ?? 0)
            }
            return StatementResult(body: try MongoRows.array(documents, plan: plan), count: documents.count, total: total)
        }
    }

    /// Exact: the server's collection estimate ignores filters.
    public func estimate(_ plan: ReadPlan) async throws -> Int {
        var renderer = MongoRenderer()
        let pipeline = try renderer.countPipeline(plan)
        let collection = plan.entity.name
        let maxTimeMS = self.maxTimeMS
        return try await session { session in
            Int(try session.aggregate(collection, pipeline: pipeline, maxTimeMS: maxTimeMS).first?["n"].flatMap(MongoSession.integer) ?? 0)
        }
    }

    // MARK: - Writes

    public func write(_ plan: WritePlan, returnRows: Bool, publishRows: Bool, rollback: Bool, expecting rows: WrittenRows) async throws -> StatementResult {
        guard !rollback else {
            throw RestError(
                status: 400, code: "MB337", message: "Prefer: tx=rollback is not available on a MongoDB source",
                hint: "a MongoDB write cannot be undone after the fact; send the request without it")
        }
        guard plan.target.entity.kind == .collection else {
            throw RestError(status: 405, code: "MB337", message: "'\(plan.target.entity.name)' is a view of the MongoDB source and cannot be written")
        }
        let writer = MongoWriter(plan: plan, returnRows: returnRows, publishRows: publishRows, expecting: rows, maxTimeMS: maxTimeMS, source: name)
        return try await session { session in try writer.run(session) }
    }

    public func call(_ plan: CallPlan, rollback: Bool) async throws -> StatementResult {
        throw RestError(
            status: 404, code: "PGRST202", message: "Could not find the function '\(plan.operation.name)' in the schema cache",
            hint: "a MongoDB source has no functions")
    }

    /// Row rules decided against row images (realtime deliveries): in process, except rules
    /// reaching across a relation, which the server decides for the stored document with the
    /// image's `_id` (a deleted document no longer satisfies them).
    public func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) async throws -> [Bool] {
        var answers = [Bool](repeating: false, count: checks.count)
        var queries: [(index: Int, collection: String, pipeline: [BSON])] = []
        for (index, check) in checks.enumerated() where rows.indices.contains(check.row) {
            let row = rows[check.row]
            guard ChangeAuthorizer.reachesRelation(check.rule) else {
                answers[index] = ChangeAuthorizer.evaluate(check.rule, row.values) == true
                continue
            }
            guard let id = row.values["_id"], let column = row.entity.column(named: "_id"),
                let stored = try? MongoValues.value(id, native: column.nativeType, column: "_id", pointer: "/_id")
            else { continue }
            var renderer = MongoRenderer()
            let (stages, match) = try renderer.rule(check.rule, entity: row.entity)
            queries.append((index, row.entity.name, [.document(["$match": .document(["_id": stored])])] + stages + [
                .document(["$match": .document(match)]), .document(["$count": .string("n")]),
            ]))
        }
        guard !queries.isEmpty else { return answers }
        let maxTimeMS = self.maxTimeMS
        let asked = queries
        let found = try await session { session in
            try asked.map { query in (query.index, (try session.aggregate(query.collection, pipeline: query.pipeline, maxTimeMS: maxTimeMS).first?["n"]).flatMap(MongoSession.integer) ?? 0) }
        }
        for (index, count) in found { answers[index] = count > 0 }
        return answers
    }
}

extension MongoSource: DatabaseSource {
    public var kind: SourceKind { .mongodb }
    public var serving: SourceServing { .database }
    /// With change streams the server's own changes are delivered (and REST writes are not
    /// published twice); without, writes through the REST API are published.
    public var canCaptureChanges: Bool { changeStreams }
}
