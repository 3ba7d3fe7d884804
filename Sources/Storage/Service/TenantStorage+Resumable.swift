import Connectors
import Foundation
import NIOCore
import Runtime
import Tenancy

/// Resumable uploads (TUS 1.0.0): created with their length and what they will become, fed in
/// chunks of any size at the offset the server last acknowledged (synced to disk first), and
/// turned into the object only once complete — checked again then like any upload. Uploads not
/// touched for a day expire.
extension TenantStorage {
    public static let resumableExpiry: Duration = .seconds(24 * 3600)
    /// Uploads a tenant may have in progress at once.
    public static let maxOpenResumable = 20

    public struct ResumableUpload: Sendable {
        public let id: String
        public let request: UploadRequest
        public let length: Int
        public let ownerID: String?
        public let createdAt: Date
        public var offset: Int
        public var expiresAt: Date { createdAt.addingTimeInterval(Double(TenantStorage.resumableExpiry.components.seconds)) }
    }

    var resumableStore: LocalBlobStore {
        get throws {
            guard let local = blobs.resumableArea else {
                throw StorageError(status: 501, error: "Not Implemented", code: "MB911", message: "resumable uploads need a local upload area")
            }
            return local
        }
    }

    public func createResumable(_ request: UploadRequest, length: Int, access: Access) async throws -> ResumableUpload {
        var request = request
        request.declaredLength = length
        let prepared = try await prepareUpload(request, access: access)
        // The quota counts the uploads in progress at their full length: checked now, and again
        // at completion; their bytes on disk are bounded by their number and lengths.
        let open = await (try resumableStore).openUploads(tenant: tenant)
        guard open.count < Self.maxOpenResumable else {
            throw StorageError(status: 429, error: "Too Many Requests", code: "TooManyUploads",
                               message: "the tenant has \(open.count) resumable uploads in progress; finish or terminate some first")
        }
        let store = self.store, tenant = self.tenant
        guard try await ledger.reserve(length + open.bytes, limit: limits().maxBytes, load: { try await store.storageUsage(tenant: tenant).bytes }) else {
            throw StorageError.quotaExceeded("the tenant's storage quota of \(limits().maxBytes) bytes would be exceeded")
        }
        ledger.release(length + open.bytes)
        let upload = ResumableUpload(
            id: UUID().uuidString.lowercased(), request: prepared.request, length: length, ownerID: access.claims["sub"]?.stringValue,
            createdAt: Date(), offset: 0)
        try await resumableStore.createResumable(id: upload.id, manifest: manifest(upload).encoded())
        return upload
    }

    /// The upload, when it is this tenant's and the caller's (or the caller is the service role).
    public func resumable(_ id: String, access: Access) async throws -> ResumableUpload {
        guard let (bytes, offset) = try await resumableStore.resumable(id: id), let upload = try? Self.upload(id: id, manifest: bytes, offset: offset),
            upload.request.bucket.isEmpty == false, (try? JSONValue.parse(bytes))?["tenant"]?.stringValue == tenant
        else { throw StorageError(status: 404, error: "not_found", code: "NoSuchUpload", message: "no such upload") }
        // Only its starter continues it: the same user, or the service role (an upload the
        // service role started has no owner, and is the service role's alone).
        guard access.bypass || (upload.ownerID != nil && upload.ownerID == access.claims["sub"]?.stringValue) else {
            throw StorageError.accessDenied("this upload was started by someone else")
        }
        guard upload.expiresAt > Date() else {
            await terminateResumable(id)
            throw StorageError(status: 410, error: "Gone", code: "UploadExpired", message: "the upload expired")
        }
        return upload
    }

    /// Appends a chunk at `offset`; answers the upload as it now stands and, once complete, the
    /// object it became.
    public func appendResumable(_ upload: ResumableUpload, offset: Int, access: Access, body: BodySource) async throws
        -> (upload: ResumableUpload, object: StoredObject?)
    {
        // One chunk at a time per upload (on this node): two at the same offset would overwrite
        // each other.
        guard activeUploads.withLockedValue({ $0.insert(upload.id).inserted }) else {
            throw StorageError(status: 409, error: "Conflict", code: "UploadBusy", message: "another chunk of this upload is being written")
        }
        defer { _ = activeUploads.withLockedValue { $0.remove(upload.id) } }
        guard let current = try await resumableStore.resumable(id: upload.id), current.offset == offset else {
            throw StorageError(status: 409, error: "Conflict", code: "OffsetMismatch", message: "Upload-Offset \(offset) is not the upload's offset")
        }
        let length = upload.length
        var updated = upload
        updated.offset = try await resumableStore.appendResumable(id: upload.id, at: offset) { write in
            var position = offset
            try await withoutActuallyEscaping(write) { write in
                try await body { piece in
                    guard position + piece.readableBytes <= length else {
                        throw StorageError(
                            status: 413, error: "Payload too large", code: "EntityTooLarge", message: "the chunk goes past the upload's length of \(length) bytes")
                    }
                    try await write(piece)
                    position += piece.readableBytes
                }
            }
        }
        guard updated.offset == length else { return (updated, nil) }
        return (updated, try await completeResumable(updated, access: access))
    }

    func completeResumable(_ upload: ResumableUpload, access: Access) async throws -> StoredObject {
        // The policy is decided again on the finished object, for the caller who started it
        // (`resumable` let only them, or the service role, this far).
        let actingAccess = access
        let prepared: PreparedUpload
        do {
            prepared = try await prepareUpload(upload.request, access: actingAccess)
        } catch let refusal as StorageError where (400..<500).contains(refusal.status) {
            // A definitive refusal (policy, name taken, type): the upload can never complete.
            await terminateResumable(upload.id)
            throw refusal
        }
        let store = self.store, tenant = self.tenant
        guard try await ledger.reserve(upload.length, limit: limits().maxBytes, load: { try await store.storageUsage(tenant: tenant).bytes }) else {
            await terminateResumable(upload.id)
            throw StorageError.quotaExceeded("the tenant's storage quota of \(limits().maxBytes) bytes would be exceeded")
        }
        let finished: (key: String, size: Int, md5: String)
        do {
            let area = try resumableStore
            let local = try await area.finishResumable(id: upload.id, tenant: tenant)
            if area === blobs as AnyObject {
                finished = local
            } else {
                // Another backend (S3): the finished file is sent there as a blob of its own.
                let writer = try await blobs.create(tenant: tenant)
                do {
                    try await area.pour(local.key) { try await writer.append($0) }
                    finished = (writer.key, writer.size, try await writer.commit())
                    await area.delete(local.key)
                } catch {
                    await writer.abort()
                    await area.delete(local.key)
                    throw error
                }
            }
        } catch {
            ledger.release(upload.length)
            throw error
        }
        let blob = WrittenBlob(key: finished.key, size: finished.size, md5: finished.md5, reserved: upload.length)
        return try await commit(prepared, blob: blob, access: actingAccess)
    }

    public func terminateResumable(_ id: String) async {
        await (try? resumableStore)?.deleteResumable(id: id)
    }

    func manifest(_ upload: ResumableUpload) -> JSONValue {
        let request = upload.request
        return [
            "tenant": .string(tenant), "bucket": .string(request.bucket), "name": .string(request.name), "contentType": .string(request.contentType),
            "cacheControl": .string(request.cacheControl), "metadata": .object(request.metadata), "upsert": .bool(request.upsert),
            "length": .integer(Int64(upload.length)), "owner": upload.ownerID.map(JSONValue.string) ?? .null,
            "createdAt": .number(upload.createdAt.timeIntervalSince1970),
        ]
    }

    static func upload(id: String, manifest bytes: [UInt8], offset: Int) throws -> ResumableUpload {
        let value = try JSONValue.parse(bytes)
        guard let bucket = value["bucket"]?.stringValue, let name = value["name"]?.stringValue, let length = value["length"]?.intValue,
            let created = value["createdAt"]?.doubleValue
        else { throw StorageError.invalidRequest("the upload's manifest is damaged") }
        let request = UploadRequest(
            bucket: bucket, name: name, upsert: value["upsert"]?.boolValue ?? false, contentType: value["contentType"]?.stringValue ?? "",
            cacheControl: value["cacheControl"]?.stringValue ?? "no-cache", metadata: value["metadata"]?.objectValue ?? [:], declaredLength: Int(length))
        return ResumableUpload(
            id: id, request: request, length: Int(length), ownerID: value["owner"]?.stringValue, createdAt: Date(timeIntervalSince1970: created),
            offset: offset)
    }
}
