import Foundation
import Runtime

/// A search index as the control plane keeps it: which source entity it mirrors and its
/// Meilisearch settings (kept as the JSON the API accepted, so settings this version does not
/// act on yet survive a round trip). The index itself is derived and lives in the owner's memory.
public struct SearchIndexRecord: Sendable, Equatable {
    public var tenant: String
    public var uid: String
    public var source: String
    public var entity: String
    public var primaryKey: String
    public var settings: JSONObject
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenant: String, uid: String, source: String, entity: String, primaryKey: String, settings: JSONObject, createdAt: Date, updatedAt: Date
    ) {
        self.tenant = tenant
        self.uid = uid
        self.source = source
        self.entity = entity
        self.primaryKey = primaryKey
        self.settings = settings
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Search index definitions in the control plane.
public protocol SearchIndexStore: Sendable {
    func searchIndexes(tenant: String) async throws -> [SearchIndexRecord]
    /// Throws `ControlPlaneError.duplicate` when the uid is taken.
    func createSearchIndex(_ index: SearchIndexRecord) async throws
    /// False when there is no such index.
    func updateSearchIndex(_ index: SearchIndexRecord) async throws -> Bool
    func deleteSearchIndex(tenant: String, uid: String) async throws -> Bool
}
