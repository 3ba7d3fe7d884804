import Connectors
import Foundation
import Runtime
import Tenancy

extension TenantStorage {
    public enum SortColumn: String, Sendable { case name, created_at, updated_at, last_accessed_at }

    /// One line of a folder listing: a file (its row) or a folder (a name prefix).
    public enum ListEntry: Sendable {
        case folder(name: String)
        case file(name: String, object: StoredObject)

        public var name: String {
            switch self {
            case .folder(let name), .file(let name, _): name
            }
        }
    }

    public struct ListRequest: Sendable {
        public var prefix: String
        public var search: String
        public var limit: Int
        public var offset: Int
        public var sortColumn: SortColumn
        public var descending: Bool
        public init(prefix: String, search: String, limit: Int, offset: Int, sortColumn: SortColumn, descending: Bool) {
            self.prefix = prefix
            self.search = search
            self.limit = limit
            self.offset = offset
            self.sortColumn = sortColumn
            self.descending = descending
        }
    }

    /// Supabase's folder listing (`POST /object/list/{bucket}`): the files directly under
    /// `prefix` and its sub-folders (once each), names relative to the prefix, filtered by
    /// `search` as a name prefix, sorted, then paged. Objects the caller may not read are not
    /// listed; a folder shows when it holds one the caller may read.
    public func list(bucket: String, _ request: ListRequest, access: Access) async throws -> [ListEntry] {
        guard try await store.bucket(tenant: tenant, id: bucket) != nil else { throw StorageError.bucketNotFound(bucket) }
        var prefix = try StorageNames.prefix(request.prefix)
        if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
        var folders: Set<String> = []
        var entries: [ListEntry] = []
        try await scan(bucket: bucket, prefix: prefix + request.search, access: access) { object in
            let relative = String(object.name.dropFirst(prefix.count))
            if let slash = relative.firstIndex(of: "/") {
                let folder = String(relative[..<slash])
                if folders.insert(folder).inserted { entries.append(.folder(name: folder)) }
            } else {
                entries.append(.file(name: relative, object: object))
            }
        }
        entries.sort { a, b in
            let ordered = Self.before(a, b, request.sortColumn)
            return request.descending ? Self.before(b, a, request.sortColumn) : ordered
        }
        return Array(entries.dropFirst(max(0, request.offset)).prefix(max(0, request.limit)))
    }

    public struct ListV2Request: Sendable {
        public var prefix: String
        public var cursor: String?
        public var limit: Int
        public var withDelimiter: Bool
        public init(prefix: String, cursor: String?, limit: Int, withDelimiter: Bool) {
            self.prefix = prefix
            self.cursor = cursor
            self.limit = limit
            self.withDelimiter = withDelimiter
        }
    }

    public struct ListV2Page: Sendable {
        public var folders: [String]
        public var objects: [StoredObject]
        public var nextCursor: String?
    }

    /// `POST /object/list-v2/{bucket}`: full names by name, from a cursor; with a delimiter,
    /// deeper names fold into their folder (`prefix/sub/`).
    public func listV2(bucket: String, _ request: ListV2Request, access: Access) async throws -> ListV2Page {
        guard try await store.bucket(tenant: tenant, id: bucket) != nil else { throw StorageError.bucketNotFound(bucket) }
        let prefix = try StorageNames.prefix(request.prefix)
        var page = ListV2Page(folders: [], objects: [], nextCursor: nil)
        var seen = 0
        var last: String?
        var after = request.cursor
        pages: while true {
            let batch = try await store.objects(tenant: tenant, bucket: bucket, prefix: prefix, after: after, limit: 1000)
            for object in batch {
                after = object.name
                guard try decide(.read, StorageEntities.objects, StorageEntities.row(object), .existing, access) else { continue }
                if request.withDelimiter, let slash = object.name.dropFirst(prefix.count).firstIndex(of: "/") {
                    let folder = String(object.name[..<object.name.index(after: slash)])
                    if page.folders.last == folder { continue }
                    if seen == request.limit {
                        page.nextCursor = last
                        break pages
                    }
                    page.folders.append(folder)
                    // Skip the rest of the folder at once: names in it sort right after this one.
                    after = folder + "\u{10FFFF}"
                    last = after
                    seen += 1
                    continue pages
                }
                if seen == request.limit {
                    page.nextCursor = last
                    break pages
                }
                page.objects.append(object)
                last = object.name
                seen += 1
            }
            if batch.count < 1000 { break }
        }
        return page
    }

    public struct S3ListPage: Sendable {
        public var contents: [StoredObject] = []
        public var commonPrefixes: [String] = []
        public var isTruncated = false
        /// The last key or common prefix listed: where the next page starts.
        public var last: String?
    }

    /// S3's listing: keys by name after `after`, those whose rest (after `prefix`) holds the
    /// delimiter rolled up into one common prefix each; at most `maxKeys` entries in all.
    public func listObjects(bucket: String, prefix: String, delimiter: String?, after: String?, maxKeys: Int, access: Access) async throws -> S3ListPage {
        guard try await store.bucket(tenant: tenant, id: bucket) != nil else { throw StorageError.bucketNotFound(bucket) }
        var page = S3ListPage()
        guard maxKeys > 0 else { return page }
        var cursor = after
        // A page that ended on a common prefix resumes after everything under it.
        if let delimiter, !delimiter.isEmpty, let after, after.hasSuffix(delimiter), after.hasPrefix(prefix) { cursor = after + "\u{10FFFF}" }
        scanning: while true {
            let batch = try await store.objects(tenant: tenant, bucket: bucket, prefix: prefix, after: cursor, limit: 1000)
            for object in batch {
                cursor = object.name
                guard try decide(.read, StorageEntities.objects, StorageEntities.row(object), .existing, access) else { continue }
                let rest = object.name.dropFirst(prefix.count)
                var entry = object.name
                var isPrefix = false
                if let delimiter, !delimiter.isEmpty, let found = rest.range(of: delimiter) {
                    entry = prefix + String(rest[..<found.upperBound])
                    isPrefix = true
                    if entry == page.last { continue }
                }
                if page.contents.count + page.commonPrefixes.count == maxKeys {
                    page.isTruncated = true
                    break scanning
                }
                if isPrefix {
                    page.commonPrefixes.append(entry)
                    // Everything else under this prefix sorts right after it: skip it in one step.
                    cursor = entry + "\u{10FFFF}"
                    page.last = entry
                    continue scanning
                }
                page.contents.append(object)
                page.last = entry
            }
            if batch.count < 1000 { break }
        }
        return page
    }

    /// Every object under `prefix` the caller may read, in name order.
    func scan(bucket: String, prefix: String, access: Access, _ visit: (StoredObject) throws -> Void) async throws {
        var after: String?
        while true {
            let batch = try await store.objects(tenant: tenant, bucket: bucket, prefix: prefix, after: after, limit: 1000)
            for object in batch where try decide(.read, StorageEntities.objects, StorageEntities.row(object), .existing, access) {
                try visit(object)
            }
            guard batch.count == 1000, let lastName = batch.last?.name else { return }
            after = lastName
        }
    }

    static func before(_ a: ListEntry, _ b: ListEntry, _ column: SortColumn) -> Bool {
        func date(_ entry: ListEntry) -> Date? {
            guard case .file(_, let object) = entry else { return nil }
            switch column {
            case .created_at: return object.createdAt
            case .updated_at, .last_accessed_at: return object.updatedAt
            case .name: return nil
            }
        }
        if column != .name, let left = date(a), let right = date(b), left != right { return left < right }
        return a.name < b.name
    }
}
