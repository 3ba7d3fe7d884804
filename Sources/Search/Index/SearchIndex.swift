import Foundation
import Runtime

/// One live index: its definition, its in-memory documents and lists, and whether its first
/// build is done. Reads and writes take one lock (searches are short; a search over a large
/// index runs off the event loops, see `search`).
public final class SearchIndex: @unchecked Sendable {
    public let uid: String
    public let source: String
    public let entity: String
    public let primaryKey: String
    public let createdAt: Date
    private let lock = Lock()
    private let text: TextIndex
    private var updated: Date
    private var built = false

    public init(uid: String, source: String, entity: String, primaryKey: String, settings: IndexSettings, createdAt: Date, updatedAt: Date) {
        self.uid = uid
        self.source = source
        self.entity = entity
        self.primaryKey = primaryKey
        self.createdAt = createdAt
        self.updated = updatedAt
        self.text = TextIndex(primaryKey: primaryKey, settings: settings)
    }

    public var settings: IndexSettings { lock.withLock { text.settings } }
    public var updatedAt: Date { lock.withLock { max(updated, text.lastUpdate) } }
    /// False until the first build from the source finished (the index is warming).
    public var isReady: Bool { lock.withLock { built } }
    public var documentCount: Int { lock.withLock { text.count } }
    /// About how much memory the index holds (its share of the tenant's search budget).
    public var estimatedBytes: Int { lock.withLock { text.estimatedBytes } }
    public var fieldDistribution: [String: Int] { lock.withLock { text.fieldDistribution.filter { $0.value > 0 } } }

    public func markReady() { lock.withLock { built = true } }

    public func replaceSettings(_ settings: IndexSettings) {
        lock.withLock {
            text.replaceSettings(settings)
            updated = Date()
        }
    }

    @discardableResult
    public func upsert(_ documents: [JSONObject]) -> Int { lock.withLock { text.upsert(documents) } }
    public func delete(keys: [String]) { lock.withLock { text.delete(keys: keys) } }
    public var keys: [String] { lock.withLock { text.allKeys } }
    public func document(key: String) -> JSONObject? { lock.withLock { text.document(key: key) } }

    /// Every live document the view lets through, in insertion order.
    public func documents(where visible: (@Sendable ((String) -> JSONValue?) -> Bool)) -> [JSONObject] {
        lock.withLock {
            text.liveIDs.filter { id in visible { text.field(id, $0) } }.map(text.document)
        }
    }

    /// A page of documents in insertion order (`GET …/documents`), with the total.
    public func documents(offset: Int, limit: Int) -> (documents: [JSONObject], total: Int) {
        lock.withLock {
            (text.liveIDs.dropFirst(offset).prefix(limit).map(text.document), text.count)
        }
    }

    /// The key of a row as documents are keyed (`nil`: it has none).
    public static func key(of value: JSONValue?) -> String? { TextIndex.key(of: value) }

    /// Runs `query` as `view` sees the index. Large indexes are searched on the blocking pool,
    /// so a search never stalls an event loop.
    public func search(_ query: SearchQuery, view: SearchView) async throws -> JSONObject {
        let run: @Sendable () throws -> JSONObject = { [self] in
            try lock.withLock { () throws(SearchError) -> JSONObject in
                try SearchEngine(index: text, query: query, view: view).run()
            }
        }
        if documentCount < 2_000 { return try run() }
        return try await offloaded(run)
    }
}
