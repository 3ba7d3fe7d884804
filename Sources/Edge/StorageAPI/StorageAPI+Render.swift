import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy

/// Image transforms: `GET /render/image/{public|authenticated|sign}/{bucket}/{path}` with
/// `width`, `height`, `resize`, `quality`, `format` (a signed URL's options are fixed in its
/// token); the same options on `/object/…` downloads.
extension StorageAPI {
    func renderRoute(_ call: Call, mode: String, bucket: String, name: String) async throws -> Response {
        switch mode {
        case "public":
            return try await render(call, try await call.storage.object(bucket: bucket, name: name, access: call.access, publicOnly: true), nil)
        case "authenticated":
            try call.requireKey()
            return try await render(call, try await call.storage.object(bucket: bucket, name: name, access: call.access), nil)
        case "sign":
            guard let token = call.query("token") else { throw StorageError.invalidSignature("the signed URL has no token") }
            let name = try StorageNames.object(name)
            let claims = try call.signer.verify(token, url: "\(bucket)/\(name)", purpose: .download)
            let fixed = try claims["transform"]?.objectValue.flatMap { object throws(StorageError) in try ImageTransform.parse(claims: object) }
            return try await render(call, try await call.storage.signedObject(bucket: bucket, name: name), fixed)
        default:
            throw StorageError(status: 404, error: "not_found", code: "NoSuchRoute", message: "render/image/\(mode) is not a route: use public, authenticated or sign")
        }
    }

    func render(_ call: Call, _ object: StoredObject, _ given: ImageTransform?) async throws -> Response {
        let transform = try given ?? ImageTransform.parse({ call.query($0) }) ?? ImageTransform()
        let accept = call.request.headers[.accept] ?? ""
        let rendered = try await call.storage.render(object, transform: transform, acceptsWebP: accept.contains("image/webp"))
        var headers: HTTPFields = [
            .contentType: rendered.contentType, .cacheControl: object.cacheControl, .contentLength: String(rendered.bytes.readableBytes),
            .vary: "Accept",
            .eTag: "\"\(object.etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))-\(rendered.contentType.split(separator: "/").last ?? "")-\(transform.width ?? 0)x\(transform.height ?? 0)-\(transform.resize.rawValue)-\(transform.quality)\"",
        ]
        if let cached = call.request.headers[.ifNoneMatch], TenantStorage.etagList(cached, matches: headers[.eTag]!) {
            return Response(status: .notModified, headers: headers)
        }
        if let download = call.query("download") {
            headers[.contentDisposition] = Self.attachment(download.isEmpty ? String(object.name.split(separator: "/").last ?? "image") : download)
        }
        if call.request.method == .head { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: rendered.bytes))
    }
}
