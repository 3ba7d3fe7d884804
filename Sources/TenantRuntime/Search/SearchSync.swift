import Connectors
import Foundation
import Logging
import NIOConcurrencyHelpers
import Runtime
import Search

/// What a sync keeps equal to a source entity: a search index, or a vector index bound to a
/// column of it.
protocol SyncedIndex: AnyObject, Sendable {
    var name: String { get }
    var primaryKey: String { get }
    var isReady: Bool { get }
    func markReady()
    var documentCount: Int { get }
    var keys: [String] { get }
    /// Rows as the source answers them: added or replaced by key.
    func apply(rows: [JSONObject])
    func remove(keys: [String])
}

extension SearchIndex: SyncedIndex {
    var name: String { uid }
    func apply(rows: [JSONObject]) { upsert(rows) }
    func remove(keys: [String]) { delete(keys: keys) }
}

/// Keeps one index equal to its source entity: a full keyset scan to build it (and again as the
/// reconcile of sources without change capture), then the keys the change feed or REST writes
/// name, read again from the source in batches — a decoded change may lack unchanged large
/// values, and the source's row is the truth — upserted when found and deleted when gone.
/// Runs as a supervised child: a failing read throws, and the restart scans again.
final class SearchSync: Sendable {
    let index: any SyncedIndex
    let source: any DatabaseSource
    let entity: Entity
    let logger: Logger
    /// Full scans again at this interval (sources without change capture); nil: only at start.
    let reconcileEvery: @Sendable () -> Duration?
    /// The tenant's search memory in use, checked against `SearchSubsystem.memoryLimit` per page.
    let memoryInUse: @Sendable () -> Int
    private let pending = NIOLockedValueBox(Set<String>())

    static let page = 1_000
    static let refreshBatch = 200

    init(
        index: any SyncedIndex, source: any DatabaseSource, entity: Entity, logger: Logger, memoryInUse: @escaping @Sendable () -> Int,
        reconcileEvery: @escaping @Sendable () -> Duration?
    ) {
        self.memoryInUse = memoryInUse
        self.index = index
        self.source = source
        self.entity = entity
        self.logger = logger
        self.reconcileEvery = reconcileEvery
    }

    /// Rows of the entity changed: their keys are read again at once (changes arriving within a
    /// few milliseconds of each other share one statement).
    func changed(keys: [String]) {
        guard !keys.isEmpty else { return }
        pending.withLockedValue { $0.formUnion(keys) }
        bell.ring()
    }

    private let bell = SyncBell()

    var hasPending: Bool { pending.withLockedValue { !$0.isEmpty } }

    func run(built: @escaping @Sendable () -> Void) async throws {
        try await scan()
        if !index.isReady {
            index.markReady()
            built()
        }
        var lastScan = ContinuousClock.now
        while !Task.isCancelled {
            // Woken by a change, or after a second to see whether a reconcile is due.
            await bell.wait(atMost: .seconds(1))
            try await Task.sleep(for: .milliseconds(5))
            let keys = pending.withLockedValue { keys -> [String] in
                defer { keys.removeAll() }
                return Array(keys)
            }
            if !keys.isEmpty {
                do {
                    try await refresh(keys)
                } catch {
                    // Put back for the restart's scan to cover; the child restarts with backoff.
                    changed(keys: keys)
                    throw error
                }
            }
            if let every = reconcileEvery(), ContinuousClock.now - lastScan >= every {
                try await scan()
                lastScan = .now
            }
        }
    }

    /// Reads the whole entity in key order, a page at a time, and drops documents the source no
    /// longer has.
    func scan() async throws {
        let key = index.primaryKey
        var seen = Set<String>()
        var after: String?
        while !Task.isCancelled {
            var parameters = [("select", "*"), ("order", "\(key).asc"), ("limit", String(Self.page))]
            if let after { parameters.append((key, "gt.\(after)")) }
            let rows = try await read(parameters)
            // The index as it stands (a reconcile re-reads rows it already has).
            guard index.documentCount <= SearchSubsystem.maxDocuments else {
                throw SearchError(status: 429, code: "MB888", message: "index `\(index.name)` would hold more than \(SearchSubsystem.maxDocuments) documents")
            }
            guard memoryInUse() <= SearchSubsystem.memoryLimit else {
                throw SearchError(
                    status: 429, code: "MB888",
                    message: "the tenant's search indexes hold about \(memoryInUse() / 1_048_576) MB, over its \(SearchSubsystem.memoryLimit / 1_048_576) MB (MINIBAAS_SEARCH_MEMORY_MB)")
            }
            index.apply(rows: rows)
            for row in rows { if let id = SearchIndex.key(of: row[key]) { seen.insert(id) } }
            guard rows.count == Self.page, let last = rows.last.flatMap({ SearchIndex.key(of: $0[key]) }) else { break }
            after = last
            // Long scans leave the executor to others between pages.
            await Task.yield()
        }
        guard !Task.isCancelled else { return }
        let gone = index.keys.filter { !seen.contains($0) }
        if !gone.isEmpty { index.remove(keys: gone) }
        // The scan parsed every row once; hand the freed pages back rather than keep them
        // counted against the node.
        FreedMemory.giveBack()
    }

    func refresh(_ keys: [String]) async throws {
        for start in stride(from: 0, to: keys.count, by: Self.refreshBatch) {
            let batch = Array(keys[start..<min(start + Self.refreshBatch, keys.count)])
            let list = batch.map(Self.quoted).joined(separator: ",")
            let rows = try await read([("select", "*"), (index.primaryKey, "in.(\(list))")])
            index.apply(rows: rows)
            let found = Set(rows.compactMap { SearchIndex.key(of: $0[index.primaryKey]) })
            let gone = batch.filter { !found.contains($0) }
            if !gone.isEmpty { index.remove(keys: gone) }
        }
    }

    /// A value in PostgREST's `in.(…)` list: double-quoted, backslash and quote escaped.
    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Rows of the entity through the REST planner with the service role: one statement, every
    /// value a bind.
    private func read(_ parameters: [(String, String)]) async throws -> [JSONObject] {
        let planner = RestPlanner(model: source.model, access: .service)
        let plan = try planner.read(entity.name, try RestQueryParser.parse(parameters))
        let result = try await source.read(plan, count: false)
        return (try JSONValue.parse(Array((result.body ?? "[]").utf8)).arrayValue ?? []).compactMap(\.objectValue)
    }
}

/// A wake-up that is never lost: a ring while nobody waits is kept for the next wait.
final class SyncBell: Sendable {
    private enum State {
        case quiet
        case rung
        case waiting(CheckedContinuation<Void, Never>, UInt64)
    }
    private let state = NIOLockedValueBox((State.quiet, UInt64(0)))

    func ring() {
        let waiting = state.withLockedValue { value -> CheckedContinuation<Void, Never>? in
            if case .waiting(let continuation, _) = value.0 {
                value.0 = .quiet
                return continuation
            }
            value.0 = .rung
            return nil
        }
        waiting?.resume()
    }

    /// Until a ring, `limit` passes, or the task is cancelled.
    func wait(atMost limit: Duration) async {
        let ticket = state.withLockedValue { value -> UInt64 in
            value.1 += 1
            return value.1
        }
        let timer = Task { [self] in
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            wake(ticket)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { value -> Bool in
                    if case .rung = value.0 {
                        value.0 = .quiet
                        return true
                    }
                    value.0 = .waiting(continuation, ticket)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(ticket)
        }
        timer.cancel()
    }

    /// Resumes the wait `ticket` if it is still the one waiting (a late timer finds nothing).
    private func wake(_ ticket: UInt64) {
        let waiting = state.withLockedValue { value -> CheckedContinuation<Void, Never>? in
            if case .waiting(let continuation, let current) = value.0, current == ticket {
                value.0 = .quiet
                return continuation
            }
            return nil
        }
        waiting?.resume()
    }
}
