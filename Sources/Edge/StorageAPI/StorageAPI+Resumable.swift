import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy

/// TUS 1.0.0 at `{apiUrl}/storage/v1/upload/resumable` (creation, creation-with-upload,
/// termination, expiration), as Supabase serves it and tuspy speaks it. `Upload-Metadata` names
/// `bucketName`, `objectName`, `contentType`, `cacheControl` and `metadata` (JSON).
extension StorageAPI {
    static let tusVersion = "1.0.0"
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!

    func resumable(_ call: Call, _ rest: [String]) async throws -> Response {
        let method = call.request.method
        var headers: HTTPFields = [Self.tusResumable: Self.tusVersion]
        if method == .options {
            headers[HTTPField.Name("Tus-Version")!] = Self.tusVersion
            headers[HTTPField.Name("Tus-Extension")!] = "creation,creation-with-upload,termination,expiration"
            headers[HTTPField.Name("Tus-Max-Size")!] = String(call.tree.tenant.limits.storage.maxObjectBytes)
            return Response(status: .noContent, headers: headers)
        }
        guard call.request.headers.value(Self.tusResumable) == Self.tusVersion else {
            throw StorageError(status: 412, error: "Precondition Failed", code: "TusVersion", message: "Tus-Resumable must be \(Self.tusVersion)")
        }
        try call.requireKey()
        switch (method, rest.count) {
        case (.post, 0):
            return try await createResumable(call, headers: headers)
        case (.head, 1):
            let upload = try await call.storage.resumable(rest[0], access: call.access)
            headers[Self.uploadOffset] = String(upload.offset)
            headers[Self.uploadLength] = String(upload.length)
            headers[Self.uploadExpires] = Self.httpDate(upload.expiresAt)
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers)
        case (.patch, 1):
            let upload = try await call.storage.resumable(rest[0], access: call.access)
            let (updated, _) = try await append(call, upload)
            headers[Self.uploadOffset] = String(updated.offset)
            headers[Self.uploadExpires] = Self.httpDate(updated.expiresAt)
            return Response(status: .noContent, headers: headers)
        case (.delete, 1):
            _ = try await call.storage.resumable(rest[0], access: call.access)
            await call.storage.terminateResumable(rest[0])
            return Response(status: .noContent, headers: headers)
        default:
            throw StorageError(status: 405, error: "Method Not Allowed", code: "MethodNotAllowed", message: "\(method) is not a TUS request here")
        }
    }

    private func createResumable(_ call: Call, headers: HTTPFields) async throws -> Response {
        var headers = headers
        let request = call.request
        guard request.headers[HTTPField.Name("Upload-Defer-Length")!] == nil else {
            throw StorageError.invalidRequest("Upload-Defer-Length is not supported: send Upload-Length")
        }
        guard let lengthText = request.headers.value(Self.uploadLength), let length = Int(lengthText), length >= 0 else {
            throw StorageError.invalidRequest("Upload-Length must be the upload's size in bytes")
        }
        let metadata = try Self.tusMetadata(request.headers[HTTPField.Name("Upload-Metadata")!] ?? "")
        guard let bucket = metadata["bucketName"], let name = metadata["objectName"] else {
            throw StorageError.invalidRequest("Upload-Metadata must name bucketName and objectName")
        }
        let userMetadata = try Self.metadata(fromField: metadata["metadata"]) ?? [:]
        let upload = try await call.storage.createResumable(
            .init(bucket: bucket, name: name, upsert: Self.flag(request.headers[HTTPField.Name("x-upsert")!]),
                  contentType: metadata["contentType"] ?? "application/octet-stream", cacheControl: Self.cacheControl(metadata["cacheControl"]),
                  metadata: userMetadata),
            length: length, access: call.access)
        headers[.location] = call.node.apiURL(for: call.tree.slug) + "/storage/v1/upload/resumable/" + upload.id
        headers[Self.uploadExpires] = Self.httpDate(upload.expiresAt)
        // creation-with-upload: the first bytes may come with the creation.
        if request.headers.value(.contentType) == "application/offset+octet-stream" {
            let (updated, _) = try await append(call, upload)
            headers[Self.uploadOffset] = String(updated.offset)
        }
        return Response(status: .created, headers: headers)
    }

    private func append(_ call: Call, _ upload: TenantStorage.ResumableUpload) async throws -> (TenantStorage.ResumableUpload, StoredObject?) {
        let request = call.request
        guard request.headers.value(.contentType) == "application/offset+octet-stream" else {
            throw StorageError(status: 415, error: "Unsupported Media Type", code: "InvalidContentType", message: "a TUS chunk is application/offset+octet-stream")
        }
        guard let offsetText = request.headers.value(Self.uploadOffset) ?? (request.method == .post ? "0" : nil), let offset = Int(offsetText) else {
            throw StorageError.invalidRequest("Upload-Offset is missing")
        }
        let body = request.body
        return try await call.storage.appendResumable(upload, offset: offset, access: call.access) { sink in
            for try await piece in body { try await sink(piece) }
        }
    }

    /// `key base64,key base64,flag`.
    static func tusMetadata(_ header: String) throws -> [String: String] {
        var values: [String: String] = [:]
        for pair in header.split(separator: ",") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
            guard let key = parts.first else { continue }
            if parts.count == 1 {
                values[String(key)] = ""
                continue
            }
            guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                throw StorageError.invalidRequest("Upload-Metadata value of '\(key)' is not base64 UTF-8")
            }
            values[String(key)] = text
        }
        return values
    }
}
