import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy
import TenantRuntime

/// The S3 protocol at `{apiUrl}/storage/v1/s3` (path style, any region), so boto3 and other S3
/// clients work with `endpoint_url`. Requests are signed with SigV4 by either a tenant's S3
/// access key (acting as the service role) or, as Supabase allows, the tenant's slug as key id,
/// its anon key as secret and a user's JWT as session token (the user's policies apply).
struct S3API {
    let node: NodeServices

    func register(on router: Router<EdgeContext>) {
        let s3 = router.group("t/:slug/storage/v1/s3")
            .add(middleware: S3ErrorMiddleware())
            .add(middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, requiresAPIKey: false, streamsBody: true))
        for method in [HTTPRequest.Method.get, .head, .post, .put, .delete] {
            s3.on("**", method: method) { request, context in try await TransferIdleWatch.watching(request, context, route) }
            s3.on("", method: method) { request, context in try await TransferIdleWatch.watching(request, context, route) }
        }
    }

    /// One authenticated S3 request.
    struct Call {
        let request: Request
        let context: EdgeContext
        let tree: TenantTree
        let storage: TenantStorage
        let access: Access
        let verified: SigV4.Verified
        let bucket: String?
        let key: String?
        let query: [String: String]
    }

    func route(_ request: Request, _ context: EdgeContext) async throws -> Response {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        guard let storage = tree.storage.service else {
            throw S3Error(status: 503, code: "ServiceUnavailable", message: "object storage is off on this node (MB906)")
        }
        let (access, verified) = try await authenticate(request, tree: tree)
        let segments = Self.segments(request.uri.path)
        let bucket = segments.first.flatMap { $0.isEmpty ? nil : $0 }
        let key = segments.count > 1 ? segments.dropFirst().joined(separator: "/") : nil
        var query: [String: String] = [:]
        for (name, value) in SigV4.parseQuery(request.uri.query ?? "") where query[name] == nil { query[name] = value }
        let call = Call(
            request: request, context: context, tree: tree, storage: storage, access: access, verified: verified, bucket: bucket,
            key: key.flatMap { $0.isEmpty ? nil : $0 }, query: query)
        let method = request.method
        guard let bucket = call.bucket else {
            guard method == .get else { throw S3Error(status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource.") }
            return try await listBuckets(call)
        }
        guard call.key != nil else {
            switch method {
            case .put: return try await createBucket(call, bucket)
            case .head: return try await headBucket(call, bucket)
            case .delete: return try await deleteBucket(call, bucket)
            case .post where query["delete"] != nil: return try await deleteObjects(call, bucket)
            case .get where query["location"] != nil:
                return Self.xml("<LocationConstraint xmlns=\"\(S3XML.namespace)\"></LocationConstraint>")
            case .get where query["uploads"] != nil:
                return Self.xml("<ListMultipartUploadsResult xmlns=\"\(S3XML.namespace)\">\(S3XML.element("Bucket", bucket))<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>")
            case .get: return try await listObjects(call, bucket, version2: query["list-type"] == "2")
            default: throw S3Error(status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource.")
            }
        }
        switch method {
        case .put where query["uploadId"] != nil: return try await uploadPart(call)
        case .put where request.headers[HTTPField.Name("x-amz-copy-source")!] != nil: return try await copyObject(call)
        case .put: return try await putObject(call)
        case .get where query["uploadId"] != nil: return try await listParts(call)
        case .get, .head: return try await getObject(call)
        case .post where query["uploads"] != nil: return try await createMultipartUpload(call)
        case .post where query["uploadId"] != nil: return try await completeMultipartUpload(call)
        case .delete where query["uploadId"] != nil: return try await abortMultipartUpload(call)
        case .delete: return try await deleteObject(call)
        default: throw S3Error(status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource.")
        }
    }

    // MARK: - Authentication

    func authenticate(_ request: Request, tree: TenantTree) async throws -> (Access, SigV4.Verified) {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { $0 + "," + field.value } ?? field.value
        }
        if let authority = request.head.authority { headers["host"] = authority }
        let signed = SigV4.Request(method: request.method.rawValue, rawPath: request.uri.path, rawQuery: request.uri.query ?? "", headers: headers)
        let slug = tree.slug
        let store = node.store, box = node.secretBox
        let anonKey = tree.keyRing.apiKey(role: "anon", issuedAt: tree.tenant.createdAt)
        let verified = try await SigV4.verify(signed) { accessKeyID in
            if accessKeyID == slug { return anonKey }
            guard let key = try await store.s3Key(accessKeyID: accessKeyID), key.tenant == slug else { return nil }
            return String(decoding: try box.open(key.sealedSecret, context: StorageAdminAPI.sealContext(key)), as: UTF8.self)
        }
        guard verified.accessKeyID == slug else { return (Access.service, verified) }
        // Session credentials: the user's token decides who they are; without one, anon.
        let token = headers["x-amz-security-token"] ?? SigV4.parseQuery(request.uri.query ?? "").first { $0.0 == "X-Amz-Security-Token" }?.1
        guard let token else { return (tree.data.access(for: Caller(role: "anon", claims: [:])), verified) }
        let claims: JSONObject
        do {
            claims = try tree.verify(token)
        } catch {
            throw S3Error(status: 403, code: "InvalidToken", message: "The provided token is malformed or otherwise invalid.")
        }
        return (tree.data.access(for: Caller(role: claims["role"]?.stringValue ?? "authenticated", claims: claims)), verified)
    }

    /// The path after `/storage/v1/s3/`, split on `/` and percent-decoded per segment.
    static func segments(_ path: String) -> [String] {
        guard let marker = path.range(of: "/storage/v1/s3") else { return [] }
        var rest = path[marker.upperBound...]
        if rest.hasPrefix("/") { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return [] }
        return rest.split(separator: "/", omittingEmptySubsequences: false).map { String($0).removingPercentEncoding ?? String($0) }
    }

    // MARK: - Answers

    static func xml(_ body: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/xml"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: S3XML.declaration + body)))
    }

    static func empty(_ status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers)
    }
}

/// Every refusal on the S3 routes as S3's XML error document (boto3 reads `Error.Code`), and
/// HEAD refusals without a body, as S3 answers them.
struct S3ErrorMiddleware: RouterMiddleware {
    typealias Context = EdgeContext

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as S3Error {
            return Self.render(error, request, context)
        } catch let error as StorageError {
            return Self.render(S3Error(error), request, context)
        } catch let error as APIError {
            let code = error.status == .tooManyRequests ? "SlowDown" : (error.status.code == 404 ? "NoSuchTenant" : error.code)
            var response = Self.render(S3Error(status: Int(error.status.code), code: code, message: error.message), request, context)
            for field in error.headers { response.headers.append(field) }
            return response
        } catch let error as HTTPError {
            let shaped = APIError(error)
            return Self.render(S3Error(status: Int(shaped.status.code), code: shaped.code, message: shaped.message), request, context)
        }
    }

    static func render(_ error: S3Error, _ request: Request, _ context: EdgeContext) -> Response {
        let status = HTTPResponse.Status(code: error.status)
        if request.method == .head { return Response(status: status, headers: [.contentLength: "0"]) }
        var response = S3API.xml(
            String(error.xml(resource: request.uri.path, requestID: context.requestID).dropFirst(S3XML.declaration.count)), status: status)
        response.headers[HTTPField.Name("x-amz-request-id")!] = context.requestID
        return response
    }
}
