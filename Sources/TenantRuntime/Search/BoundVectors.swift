import Foundation
import Runtime
import Search

/// A vector index mirroring a column of a source entity (a `real[]`, `float8[]`, JSON array or
/// pgvector column): its records are the entity's rows — id the primary key, values the column,
/// metadata the named columns — kept in sync like a search index, and read-only through the API
/// (MB898: write the rows). Rows whose column is null or not a vector of the index's dimension are
/// left out.
final class BoundVectors: SyncedIndex {
    let index: VectorIndex
    let vectors: VectorIndexes
    let primaryKey: String
    let vectorColumn: String
    let metadataColumns: [String]

    init(index: VectorIndex, vectors: VectorIndexes, primaryKey: String, vectorColumn: String, metadataColumns: [String]) {
        self.index = index
        self.vectors = vectors
        self.primaryKey = primaryKey
        self.vectorColumn = vectorColumn
        self.metadataColumns = metadataColumns
    }

    var name: String { index.name }
    var isReady: Bool { vectors.isReady(index.name) }
    func markReady() { vectors.markReady(index.name) }
    var documentCount: Int { index.total }
    var keys: [String] { index.ids(namespace: "") }

    func apply(rows: [JSONObject]) {
        var records: [VectorRecord] = []
        var unusable: [String] = []
        for row in rows {
            guard let id = SearchIndex.key(of: row[primaryKey]) else { continue }
            guard let values = Self.vector(row[vectorColumn]), values.count == index.dimension, values.allSatisfy(\.isFinite) else {
                unusable.append(id)
                continue
            }
            var metadata = JSONObject()
            for column in metadataColumns {
                if let value = row[column], value != .null { metadata[column] = value }
            }
            records.append(VectorRecord(id: id, values: values, metadata: metadata.isEmpty ? nil : metadata))
        }
        if !unusable.isEmpty { index.delete(ids: unusable, namespace: "") }
        if !records.isEmpty { index.upsert(records, namespace: "") }
    }

    func remove(keys: [String]) { index.delete(ids: keys, namespace: "") }

    /// A JSON array of numbers, or pgvector's text form `[1,2,3]` (and PostgreSQL's `{1,2,3}`).
    static func vector(_ value: JSONValue?) -> [Float]? {
        switch value {
        case .array(let items)?:
            let numbers = items.compactMap(\.doubleValue)
            return numbers.count == items.count ? numbers.map(Float.init) : nil
        case .string(let text)?:
            let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "[]{} "))
            guard !inner.isEmpty else { return [] }
            let parts = inner.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            return parts.allSatisfy { $0 != nil } ? parts.map { $0! } : nil
        default:
            return nil
        }
    }
}
