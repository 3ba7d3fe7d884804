import Foundation
import Logging
import NIOCore
import PostgresNIO
import Runtime

/// Object storage rows in the cluster's control plane.
extension PostgresControlPlaneStore {
    private static let bucketColumns = "tenant, id, name, public, file_size_limit, allowed_mime_types::text, owner_id, created_at, updated_at"
    private static let objectColumns =
        "tenant, bucket, name, id, blob_key, size, mime_type, cache_control, etag, metadata::text, owner_id, created_at, updated_at"
    private typealias BucketRow = (String, String, String, Bool, Int?, String?, String?, Date, Date)
    private typealias ObjectRow = (String, String, String, String, String, Int, String, String, String, String, String?, Date, Date)

    /// A transaction whose own refusals (`StorageStoreError`) come out as themselves.
    private func storageTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { db in try await body(db) }
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? StorageStoreError { throw inner }
            throw error
        }
    }

    // MARK: Buckets

    public func buckets(tenant: String) async throws -> [StorageBucket] {
        try await decodeBuckets(client.query(
            "SELECT \(unescaped: Self.bucketColumns) FROM minibaas.storage_buckets WHERE tenant = \(tenant) ORDER BY id", logger: logger))
    }

    public func bucket(tenant: String, id: String) async throws -> StorageBucket? {
        try await decodeBuckets(client.query(
            "SELECT \(unescaped: Self.bucketColumns) FROM minibaas.storage_buckets WHERE tenant = \(tenant) AND id = \(id)", logger: logger)).first
    }

    public func createBucket(_ bucket: StorageBucket) async throws {
        let rows = try await client.query(
            """
            INSERT INTO minibaas.storage_buckets (tenant, id, name, public, file_size_limit, allowed_mime_types, owner_id, created_at, updated_at)
            VALUES (\(bucket.tenant), \(bucket.id), \(bucket.name), \(bucket.isPublic), \(bucket.fileSizeLimit),
                    \(SQLiteControlPlaneStore.encode(bucket.allowedMimeTypes))::jsonb, \(bucket.ownerID), \(bucket.createdAt), \(bucket.updatedAt))
            ON CONFLICT DO NOTHING RETURNING 1
            """, logger: logger)
        guard try await Self.hasRow(rows) else { throw StorageStoreError.bucketExists }
    }

    public func updateBucket(_ bucket: StorageBucket) async throws {
        let rows = try await client.query(
            """
            UPDATE minibaas.storage_buckets SET public = \(bucket.isPublic), file_size_limit = \(bucket.fileSizeLimit),
              allowed_mime_types = \(SQLiteControlPlaneStore.encode(bucket.allowedMimeTypes))::jsonb, updated_at = \(bucket.updatedAt)
            WHERE tenant = \(bucket.tenant) AND id = \(bucket.id) RETURNING 1
            """, logger: logger)
        guard try await Self.hasRow(rows) else { throw StorageStoreError.bucketMissing }
    }

    public func deleteBucket(tenant: String, id: String) async throws {
        try await storageTransaction { db in
            let locked = try await db.query(
                "SELECT 1 FROM minibaas.storage_buckets WHERE tenant = \(tenant) AND id = \(id) FOR UPDATE", logger: logger)
            guard try await Self.hasRow(locked) else { throw StorageStoreError.bucketMissing }
            let any = try await db.query(
                "SELECT 1 FROM minibaas.storage_objects WHERE tenant = \(tenant) AND bucket = \(id) LIMIT 1", logger: logger)
            guard !(try await Self.hasRow(any)) else { throw StorageStoreError.bucketNotEmpty }
            try await db.query("DELETE FROM minibaas.storage_buckets WHERE tenant = \(tenant) AND id = \(id)", logger: logger)
        }
    }

    private func decodeBuckets(_ rows: PostgresRowSequence) async throws -> [StorageBucket] {
        var buckets: [StorageBucket] = []
        for try await row in rows.decode(BucketRow.self) {
            buckets.append(StorageBucket(
                tenant: row.0, id: row.1, name: row.2, isPublic: row.3, fileSizeLimit: row.4,
                allowedMimeTypes: SQLiteControlPlaneStore.decodeTypes(row.5), ownerID: row.6, createdAt: row.7, updatedAt: row.8))
        }
        return buckets
    }

    // MARK: Objects

    public func object(tenant: String, bucket: String, name: String) async throws -> StoredObject? {
        try await decodeObjects(client.query(
            """
            SELECT \(unescaped: Self.objectColumns) FROM minibaas.storage_objects
            WHERE tenant = \(tenant) AND bucket = \(bucket) AND name = \(name)
            """, logger: logger)).first
    }

    public func objects(tenant: String, bucket: String, prefix: String, after: String?, limit: Int) async throws -> [StoredObject] {
        try await decodeObjects(client.query(
            """
            SELECT \(unescaped: Self.objectColumns) FROM minibaas.storage_objects
            WHERE tenant = \(tenant) AND bucket = \(bucket) AND left(name, length(\(prefix))) = \(prefix) AND name > \(after ?? "")
            ORDER BY name LIMIT \(limit)
            """, logger: logger))
    }

    public func putObject(_ object: StoredObject, replacing: String?) async throws {
        try await storageTransaction { db in
            let bucket = try await db.query(
                "SELECT 1 FROM minibaas.storage_buckets WHERE tenant = \(object.tenant) AND id = \(object.bucket) FOR SHARE", logger: logger)
            guard try await Self.hasRow(bucket) else { throw StorageStoreError.bucketMissing }
            var current: String?
            for try await key in try await db.query(
                """
                SELECT blob_key FROM minibaas.storage_objects WHERE tenant = \(object.tenant) AND bucket = \(object.bucket) AND name = \(object.name)
                FOR UPDATE
                """, logger: logger
            ).decode(String.self) { current = key }
            switch (current, replacing) {
            case (nil, _): break
            case (_?, nil): throw StorageStoreError.objectExists
            case (let found?, let expected?): guard found == expected else { throw StorageStoreError.conflict }
            }
            let inserted = try await db.query(
                """
                INSERT INTO minibaas.storage_objects (tenant, bucket, name, id, blob_key, size, mime_type, cache_control, etag, metadata, owner_id,
                  created_at, updated_at)
                VALUES (\(object.tenant), \(object.bucket), \(object.name), \(object.id), \(object.blobKey), \(object.size), \(object.mimeType),
                  \(object.cacheControl), \(object.etag), \(StoreCoding.encodeObject(object.userMetadata))::jsonb, \(object.ownerID),
                  \(object.createdAt), \(object.updatedAt))
                ON CONFLICT (tenant, bucket, name) DO UPDATE SET blob_key = excluded.blob_key, size = excluded.size,
                  mime_type = excluded.mime_type, cache_control = excluded.cache_control, etag = excluded.etag, metadata = excluded.metadata,
                  owner_id = excluded.owner_id, updated_at = excluded.updated_at
                  WHERE \(replacing != nil)
                RETURNING 1
                """, logger: logger)
            // A row inserted by a concurrent upload after our check, and no overwrite allowed.
            guard try await Self.hasRow(inserted) else { throw StorageStoreError.objectExists }
        }
    }

    public func moveObject(tenant: String, bucket: String, name: String, toBucket: String, toName: String, overwrite: Bool) async throws
        -> (moved: StoredObject, replaced: StoredObject?)
    {
        try await storageTransaction { db in
            guard let source = try await decodeObjects(db.query(
                """
                SELECT \(unescaped: Self.objectColumns) FROM minibaas.storage_objects
                WHERE tenant = \(tenant) AND bucket = \(bucket) AND name = \(name) FOR UPDATE
                """, logger: logger)).first
            else { throw StorageStoreError.objectMissing }
            let target = try await db.query(
                "SELECT 1 FROM minibaas.storage_buckets WHERE tenant = \(tenant) AND id = \(toBucket) FOR SHARE", logger: logger)
            guard try await Self.hasRow(target) else { throw StorageStoreError.bucketMissing }
            let existing = try await decodeObjects(db.query(
                """
                DELETE FROM minibaas.storage_objects WHERE tenant = \(tenant) AND bucket = \(toBucket) AND name = \(toName)
                RETURNING \(unescaped: Self.objectColumns)
                """, logger: logger)).first
            if existing != nil, !overwrite { throw StorageStoreError.objectExists }
            var moved = source
            moved.bucket = toBucket
            moved.name = toName
            moved.updatedAt = Date()
            try await db.query(
                """
                UPDATE minibaas.storage_objects SET bucket = \(toBucket), name = \(toName), updated_at = \(moved.updatedAt)
                WHERE tenant = \(tenant) AND bucket = \(bucket) AND name = \(name)
                """, logger: logger)
            return (moved, existing)
        }
    }

    public func deleteObjects(tenant: String, bucket: String, names: [String]) async throws -> [StoredObject] {
        try await decodeObjects(client.query(
            """
            DELETE FROM minibaas.storage_objects WHERE tenant = \(tenant) AND bucket = \(bucket) AND name = ANY(\(Array(Set(names))))
            RETURNING \(unescaped: Self.objectColumns)
            """, logger: logger)).sorted { $0.name < $1.name }
    }

    public func emptyBucket(tenant: String, bucket: String, limit: Int) async throws -> [StoredObject] {
        try await decodeObjects(client.query(
            """
            DELETE FROM minibaas.storage_objects WHERE (tenant, bucket, name) IN (
              SELECT tenant, bucket, name FROM minibaas.storage_objects WHERE tenant = \(tenant) AND bucket = \(bucket) LIMIT \(limit))
            RETURNING \(unescaped: Self.objectColumns)
            """, logger: logger))
    }

    public func storageUsage(tenant: String) async throws -> StorageUsage {
        var usage = StorageUsage(bytes: 0, objects: 0, buckets: 0)
        for try await (count, bytes) in try await client.query(
            "SELECT count(*)::bigint, coalesce(sum(size), 0)::bigint FROM minibaas.storage_objects WHERE tenant = \(tenant)", logger: logger
        ).decode((Int, Int).self) {
            usage.objects = count
            usage.bytes = bytes
        }
        for try await count in try await client.query(
            "SELECT count(*)::bigint FROM minibaas.storage_buckets WHERE tenant = \(tenant)", logger: logger
        ).decode(Int.self) { usage.buckets = count }
        // Parts of unfinished multipart uploads take space too.
        for try await bytes in try await client.query(
            "SELECT coalesce(sum(size), 0)::bigint FROM minibaas.storage_multipart_parts WHERE tenant = \(tenant)", logger: logger
        ).decode(Int.self) { usage.bytes += bytes }
        return usage
    }

    public func allBlobKeys() async throws -> Set<String> {
        var keys = Set<String>()
        for try await key in try await client.query("SELECT blob_key FROM minibaas.storage_objects UNION ALL SELECT blob_key FROM minibaas.storage_multipart_parts", logger: logger).decode(String.self) {
            keys.insert(key)
        }
        return keys
    }

    private func decodeObjects(_ rows: PostgresRowSequence) async throws -> [StoredObject] {
        var objects: [StoredObject] = []
        for try await row in rows.decode(ObjectRow.self) {
            objects.append(StoredObject(
                tenant: row.0, bucket: row.1, name: row.2, id: row.3, blobKey: row.4, size: row.5, mimeType: row.6, cacheControl: row.7,
                etag: row.8, userMetadata: (try? StoreCoding.decodeObject(row.9)) ?? [:], ownerID: row.10, createdAt: row.11, updatedAt: row.12))
        }
        return objects
    }

    // MARK: S3 keys

    public func createS3Key(_ key: S3KeyRecord) async throws {
        try await client.query(
            """
            INSERT INTO minibaas.storage_s3_keys (tenant, id, access_key_id, sealed_secret, created_at)
            VALUES (\(key.tenant), \(key.id), \(key.accessKeyID), \(ByteBuffer(bytes: key.sealedSecret)), \(key.createdAt))
            """, logger: logger)
    }

    public func s3Keys(tenant: String) async throws -> [S3KeyRecord] {
        try await s3Keys(client.query(
            "SELECT tenant, id, access_key_id, sealed_secret, created_at FROM minibaas.storage_s3_keys WHERE tenant = \(tenant) ORDER BY created_at",
            logger: logger))
    }

    public func s3Key(accessKeyID: String) async throws -> S3KeyRecord? {
        try await s3Keys(client.query(
            "SELECT tenant, id, access_key_id, sealed_secret, created_at FROM minibaas.storage_s3_keys WHERE access_key_id = \(accessKeyID)",
            logger: logger)).first
    }

    public func deleteS3Key(tenant: String, id: String) async throws -> Bool {
        try await Self.hasRow(client.query("DELETE FROM minibaas.storage_s3_keys WHERE tenant = \(tenant) AND id = \(id) RETURNING 1", logger: logger))
    }

    private func s3Keys(_ rows: PostgresRowSequence) async throws -> [S3KeyRecord] {
        var keys: [S3KeyRecord] = []
        for try await (tenant, id, access, sealed, createdAt) in rows.decode((String, String, String, ByteBuffer, Date).self) {
            keys.append(S3KeyRecord(tenant: tenant, id: id, accessKeyID: access, sealedSecret: Array(buffer: sealed), createdAt: createdAt))
        }
        return keys
    }

    // MARK: Multipart uploads

    private static let uploadColumns = "tenant, id, bucket, name, mime_type, cache_control, metadata::text, owner_id, created_at"
    private static let partColumns = "number, blob_key, size, etag, md5, created_at"

    public func createMultipartUpload(_ upload: MultipartUploadRecord) async throws {
        try await client.query(
            """
            INSERT INTO minibaas.storage_multipart_uploads (tenant, id, bucket, name, mime_type, cache_control, metadata, owner_id, created_at)
            VALUES (\(upload.tenant), \(upload.id), \(upload.bucket), \(upload.name), \(upload.mimeType), \(upload.cacheControl),
                    \(StoreCoding.encodeObject(upload.userMetadata))::jsonb, \(upload.ownerID), \(upload.createdAt))
            """, logger: logger)
    }

    public func multipartUpload(tenant: String, id: String) async throws -> MultipartUploadRecord? {
        try await uploads(client.query(
            "SELECT \(unescaped: Self.uploadColumns) FROM minibaas.storage_multipart_uploads WHERE tenant = \(tenant) AND id = \(id)", logger: logger)).first
    }

    public func multipartUploads(before: Date) async throws -> [MultipartUploadRecord] {
        try await uploads(client.query(
            "SELECT \(unescaped: Self.uploadColumns) FROM minibaas.storage_multipart_uploads WHERE created_at < \(before)", logger: logger))
    }

    public func putPart(tenant: String, uploadID: String, part: MultipartPartRecord) async throws -> MultipartPartRecord? {
        try await storageTransaction { db in
            let upload = try await db.query(
                "SELECT 1 FROM minibaas.storage_multipart_uploads WHERE tenant = \(tenant) AND id = \(uploadID) FOR SHARE", logger: logger)
            guard try await Self.hasRow(upload) else { throw StorageStoreError.objectMissing }
            let replaced = try await parts(db.query(
                """
                DELETE FROM minibaas.storage_multipart_parts WHERE tenant = \(tenant) AND upload_id = \(uploadID) AND number = \(part.number)
                RETURNING \(unescaped: Self.partColumns)
                """, logger: logger)).first
            try await db.query(
                """
                INSERT INTO minibaas.storage_multipart_parts (tenant, upload_id, number, blob_key, size, etag, md5, created_at)
                VALUES (\(tenant), \(uploadID), \(part.number), \(part.blobKey), \(part.size), \(part.etag), \(ByteBuffer(bytes: part.md5)),
                        \(part.createdAt))
                """, logger: logger)
            return replaced
        }
    }

    public func parts(tenant: String, uploadID: String) async throws -> [MultipartPartRecord] {
        try await parts(client.query(
            """
            SELECT \(unescaped: Self.partColumns) FROM minibaas.storage_multipart_parts
            WHERE tenant = \(tenant) AND upload_id = \(uploadID) ORDER BY number
            """, logger: logger))
    }

    public func deleteMultipartUpload(tenant: String, id: String) async throws -> [MultipartPartRecord] {
        try await storageTransaction { db in
            let deleted = try await parts(db.query(
                "DELETE FROM minibaas.storage_multipart_parts WHERE tenant = \(tenant) AND upload_id = \(id) RETURNING \(unescaped: Self.partColumns)",
                logger: logger))
            try await db.query("DELETE FROM minibaas.storage_multipart_uploads WHERE tenant = \(tenant) AND id = \(id)", logger: logger)
            return deleted.sorted { $0.number < $1.number }
        }
    }

    private func uploads(_ rows: PostgresRowSequence) async throws -> [MultipartUploadRecord] {
        var uploads: [MultipartUploadRecord] = []
        for try await row in rows.decode((String, String, String, String, String, String, String, String?, Date).self) {
            uploads.append(MultipartUploadRecord(
                tenant: row.0, id: row.1, bucket: row.2, name: row.3, mimeType: row.4, cacheControl: row.5,
                userMetadata: (try? StoreCoding.decodeObject(row.6)) ?? [:], ownerID: row.7, createdAt: row.8))
        }
        return uploads
    }

    private func parts(_ rows: PostgresRowSequence) async throws -> [MultipartPartRecord] {
        var parts: [MultipartPartRecord] = []
        for try await (number, blob, size, etag, md5, createdAt) in rows.decode((Int, String, Int, String, ByteBuffer, Date).self) {
            parts.append(MultipartPartRecord(number: number, blobKey: blob, size: size, etag: etag, md5: Array(buffer: md5), createdAt: createdAt))
        }
        return parts
    }
}
