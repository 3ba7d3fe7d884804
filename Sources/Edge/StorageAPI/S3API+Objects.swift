import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy

extension S3API {
    // MARK: - Buckets

    func listBuckets(_ call: Call) async throws -> Response {
        let buckets = try await call.storage.buckets(call.access)
        let items = buckets.map { "<Bucket>\(S3XML.element("Name", $0.id))\(S3XML.element("CreationDate", S3XML.timestamp($0.createdAt)))</Bucket>" }
        return Self.xml(
            "<ListAllMyBucketsResult xmlns=\"\(S3XML.namespace)\"><Owner>\(S3XML.element("ID", call.tree.slug))\(S3XML.element("DisplayName", call.tree.slug))</Owner>"
                + "<Buckets>\(items.joined())</Buckets></ListAllMyBucketsResult>")
    }

    func createBucket(_ call: Call, _ bucket: String) async throws -> Response {
        do {
            _ = try await call.storage.createBucket(id: bucket, name: nil, settings: .init(), access: call.access)
        } catch let error as StorageError where error.code == "BucketAlreadyExists" {
            throw S3Error(status: 409, code: "BucketAlreadyOwnedByYou", message: "Your previous request to create the named bucket succeeded and you already own it.")
        }
        return Self.empty(headers: [.location: "/\(bucket)"])
    }

    func headBucket(_ call: Call, _ bucket: String) async throws -> Response {
        _ = try await call.storage.bucket(bucket, call.access)
        return Self.empty()
    }

    func deleteBucket(_ call: Call, _ bucket: String) async throws -> Response {
        try await call.storage.deleteBucket(bucket, access: call.access)
        return Self.empty(.noContent)
    }

    /// ListObjects (v1, `marker`) and ListObjectsV2 (`list-type=2`, `continuation-token`,
    /// `start-after`); `encoding-type=url` encodes keys as boto3 asks by default.
    func listObjects(_ call: Call, _ bucket: String, version2: Bool) async throws -> Response {
        let q = call.query
        let prefix = q["prefix"] ?? ""
        let delimiter = q["delimiter"].flatMap { $0.isEmpty ? nil : $0 }
        let maxKeys = min(1000, max(0, Int(q["max-keys"] ?? "1000") ?? 1000))
        let encode = q["encoding-type"] == "url"
        var after: String?
        if version2 {
            if let token = q["continuation-token"] {
                guard let data = Data(base64Encoded: token), let name = String(data: data, encoding: .utf8) else {
                    throw S3Error.invalidArgument("The continuation token provided is incorrect")
                }
                after = name
            } else {
                after = q["start-after"]
            }
        } else {
            after = q["marker"]
        }
        let page = try await call.storage.listObjects(bucket: bucket, prefix: prefix, delimiter: delimiter, after: after, maxKeys: maxKeys, access: call.access)
        func text(_ value: String) -> String { encode ? Self.urlEncoded(value) : value }
        var body = "<ListBucketResult xmlns=\"\(S3XML.namespace)\">\(S3XML.element("Name", bucket))\(S3XML.element("Prefix", text(prefix)))"
        body += "<MaxKeys>\(maxKeys)</MaxKeys><IsTruncated>\(page.isTruncated)</IsTruncated>"
        if let delimiter { body += S3XML.element("Delimiter", text(delimiter)) }
        if encode { body += "<EncodingType>url</EncodingType>" }
        if version2 {
            body += "<KeyCount>\(page.contents.count + page.commonPrefixes.count)</KeyCount>"
            if let token = q["continuation-token"] { body += S3XML.element("ContinuationToken", token) }
            if let start = q["start-after"] { body += S3XML.element("StartAfter", text(start)) }
            if page.isTruncated, let last = page.last { body += S3XML.element("NextContinuationToken", Data(last.utf8).base64EncodedString()) }
        } else {
            body += S3XML.element("Marker", text(q["marker"] ?? ""))
            if page.isTruncated, let last = page.last { body += S3XML.element("NextMarker", text(last)) }
        }
        for object in page.contents {
            body += "<Contents>\(S3XML.element("Key", text(object.name)))\(S3XML.element("LastModified", S3XML.timestamp(object.updatedAt)))"
                + "\(S3XML.element("ETag", object.etag))<Size>\(object.size)</Size><StorageClass>STANDARD</StorageClass></Contents>"
        }
        for prefix in page.commonPrefixes { body += "<CommonPrefixes>\(S3XML.element("Prefix", text(prefix)))</CommonPrefixes>" }
        return Self.xml(body + "</ListBucketResult>")
    }

    static func urlEncoded(_ value: String) -> String {
        value.split(separator: "/", omittingEmptySubsequences: false).map { SigV4.encode(String($0)) }.joined(separator: "/")
    }

    // MARK: - Objects

    func putObject(_ call: Call) async throws -> Response {
        let headers = call.request.headers
        let request = TenantStorage.UploadRequest(
            bucket: call.bucket!, name: call.key!, upsert: headers.value(.ifNoneMatch) != "*", contentType: headers.value(.contentType) ?? "binary/octet-stream",
            cacheControl: headers.value(.cacheControl) ?? "no-cache", metadata: Self.userMetadata(headers),
            declaredLength: try S3Body.declaredLength(call), ifMatch: headers.value(.ifMatch))
        let prepared: TenantStorage.PreparedUpload
        do {
            prepared = try await call.storage.prepareUpload(request, access: call.access)
        } catch let error as StorageError where error.code == "Duplicate" {
            throw S3Error(status: 412, code: "PreconditionFailed", message: "At least one of the pre-conditions you specified did not hold")
        }
        let body = try S3Body(call)
        let object = try await call.storage.upload(prepared, access: call.access) { sink in try await body.stream(into: sink) }
        return Self.empty(headers: [.eTag: object.etag])
    }

    func copyObject(_ call: Call) async throws -> Response {
        guard let source = call.request.headers[HTTPField.Name("x-amz-copy-source")!] else { throw S3Error.invalidArgument("x-amz-copy-source is missing") }
        var path = source.split(separator: "?").first.map(String.init) ?? source
        path = path.removingPercentEncoding ?? path
        if path.hasPrefix("/") { path.removeFirst() }
        guard let slash = path.firstIndex(of: "/") else { throw S3Error.invalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey") }
        let copied = try await call.storage.copy(
            bucket: String(path[..<slash]), from: String(path[path.index(after: slash)...]), to: call.key!, toBucket: call.bucket!, upsert: true,
            access: call.access)
        return Self.xml(
            "<CopyObjectResult>\(S3XML.element("LastModified", S3XML.timestamp(copied.updatedAt)))\(S3XML.element("ETag", copied.etag))</CopyObjectResult>")
    }

    func getObject(_ call: Call) async throws -> Response {
        let object = try await call.storage.object(bucket: call.bucket!, name: call.key!, access: call.access)
        var headers: HTTPFields = [:]
        for (name, value) in object.userMetadata {
            guard let field = HTTPField.Name("x-amz-meta-\(name)") else { continue }
            headers[field] = value.stringValue ?? value.jsonString
        }
        return try await ObjectDownload.respond(call.request, object: object, storage: call.storage, headers: headers) { error in
            S3ErrorMiddleware.render(S3Error(error), call.request, call.context)
        }
    }

    func deleteObject(_ call: Call) async throws -> Response {
        _ = try StorageNames.object(call.key!)
        _ = try await call.storage.remove(bucket: call.bucket!, names: [call.key!], access: call.access)
        return Self.empty(.noContent)
    }

    func deleteObjects(_ call: Call, _ bucket: String) async throws -> Response {
        var request = call.request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 2 << 20)
        } catch {
            throw S3Error.malformedXML()
        }
        let (keys, quiet) = try S3XML.deleteRequest(Array(buffer.readableBytesView))
        _ = try await call.storage.remove(bucket: bucket, names: keys, access: call.access)
        let deleted = quiet ? "" : keys.map { "<Deleted>\(S3XML.element("Key", $0))</Deleted>" }.joined()
        return Self.xml("<DeleteResult xmlns=\"\(S3XML.namespace)\">\(deleted)</DeleteResult>")
    }

    /// `x-amz-meta-*` headers as the object's metadata.
    static func userMetadata(_ headers: HTTPFields) -> JSONObject {
        var metadata = JSONObject()
        for field in headers where field.name.canonicalName.hasPrefix("x-amz-meta-") {
            metadata[String(field.name.canonicalName.dropFirst("x-amz-meta-".count))] = .string(field.value)
        }
        return metadata
    }
}

/// An S3 request body as it streams: aws-chunked framing removed (with its chunk signatures
/// checked when signed), and every digest the client declared verified at the end, before the
/// upload is committed.
struct S3Body: Sendable {
    let body: RequestBody
    let chunked: Bool
    let signing: AWSChunkedDecoder.Signing?
    let checksums: BodyChecksums
    let trailerChecksum: BodyChecksums.Algorithm?

    init(_ call: S3API.Call) throws {
        let headers = call.request.headers
        let mode = call.verified.payloadHash
        // Framing follows the signed payload mode only: an unsigned Content-Encoding header must
        // not switch a body whose hash was signed into a mode where it is not checked.
        chunked = mode.hasPrefix("STREAMING-")
        signing = mode == SigV4.streamingSigned || mode == SigV4.streamingSignedTrailer ? AWSChunkedDecoder.Signing(verified: call.verified) : nil
        var checksumHeaders: [String: String] = [:]
        for field in headers where field.name.canonicalName.hasPrefix("x-amz-checksum-") { checksumHeaders[field.name.canonicalName] = field.value }
        var checksums = try BodyChecksums(payloadHash: chunked ? nil : mode, contentMD5: headers[HTTPField.Name("content-md5")!], checksumHeaders: checksumHeaders)
        let trailer = headers[HTTPField.Name("x-amz-trailer")!]?.lowercased()
        trailerChecksum = trailer.flatMap { name in
            name.hasPrefix("x-amz-checksum-") ? BodyChecksums.Algorithm(rawValue: String(name.dropFirst("x-amz-checksum-".count))) : nil
        }
        if let trailerChecksum { checksums.prepare(trailerChecksum) }
        self.checksums = checksums
        body = call.request.body
    }

    static func declaredLength(_ call: S3API.Call) throws -> Int? {
        let headers = call.request.headers
        let text = headers[HTTPField.Name("x-amz-decoded-content-length")!] ?? (call.verified.payloadHash.hasPrefix("STREAMING-") ? nil : headers.value(.contentLength))
        guard let text else { return nil }
        guard let length = Int(text), length >= 0 else { throw S3Error.invalidArgument("the content length is not a number") }
        return length
    }

    func stream(into sink: (ByteBuffer) async throws -> Void) async throws {
        var checksums = self.checksums
        if chunked {
            var decoder = AWSChunkedDecoder(signing: signing)
            for try await piece in body {
                for data in try decoder.feed(piece) {
                    data.withUnsafeReadableBytes { checksums.update($0) }
                    try await sink(data)
                }
            }
            guard decoder.isDone else { throw S3Error.invalidRequest("the aws-chunked body ended before its last chunk") }
            if let trailerChecksum {
                guard let value = decoder.trailers["x-amz-checksum-\(trailerChecksum.rawValue)"] else {
                    throw S3Error.invalidRequest("the trailer x-amz-checksum-\(trailerChecksum.rawValue) was announced but not sent")
                }
                try checksums.expect(trailerChecksum, value)
            }
        } else {
            for try await piece in body {
                piece.withUnsafeReadableBytes { checksums.update($0) }
                try await sink(piece)
            }
        }
        try checksums.verify()
    }
}
