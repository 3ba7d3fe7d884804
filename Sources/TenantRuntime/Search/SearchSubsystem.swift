import Connectors
import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime
import Search
import Tenancy

/// The tenant's search indexes (contract ../shared/contracts/search.md): their definitions in
/// the control plane, their documents in this owner's memory, each kept in sync with its source
/// entity by a supervised child. Indexes are derived: when the tree stops (passivation, a move to
/// another node) they are dropped, and the next owner builds them again from the sources.
public final class SearchSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    let tenant: String
    let store: (any SearchIndexStore)?
    let data: DataSubsystem
    let logger: Logger
    /// Meilisearch's task receipts for this tenant.
    public let tasks = SearchTasks()
    /// The tenant's Pinecone-style vector indexes.
    public let vectors: VectorIndexes
    private let live: NIOLockedValueBox<[String: (index: SearchIndex, sync: SearchSync)]>
    /// Syncs of vector indexes bound to a source column, by index name.
    private let boundSyncs = NIOLockedValueBox([String: SearchSync]())
    private let hub = NIOLockedValueBox<RealtimeHub?>(nil)
    /// Sources whose changes are captured (the rest are read again in full every minute).
    private let captured = NIOLockedValueBox(Set<String>())
    /// Per tenant: a bound on indexes, and on the documents of each (a build that would pass it
    /// fails with MB888, shown on the supervisor endpoint).
    public static let maxIndexes = 64
    public static let maxDocuments = 2_000_000
    static let reconcileInterval: Duration = .seconds(60)
    /// Per tenant: the memory its search and vector indexes may hold together
    /// (`MINIBAAS_SEARCH_MEMORY_MB`, default 1024); a build or upsert beyond it fails with MB888.
    public static let memoryLimit = (ProcessInfo.processInfo.environment["MINIBAAS_SEARCH_MEMORY_MB"].flatMap(Int.init) ?? 1_024) * 1_048_576

    init(tenant: String, supervisor: SubsystemSupervisor, store: (any SearchIndexStore & VectorStore)?, data: DataSubsystem, logger: Logger) {
        let live = NIOLockedValueBox([String: (index: SearchIndex, sync: SearchSync)]())
        let vectors = VectorIndexes(tenant: tenant, store: store, supervisor: supervisor, logger: logger)
        self.live = live
        self.vectors = vectors
        vectors.memoryInUse.withLockedValue { gauge in
            gauge = { live.withLockedValue { $0.values.reduce(0) { $0 + $1.index.estimatedBytes } } + vectors.all.reduce(0) { $0 + $1.estimatedBytes } }
        }
        self.tenant = tenant
        self.supervisor = supervisor
        self.store = store
        self.data = data
        self.logger = logger
    }

    /// The memory the tenant's indexes hold, by estimate.
    public var memoryInUse: Int { vectors.memoryInUse.withLockedValue { $0?() ?? 0 } }

    public func details() async -> [String: String] {
        let indexes = all
        return ["indexes": String(indexes.count), "documents": String(indexes.reduce(0) { $0 + $1.documentCount }),
                "warming": String(indexes.filter { !$0.isReady }.count), "vectorIndexes": String(vectors.all.count),
                "vectors": String(vectors.all.reduce(0) { $0 + $1.total }), "memoryMB": String(memoryInUse / 1_048_576),
                "memoryLimitMB": String(Self.memoryLimit / 1_048_576)]
    }

    public var all: [SearchIndex] { live.withLockedValue { $0.values.map(\.index).sorted { $0.uid < $1.uid } } }
    public func index(_ uid: String) -> SearchIndex? { live.withLockedValue { $0[uid]?.index } }

    /// Loads the stored definitions and starts building each index.
    func start(hub: RealtimeHub) async {
        self.hub.withLockedValue { $0 = hub }
        for (record, index) in await vectors.start() {
            do {
                try await bind(record, index)
            } catch {
                logger.warning("a bound vector index cannot be synced", metadata: ["index": .string(record.name), "error": .string("\(error)")])
            }
        }
        guard let store else { return }
        let records: [SearchIndexRecord]
        do {
            records = try await store.searchIndexes(tenant: tenant)
        } catch {
            logger.warning("cannot read the search indexes; none are served", metadata: ["error": .string("\(error)")])
            return
        }
        for record in records {
            do {
                _ = try await activate(record, task: nil)
            } catch {
                logger.warning("a search index cannot be built", metadata: ["index": .string(record.uid), "error": .string("\(error)")])
            }
        }
        await watchSources()
    }

    // MARK: - Managing indexes

    /// Meilisearch's rule for uids.
    public static func validUID(_ uid: String) -> Bool {
        !uid.isEmpty && uid.utf8.count <= 400 && uid.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    /// A new index over `entity` of `source` (both defaulted: the default database, the entity
    /// named like the index). Checked and stored before the answer; built in the background,
    /// the task settling when the first build is done.
    public func create(uid: String, source sourceName: String?, entity entityName: String?, primaryKey: String?) async throws(SearchError) -> SearchTasks.Task {
        guard Self.validUID(uid) else {
            throw SearchError.badRequest(
                "invalid_index_uid", "`\(uid)` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes.")
        }
        guard let store else { throw SearchError(status: 503, code: "MB899", message: "this node keeps no search index definitions", kind: .system) }
        guard live.withLockedValue({ $0.count }) < Self.maxIndexes else {
            throw SearchError(status: 429, code: "MB888", message: "the tenant has \(Self.maxIndexes) search indexes, the most it may have")
        }
        let (source, entity) = try locate(source: sourceName, entity: entityName ?? uid)
        let key = try Self.primaryKey(primaryKey, of: entity)
        let now = Date()
        var settings = IndexSettings()
        // What users search by default: every column; filters and sorts are opened per setting.
        settings.displayedAttributes = ["*"]
        let record = SearchIndexRecord(
            tenant: tenant, uid: uid, source: source.name, entity: entity.name, primaryKey: key, settings: settings.json, createdAt: now,
            updatedAt: now)
        do {
            try await store.createSearchIndex(record)
        } catch ControlPlaneError.duplicate {
            throw SearchError.indexExists(uid)
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the index could not be stored: \(error)", kind: .internal)
        }
        let task = tasks.enqueue(indexUid: uid, type: "indexCreation", details: ["primaryKey": .string(key)])
        do {
            _ = try await activate(record, task: task.uid)
        } catch {
            tasks.finish(task.uid, error: SearchError(status: 500, code: "MB899", message: "\(error)", kind: .internal))
        }
        await watchSources()
        return task
    }

    /// Replaces settings (a `PATCH /settings` body or one setting); stored before the answer.
    public func updateSettings(uid: String, patch: JSONObject) async throws(SearchError) -> SearchTasks.Task {
        guard let index = index(uid), let store else { throw SearchError.indexNotFound(uid) }
        var settings = index.settings
        try settings.apply(patch)
        let record = SearchIndexRecord(
            tenant: tenant, uid: uid, source: index.source, entity: index.entity, primaryKey: index.primaryKey, settings: settings.json,
            createdAt: index.createdAt, updatedAt: Date())
        do {
            guard try await store.updateSearchIndex(record) else { throw SearchError.indexNotFound(uid) }
        } catch let error as SearchError {
            throw error
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the settings could not be stored: \(error)", kind: .internal)
        }
        let task = tasks.enqueue(indexUid: uid, type: "settingsUpdate", details: patch)
        index.replaceSettings(settings)
        tasks.finish(task.uid)
        return task
    }

    /// `PATCH /indexes/{uid}`: only a primary key equal to the entity's is accepted (the source
    /// decides documents' identity).
    public func update(uid: String, primaryKey: String?) throws(SearchError) -> SearchTasks.Task {
        guard let index = index(uid) else { throw SearchError.indexNotFound(uid) }
        if let primaryKey, primaryKey != index.primaryKey {
            throw SearchError(status: 400, code: "MB882", message: "the index's primary key is `\(index.primaryKey)`, its source entity's key; it cannot be changed")
        }
        let task = tasks.enqueue(indexUid: uid, type: "indexUpdate", details: ["primaryKey": .string(index.primaryKey)])
        tasks.finish(task.uid)
        return task
    }

    public func delete(uid: String) async throws(SearchError) -> SearchTasks.Task {
        guard index(uid) != nil, let store else { throw SearchError.indexNotFound(uid) }
        do {
            _ = try await store.deleteSearchIndex(tenant: tenant, uid: uid)
        } catch {
            throw SearchError(status: 500, code: "MB899", message: "the index could not be deleted: \(error)", kind: .internal)
        }
        let task = tasks.enqueue(indexUid: uid, type: "indexDeletion", details: ["deletedDocuments": .integer(Int64(index(uid)?.documentCount ?? 0))])
        _ = live.withLockedValue { $0.removeValue(forKey: uid) }
        await supervisor.remove(Self.childName(uid))
        tasks.finish(task.uid)
        await watchSources()
        return task
    }

    // MARK: - Vector indexes bound to a source

    /// A vector index mirroring `vectorColumn` of `entity` (ids: its key; metadata: the named
    /// columns). The dimension is given, or read from the first row that has a vector.
    public func createBoundVectors(
        name: String, source sourceName: String?, entity entityName: String, vectorColumn: String, metadataColumns: [String], metric: VectorMetric,
        dimension given: Int?
    ) async throws(SearchError) -> VectorIndex {
        let (source, entity) = try locate(source: sourceName, entity: entityName)
        for column in [vectorColumn] + metadataColumns where entity.column(named: column) == nil {
            throw SearchError(status: 400, code: "MB883", message: "'\(entity.name)' has no column '\(column)'")
        }
        let key = try Self.primaryKey(nil, of: entity)
        var dimension = given
        if dimension == nil {
            do {
                let planner = RestPlanner(model: source.model, access: .service)
                let plan = try planner.read(entity.name, try RestQueryParser.parse([("select", vectorColumn), (vectorColumn, "not.is.null"), ("limit", "1")]))
                let rows = try JSONValue.parse(Array((try await source.read(plan, count: false).body ?? "[]").utf8)).arrayValue ?? []
                dimension = rows.first.flatMap { BoundVectors.vector($0[vectorColumn]) }?.count
            } catch {
                throw SearchError(status: 502, code: "MB899", message: "the source could not be read: \(error)", kind: .system)
            }
        }
        guard let dimension, dimension > 0 else {
            throw SearchError(status: 400, code: "MB893", message: "'\(vectorColumn)' holds no vector yet: give the index's `dimension`")
        }
        let binding: JSONObject = [
            "source": .string(source.name), "entity": .string(entity.name), "vectorColumn": .string(vectorColumn),
            "metadataColumns": .array(metadataColumns.map(JSONValue.string)), "primaryKey": .string(key),
        ]
        let index = try await vectors.create(name: name, dimension: dimension, metric: metric, binding: binding)
        let record = VectorIndexRecord(tenant: tenant, name: name, dimension: dimension, metric: metric.rawValue, createdAt: index.createdAt, binding: binding)
        try await bind(record, index)
        await watchSources()
        return index
    }

    /// Starts the sync of a bound vector index (a supervised child, like a search index's).
    private func bind(_ record: VectorIndexRecord, _ index: VectorIndex) async throws(SearchError) {
        guard let binding = record.binding, let vectorColumn = binding["vectorColumn"]?.stringValue, let key = binding["primaryKey"]?.stringValue else {
            throw SearchError(status: 500, code: "MB899", message: "the stored binding of '\(record.name)' is unreadable", kind: .internal)
        }
        let (source, entity) = try locate(source: binding["source"]?.stringValue, entity: binding["entity"]?.stringValue ?? "")
        let target = BoundVectors(
            index: index, vectors: vectors, primaryKey: key, vectorColumn: vectorColumn,
            metadataColumns: binding["metadataColumns"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        let sync = makeSync(target, source: source, entity: entity)
        boundSyncs.withLockedValue { $0[record.name] = sync }
        await supervisor.start(ChildSpec(name: "vectors:\(record.name)") { try await sync.run {} })
    }

    /// A bound index's sync stops with it.
    public func deleteVectors(name: String) async throws(SearchError) {
        try await vectors.delete(name: name)
        if boundSyncs.withLockedValue({ $0.removeValue(forKey: name) }) != nil { await watchSources() }
    }

    // MARK: - Who sees what

    /// What `caller` may see of `index`: everything for the service role; otherwise its read
    /// policy's columns and rows (no read policy: refused, as the REST API refuses).
    public func view(for caller: Caller, of index: SearchIndex) throws(SearchError) -> SearchView {
        if caller.isServiceRole { return .everything }
        let (source, entity) = try locate(source: index.source, entity: index.entity)
        let authorizer: ChangeAuthorizer
        do {
            authorizer = try ChangeAuthorizer(model: source.model, entity: entity, access: data.access(for: caller), select: nil, filterColumns: [])
        } catch {
            throw SearchError(status: error.status, code: error.code, message: error.message, kind: .auth, hint: error.hint)
        }
        var view = SearchView(columns: authorizer.visibleColumns)
        if authorizer.rows != nil {
            view.rows = { @Sendable row in authorizer.allows(row) }
        }
        return view
    }

    /// Whether `caller` may `action` on vector index `name`: the service role, or a policy on
    /// the entity `vectors:{name}` for the caller's role and that action.
    public func mayUseVectors(_ caller: Caller, index name: String, action: Policy.Action) -> Bool {
        if caller.isServiceRole { return true }
        return data.policies.contains { $0.entity == "vectors:\(name)" && $0.role == caller.role && $0.action == action }
    }

    // MARK: - Building and syncing

    static func childName(_ uid: String) -> String { "index:\(uid)" }

    private func locate(source name: String?, entity entityName: String) throws(SearchError) -> (any DatabaseSource, Entity) {
        let sources = data.sources
        guard let source = name.map({ sources.database(named: $0) }) ?? sources.defaultDatabase else {
            throw SearchError(status: 404, code: "MB880", message: "source '\(name ?? "default")' does not exist or holds no tables")
        }
        guard let entity = source.model.entity(named: entityName) else {
            throw SearchError(
                status: 404, code: "MB880", message: "entity '\(entityName)' does not exist in source '\(source.name)'",
                hint: "name the table with \"entity\" when the index uid differs from it")
        }
        return (source, entity)
    }

    /// The entity's single-column key, or a given column that is unique.
    public static func primaryKey(_ given: String?, of entity: Entity) throws(SearchError) -> String {
        if let given {
            guard entity.column(named: given) != nil, entity.isUnique([given]) else {
                throw SearchError(status: 400, code: "MB882", message: "`\(given)` is not a unique column of '\(entity.name)', so it cannot identify documents")
            }
            return given
        }
        guard entity.primaryKey.count == 1 else {
            throw SearchError(
                status: 400, code: "MB882",
                message: "'\(entity.name)' has \(entity.primaryKey.isEmpty ? "no primary key" : "a primary key of several columns"): name a unique column as primaryKey")
        }
        return entity.primaryKey[0]
    }

    @discardableResult
    private func activate(_ record: SearchIndexRecord, task: Int?) async throws(SearchError) -> SearchIndex {
        let (source, entity) = try locate(source: record.source, entity: record.entity)
        let index = SearchIndex(
            uid: record.uid, source: record.source, entity: record.entity, primaryKey: record.primaryKey, settings: IndexSettings(stored: record.settings),
            createdAt: record.createdAt, updatedAt: record.updatedAt)
        let sync = makeSync(index, source: source, entity: entity)
        live.withLockedValue { $0[record.uid] = (index, sync) }
        let tasks = self.tasks
        let logger = self.logger
        // The creation task settles once: succeeded when the first build is done, failed when it
        // fails (the child keeps retrying with backoff; a waiting client is not left hanging).
        let settled = NIOLockedValueBox(task == nil)
        @Sendable func settle(_ error: SearchError?) {
            guard let task, settled.withLockedValue({ done in defer { done = true }; return !done }) else { return }
            tasks.finish(task, error: error, details: ["primaryKey": .string(record.primaryKey), "indexedDocuments": .integer(Int64(index.documentCount))])
        }
        await supervisor.start(ChildSpec(name: Self.childName(record.uid)) {
            do {
                try await sync.run { settle(nil) }
            } catch {
                if !(error is CancellationError) {
                    settle(error as? SearchError ?? SearchError(status: 502, code: "MB899", message: "the source could not be read: \(error)", kind: .system))
                }
                logger.warning("a search index's sync failed; it restarts", metadata: ["index": .string(record.uid), "error": .string("\(error)")])
                throw error
            }
        })
        return index
    }

    /// A sync of `index` with `entity`: under the tenant's memory budget, and reconciled in full
    /// every minute while its source has no change capture.
    private func makeSync(_ index: any SyncedIndex, source: any DatabaseSource, entity: Entity) -> SearchSync {
        let captured = self.captured
        let vectors = self.vectors
        let name = source.name
        return SearchSync(index: index, source: source, entity: entity, logger: logger, memoryInUse: { vectors.memoryInUse.withLockedValue { $0?() ?? 0 } }) {
            captured.withLockedValue { $0.contains(name) } ? nil : Self.reconcileInterval
        }
    }

    /// Capture for every indexed source, through the realtime hub's one feed per source.
    private func watchSources() async {
        guard let hub = hub.withLockedValue({ $0 }) else { return }
        let live = self.live
        let boundSyncs = self.boundSyncs
        @Sendable func syncs() -> [SearchSync] { live.withLockedValue { $0.values.map(\.sync) } + boundSyncs.withLockedValue { Array($0.values) } }
        let sources = Set(syncs().map(\.source.name))
        let capture = await hub.watch(sources, as: "search") { source, changes in
            for sync in syncs() where sync.source.name == source {
                let entity = sync.entity
                let key = sync.index.primaryKey
                var keys: [String] = []
                for change in changes where change.schema == entity.schema && change.table == entity.name {
                    if let value = SearchIndex.key(of: change.record[key]) { keys.append(value) }
                    if let value = SearchIndex.key(of: change.oldRecord[key]) { keys.append(value) }
                }
                sync.changed(keys: keys)
            }
        }
        captured.withLockedValue { set in
            set = Set(capture.compactMap { $0.value == .available ? $0.key : nil })
        }
    }
}
