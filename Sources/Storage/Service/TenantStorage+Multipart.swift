import Connectors
import Crypto
import Foundation
import NIOCore
import Runtime
import Tenancy

/// S3 multipart uploads: each part is a blob of its own, recorded as it arrives (and counted
/// against the quota); completing writes the parts, in the order named, into the object's blob
/// and commits it like any upload; aborting removes the parts.
extension TenantStorage {
    public static let maxPartNumber = 10_000
    /// S3's minimum for every part but the last.
    public static let minPartSize = 5 << 20

    public func createMultipartUpload(_ request: UploadRequest, access: Access) async throws -> MultipartUploadRecord {
        var request = request
        request.upsert = true
        // Everything a single upload would check, now; the size is checked per part and at the end.
        let prepared = try await prepareUpload(request, access: access)
        let upload = MultipartUploadRecord(
            tenant: tenant, id: UUID().uuidString.lowercased(), bucket: prepared.bucket.id, name: prepared.request.name,
            mimeType: prepared.request.contentType, cacheControl: prepared.request.cacheControl, userMetadata: prepared.request.metadata,
            ownerID: access.claims["sub"]?.stringValue, createdAt: Date())
        try await store.createMultipartUpload(upload)
        return upload
    }

    /// The upload, when it is this object's and the caller's (or the caller is the service role).
    public func multipartUpload(bucket: String, name: String, id: String, access: Access) async throws -> MultipartUploadRecord {
        guard let upload = try await store.multipartUpload(tenant: tenant, id: id), upload.bucket == bucket, upload.name == name else {
            throw S3Error.noSuchUpload()
        }
        guard access.bypass || (upload.ownerID != nil && upload.ownerID == access.claims["sub"]?.stringValue) else {
            throw S3Error.accessDenied("this multipart upload was started by someone else")
        }
        return upload
    }

    /// Stores one part; answers its quoted MD5 ETag. `body` checks its own digests and throws
    /// before it ends when they differ.
    public func uploadPart(_ upload: MultipartUploadRecord, number: Int, declared: Int?, body: BodySource) async throws -> String {
        guard (1...Self.maxPartNumber).contains(number) else { throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive") }
        let limit = limits().maxObjectBytes
        let blob = try await writeBlob(maxBytes: limit, declared: declared, body: body)
        let part = MultipartPartRecord(
            number: number, blobKey: blob.key, size: blob.size, etag: "\"\(blob.md5)\"", md5: Self.bytes(hex: blob.md5), createdAt: Date())
        do {
            let replaced = try await store.putPart(tenant: tenant, uploadID: upload.id, part: part)
            ledger.committed(added: blob.size, removed: replaced?.size ?? 0, releasing: blob.reserved)
            if let replaced { await blobs.delete(replaced.blobKey) }
        } catch StorageStoreError.objectMissing {
            await discard(blob)
            throw S3Error.noSuchUpload()
        } catch {
            await discard(blob)
            throw error
        }
        return part.etag
    }

    public func parts(of upload: MultipartUploadRecord) async throws -> [MultipartPartRecord] {
        try await store.parts(tenant: tenant, uploadID: upload.id)
    }

    /// Joins the named parts into the object. Every part but the last must be 5 MiB or more and
    /// each ETag must match its part, as S3 requires.
    public func completeMultipartUpload(_ upload: MultipartUploadRecord, parts named: [(number: Int, etag: String)], access: Access) async throws -> StoredObject {
        let stored = Dictionary(uniqueKeysWithValues: try await store.parts(tenant: tenant, uploadID: upload.id).map { ($0.number, $0) })
        var chosen: [MultipartPartRecord] = []
        var last = 0
        for (index, entry) in named.enumerated() {
            guard entry.number > last else { throw S3Error(status: 400, code: "InvalidPartOrder", message: "The list of parts was not in ascending order.") }
            last = entry.number
            guard let part = stored[entry.number], Self.sameETag(part.etag, entry.etag) else {
                throw S3Error.invalidPart("One or more of the specified parts could not be found or its entity tag did not match.")
            }
            if index < named.count - 1, part.size < Self.minPartSize {
                throw S3Error(status: 400, code: "EntityTooSmall", message: "Your proposed upload is smaller than the minimum allowed object size.")
            }
            chosen.append(part)
        }
        let request = UploadRequest(
            bucket: upload.bucket, name: upload.name, upsert: true, contentType: upload.mimeType, cacheControl: upload.cacheControl,
            metadata: upload.userMetadata)
        let prepared = try await prepareUpload(request, access: access)
        let total = chosen.reduce(0) { $0 + $1.size }
        if total > prepared.maxBytes { throw StorageError.entityTooLarge(limit: prepared.maxBytes) }
        // The parts already count against the quota; the joined copy replaces them.
        let blob = try await writeBlob(maxBytes: prepared.maxBytes, declared: total, quotaCredit: total) { sink in
            for part in chosen { try await blobs.pour(part.blobKey, into: sink) }
        }
        var digests = Insecure.MD5()
        for part in chosen { digests.update(data: part.md5) }
        let etag = "\"\(SigV4.hex(digests.finalize()))-\(chosen.count)\""
        let object = try await commit(prepared, blob: blob, access: access, etag: etag)
        try await abortMultipartUpload(upload)
        return object
    }

    public func abortMultipartUpload(_ upload: MultipartUploadRecord) async throws {
        for part in try await store.deleteMultipartUpload(tenant: tenant, id: upload.id) {
            await blobs.delete(part.blobKey)
            ledger.removed(part.size)
        }
    }

    static func sameETag(_ a: String, _ b: String) -> Bool {
        a.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) == b.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
