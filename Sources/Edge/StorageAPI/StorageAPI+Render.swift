import Foundation
import HTTPTypes
import Hummingbird
import Jobs
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
        let accept = call.request.headers.value(.accept) ?? ""
        let rendered = try await call.storage.render(object, transform: transform, acceptsWebP: accept.contains("image/webp"))
        var headers: HTTPFields = [
            .contentType: rendered.contentType, .cacheControl: object.cacheControl, .contentLength: String(rendered.bytes.readableBytes),
            .vary: "Accept",
            .eTag: "\"\(object.etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))-\(rendered.contentType.split(separator: "/").last ?? "")-\(transform.width ?? 0)x\(transform.height ?? 0)-\(transform.resize.rawValue)-\(transform.quality)\"",
        ]
        if let cached = call.request.headers.value(.ifNoneMatch), TenantStorage.etagList(cached, matches: headers.value(.eTag)!) {
            return Response(status: .notModified, headers: headers)
        }
        if let download = call.query("download") {
            headers[.contentDisposition] = Self.attachment(download.isEmpty ? String(object.name.split(separator: "/").last ?? "image") : download)
        }
        if call.request.method == .head { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: rendered.bytes))
    }
}

/// Variants rendered in the background: `POST /render/image/jobs {"bucket", "paths" (or "path"),
/// "transforms": [{width, height, resize, quality, format}]}` stores one job per object and
/// transform in the tenant's job workers (the caller must be able to read each object now), and
/// answers 202 with their ids; `GET /render/image/jobs/{id}` tells how one went. A rendered
/// variant waits in the node's variant cache, so its first request is served from there.
extension StorageAPI {
    static let maxVariantJobs = 100

    func renderJobs(_ call: Call) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        guard let bucket = body["bucket"]?.stringValue else { throw StorageError.invalidRequest("the body needs the bucket") }
        var paths = body["paths"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if let one = body["path"]?.stringValue { paths.append(one) }
        let transforms = try (body["transforms"]?.arrayValue ?? []).map { value throws(StorageError) -> ImageTransform in
            guard let object = value.objectValue, let transform = try ImageTransform.parse(claims: object) else {
                throw StorageError.invalidRequest("each transform is an object of width, height, resize, quality and format")
            }
            return transform
        }
        guard !paths.isEmpty, !transforms.isEmpty else { throw StorageError.invalidRequest("name at least one path and one transform") }
        guard paths.count * transforms.count <= Self.maxVariantJobs else {
            throw StorageError.invalidRequest("at most \(Self.maxVariantJobs) variants per request")
        }
        guard call.tree.jobs.workers != nil, call.storage.rendersImages else {
            throw StorageError(status: 501, error: "Not Implemented", code: "MB910", message: "image transforms are not available on this node")
        }
        let webp = body["format"]?.stringValue != "origin"
        var jobs: [JobRecord] = []
        var answer: [JSONValue] = []
        let now = Date()
        for path in paths {
            let object = try await call.storage.object(bucket: bucket, name: path, access: call.access)
            for transform in transforms {
                let job = ImageVariantJob.job(tenant: call.tree.slug, bucket: bucket, name: object.name, transform: transform, webp: webp, now: now)
                jobs.append(job)
                answer.append(["id": .string(job.id), "path": .string(object.name), "transform": .object(transform.claims)])
            }
        }
        let limits = call.tree.tenant.limits.jobs
        guard try await node.store.unsettledCount(tenant: call.tree.slug) + jobs.count <= limits.maxPending else {
            throw StorageError(status: 429, error: "Too Many Requests", code: "MB845", message: "the tenant's job backlog is full")
        }
        JobMetrics.enqueued(tenant: call.tree.slug, kind: ImageVariantJob.kind, count: try await node.store.enqueue(jobs))
        call.tree.jobs.workers?.ring()
        return try Self.json(["jobs": .array(answer)], status: .accepted)
    }

    func renderJob(_ call: Call, _ id: String) async throws -> Response {
        try call.requireKey()
        guard let job = try await node.store.job(tenant: call.tree.slug, id: id), job.kind == ImageVariantJob.kind else {
            throw StorageError(status: 404, error: "not_found", code: "MB827", message: "no render job '\(id)'")
        }
        // A job tells only a caller who may read its object.
        _ = try await call.storage.object(bucket: job.payload["bucket"]?.stringValue ?? "", name: job.payload["name"]?.stringValue ?? "", access: call.access)
        return try Self.json([
            "id": .string(job.id), "status": .string(job.status.rawValue), "attempts": .integer(Int64(job.attempt)),
            "error": job.lastError.map(JSONValue.string) ?? .null, "path": job.payload["name"] ?? .null, "transform": job.payload["transform"] ?? .null,
        ])
    }
}
