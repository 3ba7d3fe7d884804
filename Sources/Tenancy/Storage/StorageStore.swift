import Foundation

/// The rows of object storage (buckets and objects) in the control plane. Bytes are elsewhere
/// (a `BlobStore`); a row is committed only after its bytes are durable, so a row always points
/// at a whole blob. Each method is one transaction.
public protocol StorageStore: Sendable {
    func buckets(tenant: String) async throws -> [StorageBucket]
    func bucket(tenant: String, id: String) async throws -> StorageBucket?
    /// Throws `.bucketExists`.
    func createBucket(_ bucket: StorageBucket) async throws
    /// Throws `.bucketMissing`.
    func updateBucket(_ bucket: StorageBucket) async throws
    /// Throws `.bucketMissing` or `.bucketNotEmpty`.
    func deleteBucket(tenant: String, id: String) async throws

    func object(tenant: String, bucket: String, name: String) async throws -> StoredObject?
    /// Objects whose names start with `prefix`, by name, from `after` (exclusive) on, at most `limit`.
    func objects(tenant: String, bucket: String, prefix: String, after: String?, limit: Int) async throws -> [StoredObject]
    /// Inserts `object`, or replaces the row of the same name when `replacing` is that row's blob
    /// key. Throws `.objectExists` when a row exists and `replacing` is nil, `.conflict` when the row
    /// is not the one expected, `.bucketMissing` when the bucket went away.
    func putObject(_ object: StoredObject, replacing: String?) async throws
    /// Renames an object (to another bucket too); returns the row replaced at the destination, if
    /// `overwrite` allowed one. Throws `.objectMissing`, `.objectExists`, `.bucketMissing`.
    func moveObject(tenant: String, bucket: String, name: String, toBucket: String, toName: String, overwrite: Bool) async throws
        -> (moved: StoredObject, replaced: StoredObject?)
    /// Deletes the named objects; answers the rows it deleted.
    func deleteObjects(tenant: String, bucket: String, names: [String]) async throws -> [StoredObject]
    /// Deletes every object of a bucket, up to `limit` at a time; answers the rows deleted.
    func emptyBucket(tenant: String, bucket: String, limit: Int) async throws -> [StoredObject]

    func storageUsage(tenant: String) async throws -> StorageUsage
    /// Every blob key a row points at (for the start-up sweep of orphaned files).
    func allBlobKeys() async throws -> Set<String>

    // MARK: S3 access keys

    func createS3Key(_ key: S3KeyRecord) async throws
    func s3Keys(tenant: String) async throws -> [S3KeyRecord]
    /// The key with this access key id, in any tenant (ids are unique across the node).
    func s3Key(accessKeyID: String) async throws -> S3KeyRecord?
    func deleteS3Key(tenant: String, id: String) async throws -> Bool

    // MARK: S3 multipart uploads

    func createMultipartUpload(_ upload: MultipartUploadRecord) async throws
    func multipartUpload(tenant: String, id: String) async throws -> MultipartUploadRecord?
    /// Records a part; answers the part it replaced (same number), whose blob the caller removes.
    /// Throws `.objectMissing` when the upload is gone.
    func putPart(tenant: String, uploadID: String, part: MultipartPartRecord) async throws -> MultipartPartRecord?
    func parts(tenant: String, uploadID: String) async throws -> [MultipartPartRecord]
    /// Removes the upload and its parts' rows; answers the parts, whose blobs the caller removes.
    func deleteMultipartUpload(tenant: String, id: String) async throws -> [MultipartPartRecord]
    /// Uploads begun before `before`, across tenants (for expiry).
    func multipartUploads(before: Date) async throws -> [MultipartUploadRecord]
}
