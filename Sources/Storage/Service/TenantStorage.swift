import Connectors
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Runtime
import Tenancy

/// One tenant's object storage: buckets and objects as rows in the control plane, bytes in a
/// blob store, every action decided by the tenant's policies on `storage.buckets` and
/// `storage.objects` (the service role bypasses them), and the tenant's quotas enforced while
/// bytes stream. Transport-free: the Supabase API, S3 and TUS all call these methods.
public final class TenantStorage: Sendable {
    public let tenant: String
    let store: any StorageStore
    let blobs: any BlobStore
    let limits: @Sendable () -> StorageLimits
    /// libvips renders, shared by the node's tenants; nil where libvips could not start.
    let images: ImageTransformer?
    let ledger = StorageLedger()
    /// Resumable uploads with a chunk being written right now.
    let activeUploads = NIOLockedValueBox<Set<String>>([])
    /// Buckets read on every object request, remembered for a second; changes made on this node
    /// forget them at once (other nodes' within the second).
    let bucketRows = NIOLockedValueBox<[String: (row: StorageBucket?, at: ContinuousClock.Instant)]>([:])
    let logger: Logger

    public init(
        tenant: String, store: any StorageStore, blobs: any BlobStore, images: ImageTransformer? = nil, limits: @escaping @Sendable () -> StorageLimits,
        logger: Logger
    ) {
        self.tenant = tenant
        self.store = store
        self.blobs = blobs
        self.images = images
        self.limits = limits
        self.logger = logger
    }

    // MARK: - Buckets

    public func buckets(_ access: Access) async throws -> [StorageBucket] {
        try await store.buckets(tenant: tenant).filter { bucket in try readable(bucket, access) }
    }

    public func bucket(_ id: String, _ access: Access) async throws -> StorageBucket {
        guard let bucket = try await store.bucket(tenant: tenant, id: id), try readable(bucket, access) else { throw StorageError.bucketNotFound(id) }
        return bucket
    }

    /// The bucket row, from the one-second memory when it is there.
    func bucketRow(_ id: String) async throws -> StorageBucket? {
        let now = ContinuousClock.now
        if let remembered = bucketRows.withLockedValue({ $0[id] }), now - remembered.at < .seconds(1) { return remembered.row }
        let row = try await store.bucket(tenant: tenant, id: id)
        bucketRows.withLockedValue { rows in
            if rows.count > 1000 { rows.removeAll() }
            rows[id] = (row, now)
        }
        return row
    }

    func forgetBucket(_ id: String) {
        _ = bucketRows.withLockedValue { $0.removeValue(forKey: id) }
    }

    public struct BucketSettings: Sendable {
        public var isPublic: Bool?
        /// `.some(nil)` clears the limit.
        public var fileSizeLimit: Int??
        public var allowedMimeTypes: [String]??
        public init(isPublic: Bool? = nil, fileSizeLimit: Int?? = nil, allowedMimeTypes: [String]?? = nil) {
            self.isPublic = isPublic
            self.fileSizeLimit = fileSizeLimit
            self.allowedMimeTypes = allowedMimeTypes
        }
    }

    public func createBucket(id: String, name: String?, settings: BucketSettings, access: Access) async throws -> StorageBucket {
        let id = try StorageNames.bucket(id)
        let now = Date()
        let bucket = StorageBucket(
            tenant: tenant, id: id, name: name ?? id, isPublic: settings.isPublic ?? false, fileSizeLimit: settings.fileSizeLimit ?? nil,
            allowedMimeTypes: settings.allowedMimeTypes ?? nil, ownerID: access.claims["sub"]?.stringValue, createdAt: now, updatedAt: now)
        try Self.checkSettings(bucket)
        guard try decide(.create, StorageEntities.buckets, StorageEntities.row(bucket), .new, access) else {
            throw denied(.create, "storage.buckets", access, detail: "the new bucket fails the policy's check")
        }
        let usage = try await store.storageUsage(tenant: tenant)
        guard usage.buckets < limits().maxBuckets else {
            throw StorageError.quotaExceeded("the tenant already has \(usage.buckets) buckets, its limit")
        }
        forgetBucket(id)
        do {
            try await store.createBucket(bucket)
        } catch StorageStoreError.bucketExists {
            throw StorageError.duplicateBucket(id)
        }
        return bucket
    }

    public func updateBucket(_ id: String, settings: BucketSettings, access: Access) async throws -> StorageBucket {
        guard var bucket = try await store.bucket(tenant: tenant, id: id) else { throw StorageError.bucketNotFound(id) }
        guard try decide(.update, StorageEntities.buckets, StorageEntities.row(bucket), .existing, access) else {
            throw StorageError.bucketNotFound(id)
        }
        if let value = settings.isPublic { bucket.isPublic = value }
        if let value = settings.fileSizeLimit { bucket.fileSizeLimit = value }
        if let value = settings.allowedMimeTypes { bucket.allowedMimeTypes = value }
        bucket.updatedAt = Date()
        try Self.checkSettings(bucket)
        guard try decide(.update, StorageEntities.buckets, StorageEntities.row(bucket), .new, access) else {
            throw denied(.update, "storage.buckets", access, detail: "the changed bucket fails the policy's check")
        }
        forgetBucket(id)
        do {
            try await store.updateBucket(bucket)
        } catch StorageStoreError.bucketMissing {
            throw StorageError.bucketNotFound(id)
        }
        return bucket
    }

    public func deleteBucket(_ id: String, access: Access) async throws {
        guard let bucket = try await store.bucket(tenant: tenant, id: id) else { throw StorageError.bucketNotFound(id) }
        guard try decide(.delete, StorageEntities.buckets, StorageEntities.row(bucket), .existing, access) else {
            throw StorageError.bucketNotFound(id)
        }
        forgetBucket(id)
        do {
            try await store.deleteBucket(tenant: tenant, id: id)
        } catch StorageStoreError.bucketNotEmpty {
            throw StorageError.bucketNotEmpty(id)
        } catch StorageStoreError.bucketMissing {
            throw StorageError.bucketNotFound(id)
        }
    }

    /// Deletes the objects of a bucket the caller may delete (all of them for the service role).
    public func emptyBucket(_ id: String, access: Access) async throws {
        _ = try await bucket(id, access)
        if access.bypass {
            while true {
                let deleted = try await store.emptyBucket(tenant: tenant, bucket: id, limit: 1000)
                for object in deleted {
                    await blobs.delete(object.blobKey)
                    ledger.removed(object.size)
                }
                if deleted.count < 1000 { return }
            }
        }
        var after: String?
        while true {
            let page = try await store.objects(tenant: tenant, bucket: id, prefix: "", after: after, limit: 1000)
            let names = try page.filter { try decide(.delete, StorageEntities.objects, StorageEntities.row($0), .existing, access) }.map(\.name)
            if !names.isEmpty {
                for object in try await store.deleteObjects(tenant: tenant, bucket: id, names: names) {
                    await blobs.delete(object.blobKey)
                    ledger.removed(object.size)
                }
            }
            guard page.count == 1000, let last = page.last else { return }
            after = last.name
        }
    }

    static func checkSettings(_ bucket: StorageBucket) throws(StorageError) {
        if let limit = bucket.fileSizeLimit, limit < 0 { throw .invalidRequest("file_size_limit must be a positive number of bytes") }
        for type in bucket.allowedMimeTypes ?? [] {
            let parts = type.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !type.contains(" ") else {
                throw .invalidRequest("allowed_mime_types: '\(type)' is not a MIME type (type/subtype, or type/*)")
            }
        }
    }

    func readable(_ bucket: StorageBucket, _ access: Access) throws -> Bool {
        if access.bypass { return true }
        // No read policy on buckets: a caller still sees a bucket by id when it is public, so the
        // public URLs of its objects work; listing stays denied.
        do {
            return try decide(.read, StorageEntities.buckets, StorageEntities.row(bucket), .existing, access)
        } catch is StorageError {
            return bucket.isPublic
        }
    }

    // MARK: - Policies

    /// Whether the caller's policies let `action` touch `row`; throws when no policy at all
    /// names this entity, action and role.
    func decide(_ action: Policy.Action, _ entity: Entity, _ row: JSONObject, _ image: Access.RowImage, _ access: Access) throws -> Bool {
        do {
            return try access.permits(action, on: entity, row: row, image: image)
        } catch {
            throw denied(action, entity.name, access, detail: "no \(action.rawValue) policy on \(entity.name) for role \(access.role)")
        }
    }

    func denied(_ action: Policy.Action, _ entity: String, _ access: Access, detail: String) -> StorageError {
        let message = "permission denied: \(detail)"
        return access.role == "anon" ? .unauthorized(message) : .accessDenied(message)
    }
}
