import Foundation
import Runtime

/// A tenant's bucket as the control plane keeps it. `id` is the name clients use in URLs.
public struct StorageBucket: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var name: String
    public var isPublic: Bool
    /// Largest object accepted in this bucket, in bytes; nil: the tenant's limit only.
    public var fileSizeLimit: Int?
    /// MIME types accepted (`image/*` allowed); nil: any.
    public var allowedMimeTypes: [String]?
    /// The caller who created it (`sub`), when it was an end user.
    public var ownerID: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenant: String, id: String, name: String, isPublic: Bool, fileSizeLimit: Int?, allowedMimeTypes: [String]?, ownerID: String?,
        createdAt: Date, updatedAt: Date
    ) {
        self.tenant = tenant
        self.id = id
        self.name = name
        self.isPublic = isPublic
        self.fileSizeLimit = fileSizeLimit
        self.allowedMimeTypes = allowedMimeTypes
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One stored object: its name in its bucket and where its bytes are. The bytes of each version
/// live under their own `blobKey`, never derived from the name, so an overwrite writes a new blob
/// and readers of the old one finish undisturbed.
public struct StoredObject: Sendable, Equatable {
    public var tenant: String
    public var bucket: String
    public var name: String
    /// Stable across overwrites of the same name (Supabase's `id`).
    public var id: String
    public var blobKey: String
    public var size: Int
    public var mimeType: String
    public var cacheControl: String
    /// Quoted hex MD5 of the bytes (`"…-N"` for multipart uploads), as S3 gives it.
    public var etag: String
    /// The uploader's own metadata.
    public var userMetadata: JSONObject
    public var ownerID: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenant: String, bucket: String, name: String, id: String, blobKey: String, size: Int, mimeType: String, cacheControl: String,
        etag: String, userMetadata: JSONObject, ownerID: String?, createdAt: Date, updatedAt: Date
    ) {
        self.tenant = tenant
        self.bucket = bucket
        self.name = name
        self.id = id
        self.blobKey = blobKey
        self.size = size
        self.mimeType = mimeType
        self.cacheControl = cacheControl
        self.etag = etag
        self.userMetadata = userMetadata
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// What a tenant stores, summed.
public struct StorageUsage: Sendable, Equatable, Codable {
    public var bytes: Int
    public var objects: Int
    public var buckets: Int
    public init(bytes: Int, objects: Int, buckets: Int) {
        self.bytes = bytes
        self.objects = objects
        self.buckets = buckets
    }
}

/// Why the store refused a storage change.
public enum StorageStoreError: Error, Equatable, Sendable {
    case bucketExists
    case bucketMissing
    case bucketNotEmpty
    case objectExists
    case objectMissing
    /// The row changed since it was read (a concurrent overwrite won).
    case conflict
}

/// An S3 access key of a tenant: the secret is sealed with the node's master key and shown once,
/// when the key is made. Requests signed with it act as the service role (S3's admin keys).
public struct S3KeyRecord: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var accessKeyID: String
    public var sealedSecret: [UInt8]
    public var createdAt: Date

    public init(tenant: String, id: String, accessKeyID: String, sealedSecret: [UInt8], createdAt: Date) {
        self.tenant = tenant
        self.id = id
        self.accessKeyID = accessKeyID
        self.sealedSecret = sealedSecret
        self.createdAt = createdAt
    }
}

/// An S3 multipart upload in progress: where its object will go and what it will say about
/// itself. Its parts are blobs of their own until it completes.
public struct MultipartUploadRecord: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var bucket: String
    public var name: String
    public var mimeType: String
    public var cacheControl: String
    public var userMetadata: JSONObject
    public var ownerID: String?
    public var createdAt: Date

    public init(tenant: String, id: String, bucket: String, name: String, mimeType: String, cacheControl: String, userMetadata: JSONObject,
                ownerID: String?, createdAt: Date) {
        self.tenant = tenant
        self.id = id
        self.bucket = bucket
        self.name = name
        self.mimeType = mimeType
        self.cacheControl = cacheControl
        self.userMetadata = userMetadata
        self.ownerID = ownerID
        self.createdAt = createdAt
    }
}

public struct MultipartPartRecord: Sendable, Equatable {
    public var number: Int
    public var blobKey: String
    public var size: Int
    /// Quoted hex MD5 of the part.
    public var etag: String
    public var md5: [UInt8]
    public var createdAt: Date

    public init(number: Int, blobKey: String, size: Int, etag: String, md5: [UInt8], createdAt: Date) {
        self.number = number
        self.blobKey = blobKey
        self.size = size
        self.etag = etag
        self.md5 = md5
        self.createdAt = createdAt
    }
}
