import Foundation
import NIOCore
import Runtime
import SQLiteNIO

/// Object storage rows in the embedded control plane.
extension SQLiteControlPlaneStore {
    private static func ms(_ date: Date) -> SQLiteData { .integer(Int(StoreCoding.milliseconds(date))) }
    private static func date(_ row: SQLiteResultRow, _ column: String) -> Date {
        StoreCoding.date(milliseconds: Int64(row.column(column)?.integer ?? 0))
    }
    private static func optional(_ text: String?) -> SQLiteData { text.map { .text($0) } ?? .null }
    private static func optional(_ number: Int?) -> SQLiteData { number.map { .integer($0) } ?? .null }

    // MARK: Buckets

    public func buckets(tenant: String) async throws -> [StorageBucket] {
        try await read("SELECT * FROM storage_buckets WHERE tenant = ? ORDER BY id", [.text(tenant)]).map(Self.bucket(from:))
    }

    public func bucket(tenant: String, id: String) async throws -> StorageBucket? {
        try await read("SELECT * FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)]).first.map(Self.bucket(from:))
    }

    public func createBucket(_ bucket: StorageBucket) async throws {
        try await transaction { db in
            guard try db.rows("SELECT 1 FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(bucket.tenant), .text(bucket.id)]).isEmpty
            else { throw StorageStoreError.bucketExists }
            _ = try db.rows(
                """
                INSERT INTO storage_buckets (tenant, id, name, public, file_size_limit, allowed_mime_types, owner_id, created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, Self.binds(bucket))
        }
    }

    public func updateBucket(_ bucket: StorageBucket) async throws {
        try await transaction { db in
            let rows = try db.rows(
                """
                UPDATE storage_buckets SET public = ?, file_size_limit = ?, allowed_mime_types = ?, updated_at_ms = ?
                WHERE tenant = ? AND id = ? RETURNING 1
                """,
                [.integer(bucket.isPublic ? 1 : 0), Self.optional(bucket.fileSizeLimit), Self.optional(Self.encode(bucket.allowedMimeTypes)),
                 Self.ms(bucket.updatedAt), .text(bucket.tenant), .text(bucket.id)])
            guard !rows.isEmpty else { throw StorageStoreError.bucketMissing }
        }
    }

    public func deleteBucket(tenant: String, id: String) async throws {
        try await transaction { db in
            guard !(try db.rows("SELECT 1 FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])).isEmpty
            else { throw StorageStoreError.bucketMissing }
            guard try db.rows("SELECT 1 FROM storage_objects WHERE tenant = ? AND bucket = ? LIMIT 1", [.text(tenant), .text(id)]).isEmpty
            else { throw StorageStoreError.bucketNotEmpty }
            _ = try db.rows("DELETE FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])
        }
    }

    private static func binds(_ bucket: StorageBucket) -> [SQLiteData] {
        [.text(bucket.tenant), .text(bucket.id), .text(bucket.name), .integer(bucket.isPublic ? 1 : 0), optional(bucket.fileSizeLimit),
         optional(encode(bucket.allowedMimeTypes)), optional(bucket.ownerID), ms(bucket.createdAt), ms(bucket.updatedAt)]
    }

    static func encode(_ types: [String]?) -> String? {
        types.map { JSONValue.array($0.map(JSONValue.string)).jsonString }
    }

    static func decodeTypes(_ text: String?) -> [String]? {
        guard let text, let list = try? JSONValue.parse(Array(text.utf8)).arrayValue else { return nil }
        return list.compactMap(\.stringValue)
    }

    private static func bucket(from row: SQLiteResultRow) throws -> StorageBucket {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let name = row.column("name")?.string else {
            throw ControlPlaneError.corrupt("storage bucket row")
        }
        return StorageBucket(
            tenant: tenant, id: id, name: name, isPublic: row.column("public")?.integer == 1, fileSizeLimit: row.column("file_size_limit")?.integer,
            allowedMimeTypes: decodeTypes(row.column("allowed_mime_types")?.string), ownerID: row.column("owner_id")?.string,
            createdAt: date(row, "created_at_ms"), updatedAt: date(row, "updated_at_ms"))
    }

    // MARK: Objects

    public func object(tenant: String, bucket: String, name: String) async throws -> StoredObject? {
        try await read("SELECT * FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ?", [.text(tenant), .text(bucket), .text(name)])
            .first.map(Self.object(from:))
    }

    public func objects(tenant: String, bucket: String, prefix: String, after: String?, limit: Int) async throws -> [StoredObject] {
        // substr over LIKE: a prefix may hold % and _, and names compare as bytes.
        try await read(
            """
            SELECT * FROM storage_objects WHERE tenant = ? AND bucket = ? AND substr(name, 1, length(?)) = ? AND name > ?
            ORDER BY name LIMIT ?
            """, [.text(tenant), .text(bucket), .text(prefix), .text(prefix), .text(after ?? ""), .integer(limit)]
        ).map(Self.object(from:))
    }

    public func putObject(_ object: StoredObject, replacing: String?) async throws {
        try await transaction { db in
            guard !(try db.rows("SELECT 1 FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(object.tenant), .text(object.bucket)])).isEmpty
            else { throw StorageStoreError.bucketMissing }
            let current = try db.rows(
                "SELECT blob_key FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ?",
                [.text(object.tenant), .text(object.bucket), .text(object.name)]
            ).first?.column("blob_key")?.string
            switch (current, replacing) {
            case (nil, nil): break
            case (nil, _?): break  // replaced row deleted meanwhile: the upload still lands
            case (_?, nil): throw StorageStoreError.objectExists
            case (let found?, let expected?): guard found == expected else { throw StorageStoreError.conflict }
            }
            _ = try db.rows(
                """
                INSERT INTO storage_objects (tenant, bucket, name, id, blob_key, size, mime_type, cache_control, etag, metadata, owner_id,
                  created_at_ms, updated_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (tenant, bucket, name) DO UPDATE SET blob_key = excluded.blob_key, size = excluded.size,
                  mime_type = excluded.mime_type, cache_control = excluded.cache_control, etag = excluded.etag, metadata = excluded.metadata,
                  owner_id = excluded.owner_id, updated_at_ms = excluded.updated_at_ms
                """, Self.binds(object))
        }
    }

    public func moveObject(tenant: String, bucket: String, name: String, toBucket: String, toName: String, overwrite: Bool) async throws
        -> (moved: StoredObject, replaced: StoredObject?)
    {
        try await transaction { db in
            guard let source = try db.rows(
                "SELECT * FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ?", [.text(tenant), .text(bucket), .text(name)]
            ).first.map(Self.object(from:)) else { throw StorageStoreError.objectMissing }
            guard !(try db.rows("SELECT 1 FROM storage_buckets WHERE tenant = ? AND id = ?", [.text(tenant), .text(toBucket)])).isEmpty
            else { throw StorageStoreError.bucketMissing }
            let existing = try db.rows(
                "SELECT * FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ?", [.text(tenant), .text(toBucket), .text(toName)]
            ).first.map(Self.object(from:))
            if existing != nil {
                guard overwrite else { throw StorageStoreError.objectExists }
                _ = try db.rows(
                    "DELETE FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ?", [.text(tenant), .text(toBucket), .text(toName)])
            }
            var moved = source
            moved.bucket = toBucket
            moved.name = toName
            moved.updatedAt = Date()
            _ = try db.rows(
                "UPDATE storage_objects SET bucket = ?, name = ?, updated_at_ms = ? WHERE tenant = ? AND bucket = ? AND name = ?",
                [.text(toBucket), .text(toName), Self.ms(moved.updatedAt), .text(tenant), .text(bucket), .text(name)])
            return (moved, existing)
        }
    }

    public func deleteObjects(tenant: String, bucket: String, names: [String]) async throws -> [StoredObject] {
        try await transaction { db in
            var deleted: [StoredObject] = []
            for name in Set(names) {
                let rows = try db.rows(
                    "DELETE FROM storage_objects WHERE tenant = ? AND bucket = ? AND name = ? RETURNING *", [.text(tenant), .text(bucket), .text(name)])
                deleted += try rows.map(Self.object(from:))
            }
            return deleted.sorted { $0.name < $1.name }
        }
    }

    public func emptyBucket(tenant: String, bucket: String, limit: Int) async throws -> [StoredObject] {
        try await transaction { db in
            try db.rows(
                """
                DELETE FROM storage_objects WHERE rowid IN (SELECT rowid FROM storage_objects WHERE tenant = ? AND bucket = ? LIMIT ?) RETURNING *
                """, [.text(tenant), .text(bucket), .integer(limit)]
            ).map(Self.object(from:))
        }
    }

    public func storageUsage(tenant: String) async throws -> StorageUsage {
        let objects = try await read("SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM storage_objects WHERE tenant = ?", [.text(tenant)]).first
        // Parts of unfinished multipart uploads take space too.
        let parts = try await read("SELECT coalesce(sum(size), 0) AS bytes FROM storage_multipart_parts WHERE tenant = ?", [.text(tenant)]).first
        let buckets = try await read("SELECT count(*) AS n FROM storage_buckets WHERE tenant = ?", [.text(tenant)]).first
        return StorageUsage(
            bytes: (objects?.column("bytes")?.integer ?? 0) + (parts?.column("bytes")?.integer ?? 0), objects: objects?.column("n")?.integer ?? 0, buckets: buckets?.column("n")?.integer ?? 0)
    }

    public func allBlobKeys() async throws -> Set<String> {
        Set(try await read("SELECT blob_key FROM storage_objects UNION ALL SELECT blob_key FROM storage_multipart_parts").compactMap {
            $0.column("blob_key")?.string
        })
    }

    private static func binds(_ object: StoredObject) -> [SQLiteData] {
        [.text(object.tenant), .text(object.bucket), .text(object.name), .text(object.id), .text(object.blobKey), .integer(object.size),
         .text(object.mimeType), .text(object.cacheControl), .text(object.etag), .text(StoreCoding.encodeObject(object.userMetadata)),
         optional(object.ownerID), ms(object.createdAt), ms(object.updatedAt)]
    }

    private static func object(from row: SQLiteResultRow) throws -> StoredObject {
        guard let tenant = row.column("tenant")?.string, let bucket = row.column("bucket")?.string, let name = row.column("name")?.string,
            let id = row.column("id")?.string, let blobKey = row.column("blob_key")?.string
        else { throw ControlPlaneError.corrupt("storage object row") }
        let metadata = (row.column("metadata")?.string).flatMap { try? StoreCoding.decodeObject($0) } ?? [:]
        return StoredObject(
            tenant: tenant, bucket: bucket, name: name, id: id, blobKey: blobKey, size: row.column("size")?.integer ?? 0,
            mimeType: row.column("mime_type")?.string ?? "application/octet-stream", cacheControl: row.column("cache_control")?.string ?? "",
            etag: row.column("etag")?.string ?? "", userMetadata: metadata, ownerID: row.column("owner_id")?.string,
            createdAt: date(row, "created_at_ms"), updatedAt: date(row, "updated_at_ms"))
    }

    // MARK: S3 keys

    public func createS3Key(_ key: S3KeyRecord) async throws {
        try await transaction { db in
            _ = try db.rows(
                "INSERT INTO storage_s3_keys (tenant, id, access_key_id, sealed_secret, created_at_ms) VALUES (?, ?, ?, ?, ?)",
                [.text(key.tenant), .text(key.id), .text(key.accessKeyID), .blob(ByteBuffer(bytes: key.sealedSecret)), Self.ms(key.createdAt)])
        }
    }

    public func s3Keys(tenant: String) async throws -> [S3KeyRecord] {
        try await read("SELECT * FROM storage_s3_keys WHERE tenant = ? ORDER BY created_at_ms", [.text(tenant)]).compactMap(Self.s3Key(from:))
    }

    public func s3Key(accessKeyID: String) async throws -> S3KeyRecord? {
        try await read("SELECT * FROM storage_s3_keys WHERE access_key_id = ?", [.text(accessKeyID)]).first.flatMap(Self.s3Key(from:))
    }

    public func deleteS3Key(tenant: String, id: String) async throws -> Bool {
        try await transaction { db in
            !(try db.rows("DELETE FROM storage_s3_keys WHERE tenant = ? AND id = ? RETURNING 1", [.text(tenant), .text(id)])).isEmpty
        }
    }

    private static func s3Key(from row: SQLiteResultRow) -> S3KeyRecord? {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let access = row.column("access_key_id")?.string,
            let sealed = row.column("sealed_secret")?.blob
        else { return nil }
        return S3KeyRecord(tenant: tenant, id: id, accessKeyID: access, sealedSecret: Array(buffer: sealed), createdAt: date(row, "created_at_ms"))
    }

    // MARK: Multipart uploads

    public func createMultipartUpload(_ upload: MultipartUploadRecord) async throws {
        try await transaction { db in
            _ = try db.rows(
                """
                INSERT INTO storage_multipart_uploads (tenant, id, bucket, name, mime_type, cache_control, metadata, owner_id, created_at_ms)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(upload.tenant), .text(upload.id), .text(upload.bucket), .text(upload.name), .text(upload.mimeType), .text(upload.cacheControl),
                 .text(StoreCoding.encodeObject(upload.userMetadata)), Self.optional(upload.ownerID), Self.ms(upload.createdAt)])
        }
    }

    public func multipartUpload(tenant: String, id: String) async throws -> MultipartUploadRecord? {
        try await read("SELECT * FROM storage_multipart_uploads WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)]).first.flatMap(Self.upload(from:))
    }

    public func multipartUploads(before: Date) async throws -> [MultipartUploadRecord] {
        try await read("SELECT * FROM storage_multipart_uploads WHERE created_at_ms < ?", [Self.ms(before)]).compactMap(Self.upload(from:))
    }

    public func putPart(tenant: String, uploadID: String, part: MultipartPartRecord) async throws -> MultipartPartRecord? {
        try await transaction { db in
            guard !(try db.rows("SELECT 1 FROM storage_multipart_uploads WHERE tenant = ? AND id = ?", [.text(tenant), .text(uploadID)])).isEmpty
            else { throw StorageStoreError.objectMissing }
            let replaced = try db.rows(
                "DELETE FROM storage_multipart_parts WHERE tenant = ? AND upload_id = ? AND number = ? RETURNING *",
                [.text(tenant), .text(uploadID), .integer(part.number)]
            ).first.flatMap(Self.part(from:))
            _ = try db.rows(
                """
                INSERT INTO storage_multipart_parts (tenant, upload_id, number, blob_key, size, etag, md5, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(tenant), .text(uploadID), .integer(part.number), .text(part.blobKey), .integer(part.size), .text(part.etag),
                 .blob(ByteBuffer(bytes: part.md5)), Self.ms(part.createdAt)])
            return replaced
        }
    }

    public func parts(tenant: String, uploadID: String) async throws -> [MultipartPartRecord] {
        try await read("SELECT * FROM storage_multipart_parts WHERE tenant = ? AND upload_id = ? ORDER BY number", [.text(tenant), .text(uploadID)])
            .compactMap(Self.part(from:))
    }

    public func deleteMultipartUpload(tenant: String, id: String) async throws -> [MultipartPartRecord] {
        try await transaction { db in
            let parts = try db.rows(
                "DELETE FROM storage_multipart_parts WHERE tenant = ? AND upload_id = ? RETURNING *", [.text(tenant), .text(id)]
            ).compactMap(Self.part(from:))
            _ = try db.rows("DELETE FROM storage_multipart_uploads WHERE tenant = ? AND id = ?", [.text(tenant), .text(id)])
            return parts.sorted { $0.number < $1.number }
        }
    }

    private static func upload(from row: SQLiteResultRow) -> MultipartUploadRecord? {
        guard let tenant = row.column("tenant")?.string, let id = row.column("id")?.string, let bucket = row.column("bucket")?.string,
            let name = row.column("name")?.string
        else { return nil }
        return MultipartUploadRecord(
            tenant: tenant, id: id, bucket: bucket, name: name, mimeType: row.column("mime_type")?.string ?? "application/octet-stream",
            cacheControl: row.column("cache_control")?.string ?? "", userMetadata: (row.column("metadata")?.string).flatMap { try? StoreCoding.decodeObject($0) } ?? [:],
            ownerID: row.column("owner_id")?.string, createdAt: date(row, "created_at_ms"))
    }

    private static func part(from row: SQLiteResultRow) -> MultipartPartRecord? {
        guard let number = row.column("number")?.integer, let blob = row.column("blob_key")?.string, let md5 = row.column("md5")?.blob else { return nil }
        return MultipartPartRecord(
            number: number, blobKey: blob, size: row.column("size")?.integer ?? 0, etag: row.column("etag")?.string ?? "",
            md5: Array(buffer: md5), createdAt: date(row, "created_at_ms"))
    }
}
