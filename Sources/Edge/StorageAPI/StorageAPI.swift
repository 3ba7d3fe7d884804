import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy
import TenantRuntime

/// Supabase Storage's API at `{apiUrl}/storage/v1`, over the tenant tree's storage slot, so that
/// storage3 (`supabase.create_client(apiUrl, key).storage`) works unchanged. The routes are one
/// catch-all per method, read segment by segment: object names span several path segments and
/// bucket names may collide with route words, so the order of the checks below is the routing.
struct StorageAPI {
    let node: NodeServices

    func register(on router: Router<EdgeContext>) {
        let storage = router.group("t/:slug/storage/v1")
            .add(middleware: StorageErrorMiddleware())
            .add(middleware: TenantGateMiddleware(
                admission: node.admission, forwarder: node.forwarder, apiKeyOptional: true, streamsBody: true))
        for method in [HTTPRequest.Method.get, .head, .post, .put, .delete, .patch, .options] {
            storage.on("**", method: method) { request, context in try await TransferIdleWatch.watching(request, context, route) }
        }
    }

    /// One storage request, with its tenant's storage and the caller's access.
    struct Call {
        let request: Request
        let context: EdgeContext
        let storage: TenantStorage
        let access: Access
        let tree: TenantTree
        /// The path after `/storage/v1/`, percent-decoded segment by segment.
        let segments: [String]
        let node: NodeServices

        var hasKey: Bool { context.presentedKey }
        var signer: StorageURLSigner { StorageURLSigner(keyRing: tree.keyRing) }

        /// The routes that act as the caller need the caller's keys; only public objects and
        /// signed URLs are served without.
        func requireKey() throws {
            guard hasKey else { throw StorageError.unauthorized("this route needs the tenant's apikey (or a user's token)") }
        }

        func query(_ name: String) -> String? { request.uri.queryParameters.get(name) }
    }

    func route(_ request: Request, _ context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        guard let storage = tree.storage.service else {
            throw StorageError(
                status: 503, error: "Service Unavailable", code: "MB906",
                message: "object storage is off on this node: a cluster node needs MINIBAAS_STORAGE_DIR shared by every node and MINIBAAS_STORAGE_SHARED=1")
        }
        let segments = Self.segments(request.uri.path)
        let call = Call(
            request: request, context: context, storage: storage, access: tree.data.access(for: caller), tree: tree, segments: segments, node: node)
        let s = segments
        switch (request.method, s.first) {
        case (.get, "bucket") where s.count == 1: return try await listBuckets(call)
        case (.get, "bucket") where s.count == 2: return try await getBucket(call, s[1])
        case (.post, "bucket") where s.count == 1: return try await createBucket(call)
        case (.put, "bucket") where s.count == 2: return try await updateBucket(call, s[1])
        case (.post, "bucket") where s.count == 3 && s[2] == "empty": return try await emptyBucket(call, s[1])
        case (.delete, "bucket") where s.count == 2: return try await deleteBucket(call, s[1])
        case (_, "object"): return try await objectRoute(call, Array(s.dropFirst()))
        case (_, "upload") where s.count >= 2 && s[1] == "resumable": return try await resumable(call, Array(s.dropFirst(2)))
        case (.post, "render") where s == ["render", "image", "jobs"]: return try await renderJobs(call)
        case (.get, "render") where s.count == 4 && s[1] == "image" && s[2] == "jobs": return try await renderJob(call, s[3])
        case (.get, "render") where s.count > 4 && s[1] == "image", (.head, "render") where s.count > 4 && s[1] == "image":
            return try await renderRoute(call, mode: s[2], bucket: s[3], name: s.dropFirst(4).joined(separator: "/"))
        default:
            throw StorageError(status: 404, error: "not_found", code: "NoSuchRoute", message: "no storage route \(request.method) /\(s.joined(separator: "/"))")
        }
    }

    private func objectRoute(_ call: Call, _ s: [String]) async throws -> Response {
        let method = call.request.method
        func split(_ rest: ArraySlice<String>) throws -> (bucket: String, name: String) {
            guard let bucket = rest.first, rest.count >= 2 else { throw StorageError.invalidKey("expected /{bucket}/{object name}") }
            return (bucket, rest.dropFirst().joined(separator: "/"))
        }
        switch (method, s.first) {
        case (.post, "list") where s.count == 2: return try await list(call, s[1])
        case (.post, "list-v2") where s.count == 2: return try await listV2(call, s[1])
        case (.post, "move") where s.count == 1: return try await move(call)
        case (.post, "copy") where s.count == 1: return try await copy(call)
        case (.post, "sign") where s.count == 2: return try await signMany(call, s[1])
        case (.post, "sign") where s.count > 2:
            let (bucket, name) = try split(s.dropFirst())
            return try await sign(call, bucket, name)
        case (.get, "sign"), (.head, "sign"):
            let (bucket, name) = try split(s.dropFirst())
            return try await signedDownload(call, bucket, name)
        case (.post, "upload") where s.count > 3 && s[1] == "sign":
            let (bucket, name) = try split(s.dropFirst(2))
            return try await signUpload(call, bucket, name)
        case (.put, "upload") where s.count > 3 && s[1] == "sign":
            let (bucket, name) = try split(s.dropFirst(2))
            return try await signedUpload(call, bucket, name)
        case (.get, "info"):
            var rest = s.dropFirst()
            if let mode = rest.first, mode == "public" || mode == "authenticated", rest.count > 2 { rest = rest.dropFirst() }
            let (bucket, name) = try split(rest)
            return try await info(call, bucket, name, publicOnly: s.count > 1 && s[1] == "public" && s.count > 3)
        case (.get, "public"), (.head, "public"):
            let (bucket, name) = try split(s.dropFirst())
            return try await download(call, bucket, name, publicOnly: true)
        case (.get, "authenticated"), (.head, "authenticated"):
            let (bucket, name) = try split(s.dropFirst())
            return try await download(call, bucket, name, publicOnly: false)
        case (.get, _), (.head, _):
            let (bucket, name) = try split(s[...])
            return try await download(call, bucket, name, publicOnly: false)
        case (.post, _), (.put, _):
            let (bucket, name) = try split(s[...])
            return try await upload(call, bucket, name, upsert: method == .put || Self.flag(call.request.headers[values: HTTPField.Name("x-upsert")!].first))
        case (.delete, _) where s.count == 1: return try await removeMany(call, s[0])
        case (.delete, _):
            let (bucket, name) = try split(s[...])
            return try await removeOne(call, bucket, name)
        default:
            throw StorageError(status: 404, error: "not_found", code: "NoSuchRoute", message: "no storage route \(method) /object/\(s.joined(separator: "/"))")
        }
    }

    /// The path after `/storage/v1/`, split on every `/` (empty segments kept, so `a//b` is seen
    /// and refused rather than silently read as `a/b`) and percent-decoded once per segment.
    static func segments(_ path: String) -> [String] {
        guard let marker = path.range(of: "/storage/v1/") else { return [] }
        return path[marker.upperBound...].split(separator: "/", omittingEmptySubsequences: false).map { segment in
            String(segment).removingPercentEncoding ?? String(segment)
        }
    }

    static func flag(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["true", "1", "yes"].contains(value.lowercased())
    }

    // MARK: - Bodies and answers

    /// A small JSON request body (bucket settings, list options), bounded.
    static func jsonBody(_ call: Call) async throws -> JSONObject {
        var request = call.request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: 1 << 20)
        } catch {
            throw StorageError(status: 413, error: "Payload too large", code: "EntityTooLarge", message: "a storage JSON body is limited to 1 MiB")
        }
        guard buffer.readableBytes > 0 else { return [:] }
        guard let value = try? JSONValue.parse(buffer.readableBytesView), let object = value.objectValue else {
            throw StorageError.invalidRequest("the body is not a JSON object")
        }
        return object
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) throws -> Response {
        try jsonResponse(value, status: status)
    }

    /// ISO 8601 with milliseconds, as Supabase gives its timestamps.
    static func date(_ date: Date) -> JSONValue {
        .string(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}

/// Storage answers its errors in Supabase Storage's shape, the one storage3 parses:
/// `{"statusCode","error","code","message"}`, with the status equal to `statusCode`. The node's
/// own refusals on these routes (keys, rate limits) are re-worded into it.
struct StorageErrorMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as StorageError {
            return Self.render(status: error.status, error: error.error, code: error.code, message: error.message)
        } catch let error as APIError {
            var response = Self.render(status: Int(error.status.code), error: error.code, code: error.code, message: error.message)
            for field in error.headers { response.headers.append(field) }
            return response
        } catch let error as HTTPError {
            let shaped = APIError(error)
            return Self.render(status: Int(shaped.status.code), error: shaped.code, code: shaped.code, message: shaped.message)
        }
    }

    static func render(status: Int, error: String, code: String, message: String) -> Response {
        let body: JSONValue = ["statusCode": .string(String(status)), "error": .string(error), "code": .string(code), "message": .string(message)]
        return Response(
            status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: body.encoded())))
    }
}
