import Connectors
import Foundation
import NIOCore
import Runtime
import Tenancy

extension TenantStorage {
    /// What an upload says about the object besides its bytes.
    public struct UploadRequest: Sendable {
        public var bucket: String
        public var name: String
        public var upsert: Bool
        public var contentType: String
        public var cacheControl: String
        public var metadata: JSONObject
        /// The body's length when the client declared it; checked before any byte is read.
        public var declaredLength: Int?
        /// Refuse unless the current object's ETag is this (S3's and HTTP's If-Match).
        public var ifMatch: String?

        public init(bucket: String, name: String, upsert: Bool, contentType: String, cacheControl: String, metadata: JSONObject = [:],
                    declaredLength: Int? = nil, ifMatch: String? = nil) {
            self.bucket = bucket
            self.name = name
            self.upsert = upsert
            self.contentType = contentType
            self.cacheControl = cacheControl
            self.metadata = metadata
            self.declaredLength = declaredLength
            self.ifMatch = ifMatch
        }
    }

    /// Where an upload's bytes come from: called once with a sink that takes each piece in order
    /// (and waits, which is the back-pressure), returns when the body has ended.
    public typealias BodySource = (_ sink: (ByteBuffer) async throws -> Void) async throws -> Void

    /// Everything an upload must pass before its body is read: the name, the bucket, its MIME
    /// rules, the declared length, the policy's check and, without upsert, that the name is free.
    public struct PreparedUpload: Sendable {
        /// Fields a form sends after its file (cache control, metadata) may still change.
        public var request: UploadRequest
        public let bucket: StorageBucket
        public let existing: StoredObject?
        public let maxBytes: Int
        let ownerID: String?
    }

    /// `checkingType: false` when the type is not known yet (signing an upload URL): the upload
    /// itself checks it.
    public func prepareUpload(_ request: UploadRequest, access: Access, checkingType: Bool = true) async throws -> PreparedUpload {
        var request = request
        request.name = try StorageNames.object(request.name)
        guard let bucket = try await store.bucket(tenant: tenant, id: request.bucket) else { throw StorageError.bucketNotFound(request.bucket) }
        request.contentType = Self.normalizedType(request.contentType)
        if checkingType, let allowed = bucket.allowedMimeTypes, !allowed.isEmpty, !Self.matches(request.contentType, allowed) {
            throw StorageError.invalidMimeType(request.contentType)
        }
        let limits = self.limits()
        let maxBytes = min(bucket.fileSizeLimit ?? Int.max, limits.maxObjectBytes)
        if let declared = request.declaredLength, declared > maxBytes { throw StorageError.entityTooLarge(limit: maxBytes) }
        let existing = try await store.object(tenant: tenant, bucket: bucket.id, name: request.name)
        if let existing {
            guard request.upsert else { throw StorageError.duplicateObject() }
            if let expected = request.ifMatch, !Self.etagList(expected, matches: existing.etag) { throw StorageError.preconditionFailed() }
        } else if request.ifMatch != nil {
            throw StorageError.preconditionFailed()
        }
        let ownerID = access.claims["sub"]?.stringValue
        try checkWrite(request, existing: existing, size: request.declaredLength, ownerID: ownerID, access: access)
        return PreparedUpload(request: request, bucket: bucket, existing: existing, maxBytes: maxBytes, ownerID: ownerID)
    }

    /// Streams the body into a new blob, counting it against the object and tenant limits as it
    /// comes, then commits the row (the policy's check again, with the real size). A refused or
    /// failed upload leaves nothing: no blob, no row, no reservation.
    public func upload(_ prepared: PreparedUpload, access: Access, body: BodySource) async throws -> StoredObject {
        let written = try await writeBlob(maxBytes: prepared.maxBytes, declared: prepared.request.declaredLength, body: body)
        return try await commit(prepared, blob: written, access: access)
    }

    /// A blob that is durable but not yet any object's.
    public struct WrittenBlob: Sendable {
        public let key: String
        public let size: Int
        public let md5: String
        /// Bytes reserved against the tenant's quota until the row is committed.
        let reserved: Int
    }

    /// Writes a blob from `body` under the limits; the caller commits it with `commit` or gives it
    /// back with `discard`.
    /// `quotaCredit`: stored bytes this blob will replace (the parts a multipart completion joins).
    public func writeBlob(maxBytes: Int, declared: Int?, quotaCredit: Int = 0, body: BodySource) async throws -> WrittenBlob {
        let quota = limits().maxBytes
        // A declared length beyond the limit is refused before anything is reserved or read.
        if let declared, declared > maxBytes { throw StorageError.entityTooLarge(limit: maxBytes) }
        let store = self.store, tenant = self.tenant
        let load = { try await store.storageUsage(tenant: tenant).bytes }
        // Reserve what was declared at once, or grow the reservation as pieces come.
        let reserved = ReservedBytes(ledger, limit: quota, credit: quotaCredit)
        guard try await reserved.grow(to: declared ?? 0, load: load) else {
            throw StorageError.quotaExceeded("the tenant's storage quota of \(quota) bytes would be exceeded")
        }
        let writer: any BlobWriter
        do {
            writer = try await blobs.create(tenant: tenant)
        } catch {
            reserved.releaseAll()
            throw error
        }
        do {
            // Pieces from the network are small (tens of KiB): gathered into 1 MiB before each
            // write, so the disk and the pool see few, large writes.
            var gathered = ByteBuffer()
            var received = 0
            try await body { piece in
                received += piece.readableBytes
                if received > maxBytes { throw StorageError.entityTooLarge(limit: maxBytes) }
                if received > reserved.bytes {
                    guard try await reserved.grow(to: received, load: load) else {
                        throw StorageError.quotaExceeded("the tenant's storage quota of \(quota) bytes would be exceeded")
                    }
                }
                if gathered.readableBytes == 0 && piece.readableBytes >= Self.writeSize {
                    try await writer.append(piece)
                    return
                }
                var piece = piece
                gathered.writeBuffer(&piece)
                if gathered.readableBytes >= Self.writeSize {
                    try await writer.append(gathered)
                    gathered = ByteBuffer()
                }
            }
            if gathered.readableBytes > 0 { try await writer.append(gathered) }
            if let declared, writer.size != declared {
                throw StorageError.invalidRequest("the body had \(writer.size) bytes, not the \(declared) its length declared")
            }
            let md5 = try await writer.commit()
            // Keep exactly what was stored reserved until the row holds it.
            reserved.shrink(to: writer.size)
            return WrittenBlob(key: writer.key, size: writer.size, md5: md5, reserved: reserved.bytes)
        } catch {
            await writer.abort()
            reserved.releaseAll()
            throw error
        }
    }

    static let writeSize = 1 << 20

    public func discard(_ blob: WrittenBlob) async {
        await blobs.delete(blob.key)
        ledger.release(blob.reserved)
    }

    /// Makes a written blob the object's bytes: checks the policy with the real row, commits the
    /// row (replacing the version `prepareUpload` saw), then removes the replaced blob.
    public func commit(_ prepared: PreparedUpload, blob: WrittenBlob, access: Access, etag: String? = nil) async throws -> StoredObject {
        let request = prepared.request
        let now = Date()
        let object = StoredObject(
            tenant: tenant, bucket: prepared.bucket.id, name: request.name, id: prepared.existing?.id ?? UUID().uuidString.lowercased(),
            blobKey: blob.key, size: blob.size, mimeType: request.contentType, cacheControl: request.cacheControl,
            etag: etag ?? "\"\(blob.md5)\"", userMetadata: request.metadata, ownerID: prepared.ownerID,
            createdAt: prepared.existing?.createdAt ?? now, updatedAt: now)
        do {
            try checkWrite(request, existing: prepared.existing, size: blob.size, ownerID: prepared.ownerID, access: access)
            try await store.putObject(object, replacing: prepared.existing?.blobKey)
        } catch {
            await discard(blob)
            switch error {
            case StorageStoreError.objectExists: throw StorageError.duplicateObject()
            case StorageStoreError.conflict: throw StorageError.conflict()
            case StorageStoreError.bucketMissing: throw StorageError.bucketNotFound(request.bucket)
            default: throw error
            }
        }
        ledger.committed(added: blob.size, removed: prepared.existing?.size ?? 0, releasing: blob.reserved)
        if let replaced = prepared.existing { await blobs.delete(replaced.blobKey) }
        return object
    }

    /// The policy decision for writing `request` over `existing` (create, or update with its
    /// `when` on the old row and `check` on the new).
    func checkWrite(_ request: UploadRequest, existing: StoredObject?, size: Int?, ownerID: String?, access: Access) throws {
        let newRow = StorageEntities.row(
            bucket: request.bucket, name: request.name, id: existing?.id, ownerID: ownerID, size: size, mimeType: request.contentType,
            metadata: request.metadata, createdAt: existing?.createdAt, updatedAt: Date())
        if let existing {
            guard try decide(.update, StorageEntities.objects, StorageEntities.row(existing), .existing, access) else {
                throw denied(.update, "storage.objects", access, detail: "the update policy's when does not allow overwriting '\(existing.name)'")
            }
            guard try decide(.update, StorageEntities.objects, newRow, .new, access) else {
                throw denied(.update, "storage.objects", access, detail: "the new object fails the update policy's check")
            }
        } else {
            guard try decide(.create, StorageEntities.objects, newRow, .new, access) else {
                throw denied(.create, "storage.objects", access, detail: "the new object fails the create policy's check")
            }
        }
    }

    // MARK: - Reading

    /// The object, when the caller may read it: public buckets need no policy; a row the policy
    /// hides is answered as missing.
    public func object(bucket: String, name: String, access: Access, publicOnly: Bool = false) async throws -> StoredObject {
        let name = try StorageNames.object(name)
        guard let bucketRow = try await self.bucketRow(bucket) else { throw StorageError.bucketNotFound(bucket) }
        if publicOnly, !bucketRow.isPublic { throw StorageError.bucketNotFound(bucket) }
        guard let object = try await store.object(tenant: tenant, bucket: bucket, name: name) else { throw StorageError.objectNotFound() }
        // Objects of public buckets are readable by anyone; others by the read policy, which
        // answers a hidden object as a missing one.
        if !bucketRow.isPublic {
            guard try decide(.read, StorageEntities.objects, StorageEntities.row(object), .existing, access) else { throw StorageError.objectNotFound() }
        }
        return object
    }

    /// A signed URL's object: the token was checked; no policy applies.
    public func signedObject(bucket: String, name: String) async throws -> StoredObject {
        guard let object = try await store.object(tenant: tenant, bucket: bucket, name: name) else { throw StorageError.objectNotFound() }
        return object
    }

    public func openBlob(_ object: StoredObject) async throws -> any BlobReader {
        try await blobs.open(object.blobKey)
    }

    /// A small object's bytes in one step; nil when it is larger than `limit`.
    public func readWhole(_ object: StoredObject, limit: Int) async throws -> ByteBuffer? {
        try await blobs.readWhole(object.blobKey, limit: limit)
    }

    /// Whether this node renders image transforms (libvips is there).
    public var rendersImages: Bool { images != nil }

    /// A transformed variant of an image object (the caller has decided the object may be read).
    public func render(_ object: StoredObject, transform: ImageTransform, acceptsWebP: Bool) async throws -> ImageTransformer.Rendered {
        guard let images else {
            throw StorageError(status: 501, error: "Not Implemented", code: "MB910", message: "image transforms are not available on this node")
        }
        guard object.size <= ImageTransformer.maxSourceBytes else {
            throw StorageError(status: 413, error: "Payload too large", code: "ImageTooLarge",
                               message: "the image is \(object.size) bytes; transforms take sources of at most \(ImageTransformer.maxSourceBytes)")
        }
        return try await images.render(key: object.blobKey, transform: transform, acceptsWebP: acceptsWebP) {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(object.size)
            try await blobs.pour(object.blobKey) { bytes += $0.readableBytesView }
            return bytes
        }
    }

    // MARK: - Changing and removing

    public func move(bucket: String, from: String, to: String, toBucket: String?, access: Access) async throws {
        let from = try StorageNames.object(from), to = try StorageNames.object(to)
        let destination = toBucket ?? bucket
        let source = try await object(bucket: bucket, name: from, access: access)
        guard try decide(.update, StorageEntities.objects, StorageEntities.row(source), .existing, access) else {
            throw denied(.update, "storage.objects", access, detail: "the update policy's when does not allow moving '\(from)'")
        }
        var moved = source
        moved.bucket = destination
        moved.name = to
        if destination != bucket {
            // The destination's own rules, as an upload into it would meet them.
            guard let target = try await store.bucket(tenant: tenant, id: destination) else { throw StorageError.bucketNotFound(destination) }
            if let allowed = target.allowedMimeTypes, !allowed.isEmpty, !Self.matches(source.mimeType, allowed) { throw StorageError.invalidMimeType(source.mimeType) }
            let limit = min(target.fileSizeLimit ?? Int.max, limits().maxObjectBytes)
            if source.size > limit { throw StorageError.entityTooLarge(limit: limit) }
        }
        guard try decide(.update, StorageEntities.objects, StorageEntities.row(moved), .new, access) else {
            throw denied(.update, "storage.objects", access, detail: "the moved object fails the update policy's check")
        }
        do {
            _ = try await store.moveObject(tenant: tenant, bucket: bucket, name: from, toBucket: destination, toName: to, overwrite: false)
        } catch StorageStoreError.objectExists {
            throw StorageError.duplicateObject()
        } catch StorageStoreError.objectMissing {
            throw StorageError.objectNotFound()
        } catch StorageStoreError.bucketMissing {
            throw StorageError.bucketNotFound(destination)
        }
    }

    /// Copies the bytes into a new blob (so either copy can change alone) and creates the row.
    public func copy(bucket: String, from: String, to: String, toBucket: String?, upsert: Bool = false, access: Access) async throws -> StoredObject {
        let source = try await object(bucket: bucket, name: from, access: access)
        let request = UploadRequest(
            bucket: toBucket ?? bucket, name: to, upsert: upsert, contentType: source.mimeType, cacheControl: source.cacheControl,
            metadata: source.userMetadata, declaredLength: source.size)
        let prepared = try await prepareUpload(request, access: access)
        let blob = try await writeBlob(maxBytes: prepared.maxBytes, declared: source.size) { sink in
            try await blobs.pour(source.blobKey, into: sink)
        }
        return try await commit(prepared, blob: blob, access: access, etag: source.etag)
    }

    /// Removes the named objects the caller may delete; answers the rows removed. Names the
    /// caller may not see or delete are skipped, as Supabase does.
    public func remove(bucket: String, names: [String], access: Access) async throws -> [StoredObject] {
        guard try await store.bucket(tenant: tenant, id: bucket) != nil else { throw StorageError.bucketNotFound(bucket) }
        var allowed: [String] = []
        for name in names {
            guard let object = try await store.object(tenant: tenant, bucket: bucket, name: name) else { continue }
            if try decide(.delete, StorageEntities.objects, StorageEntities.row(object), .existing, access) { allowed.append(name) }
        }
        guard !allowed.isEmpty else { return [] }
        let deleted = try await store.deleteObjects(tenant: tenant, bucket: bucket, names: allowed)
        for object in deleted {
            await blobs.delete(object.blobKey)
            ledger.removed(object.size)
        }
        return deleted
    }

    // MARK: - MIME types and ETags

    static func normalizedType(_ type: String) -> String {
        let trimmed = type.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? "application/octet-stream" : trimmed
    }

    /// `image/png` against `image/*` or `image/png`; parameters (`;charset=…`) are ignored.
    static func matches(_ type: String, _ allowed: [String]) -> Bool {
        let bare = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return allowed.contains { pattern in
            let pattern = pattern.lowercased()
            if pattern.hasSuffix("/*") { return bare.hasPrefix(String(pattern.dropLast())) }
            return bare == pattern
        }
    }

    /// Whether an `If-Match`/`If-None-Match` list names `etag` (quoted or not, weak or not, or `*`).
    public static func etagList(_ header: String, matches etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            var candidate = candidate.trimmingCharacters(in: .whitespaces)
            if candidate.hasPrefix("W/") { candidate.removeFirst(2) }
            return candidate == "*" || candidate == etag || "\"\(candidate)\"" == etag
        }
    }
}

/// Bytes held in the tenant's ledger by one upload.
final class ReservedBytes: @unchecked Sendable {
    private let ledger: StorageLedger
    private let limit: Int
    private let credit: Int
    private(set) var bytes = 0

    init(_ ledger: StorageLedger, limit: Int, credit: Int) {
        self.ledger = ledger
        self.limit = limit
        self.credit = credit
    }

    func grow(to total: Int, load: () async throws -> Int) async throws -> Bool {
        let needed = total - bytes
        guard needed > 0 else { return true }
        // Ahead in 1 MiB steps, so a stream of small pieces does not take the lock for each.
        for step in [max(needed, 1 << 20), needed] where try await ledger.reserve(step, limit: limit, credit: credit, load: load) {
            bytes += step
            return true
        }
        return false
    }

    func shrink(to total: Int) {
        if bytes > total {
            ledger.release(bytes - total)
            bytes = total
        }
    }

    func releaseAll() {
        ledger.release(bytes)
        bytes = 0
    }
}
