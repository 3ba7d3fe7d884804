import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Storage
import Tenancy

extension S3API {
    func createMultipartUpload(_ call: Call) async throws -> Response {
        let headers = call.request.headers
        let request = TenantStorage.UploadRequest(
            bucket: call.bucket!, name: call.key!, upsert: true, contentType: headers.value(.contentType) ?? "binary/octet-stream",
            cacheControl: headers.value(.cacheControl) ?? "no-cache", metadata: Self.userMetadata(headers))
        let upload = try await call.storage.createMultipartUpload(request, access: call.access)
        return Self.xml(
            "<InitiateMultipartUploadResult xmlns=\"\(S3XML.namespace)\">\(S3XML.element("Bucket", upload.bucket))\(S3XML.element("Key", upload.name))"
                + "\(S3XML.element("UploadId", upload.id))</InitiateMultipartUploadResult>")
    }

    func uploadPart(_ call: Call) async throws -> Response {
        let upload = try await call.storage.multipartUpload(bucket: call.bucket!, name: call.key!, id: call.query["uploadId"] ?? "", access: call.access)
        guard let number = Int(call.query["partNumber"] ?? "") else { throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive") }
        let body = try S3Body(call)
        let etag = try await call.storage.uploadPart(upload, number: number, declared: try S3Body.declaredLength(call)) { sink in
            try await body.stream(into: sink)
        }
        return Self.empty(headers: [.eTag: etag])
    }

    func listParts(_ call: Call) async throws -> Response {
        let upload = try await call.storage.multipartUpload(bucket: call.bucket!, name: call.key!, id: call.query["uploadId"] ?? "", access: call.access)
        let parts = try await call.storage.parts(of: upload).map { part in
            "<Part><PartNumber>\(part.number)</PartNumber>\(S3XML.element("LastModified", S3XML.timestamp(part.createdAt)))"
                + "\(S3XML.element("ETag", part.etag))<Size>\(part.size)</Size></Part>"
        }
        return Self.xml(
            "<ListPartsResult xmlns=\"\(S3XML.namespace)\">\(S3XML.element("Bucket", upload.bucket))\(S3XML.element("Key", upload.name))"
                + "\(S3XML.element("UploadId", upload.id))<IsTruncated>false</IsTruncated>\(parts.joined())</ListPartsResult>")
    }

    func completeMultipartUpload(_ call: Call) async throws -> Response {
        let upload = try await call.storage.multipartUpload(bucket: call.bucket!, name: call.key!, id: call.query["uploadId"] ?? "", access: call.access)
        var request = call.request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 4 << 20)
        } catch {
            throw S3Error.malformedXML()
        }
        let parts = try S3XML.completeRequest(Array(buffer.readableBytesView))
        let object = try await call.storage.completeMultipartUpload(upload, parts: parts, access: call.access)
        return Self.xml(
            "<CompleteMultipartUploadResult xmlns=\"\(S3XML.namespace)\">\(S3XML.element("Location", "/\(object.bucket)/\(object.name)"))"
                + "\(S3XML.element("Bucket", object.bucket))\(S3XML.element("Key", object.name))\(S3XML.element("ETag", object.etag))"
                + "</CompleteMultipartUploadResult>")
    }

    func abortMultipartUpload(_ call: Call) async throws -> Response {
        let upload = try await call.storage.multipartUpload(bucket: call.bucket!, name: call.key!, id: call.query["uploadId"] ?? "", access: call.access)
        try await call.storage.abortMultipartUpload(upload)
        return Self.empty(.noContent)
    }
}
