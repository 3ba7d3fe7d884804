import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Blobs as objects of one bucket of an S3-compatible service (MinIO, AWS S3, moto): the same
/// keys as on disk (`<tenant>/<2 hex>/<uuid>`), every request signed with SigV4. A blob being
/// written is spooled to a local file first (its MD5 computed as it comes) and sent with one PUT
/// at commit, so a failed or refused upload never reaches the bucket. Reads are ranged GETs.
public final class S3BlobStore: BlobStore {
    public struct Settings: Sendable {
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var accessKeyID: String
        public var secretAccessKey: String
        public init(endpoint: String, region: String, bucket: String, accessKeyID: String, secretAccessKey: String) {
            self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            self.region = region
            self.bucket = bucket
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
        }
    }

    let settings: Settings
    let host: String
    /// Local files: spooled writes, and resumable uploads until they complete.
    public let spool: LocalBlobStore
    let client = HTTPClient.shared
    static let timeout: TimeAmount = .seconds(60)

    /// Checks the bucket is there and the keys are accepted: MB903 unreachable, MB904 refused
    /// credentials, MB905 no such bucket.
    public init(settings: Settings, spoolDirectory: String) async throws {
        guard let url = URL(string: settings.endpoint), let host = url.host, ["http", "https"].contains(url.scheme ?? "") else {
            throw StorageError(status: 500, error: "internal", code: "MB900", message: "the S3 endpoint '\(settings.endpoint)' is not an http(s) URL")
        }
        self.settings = settings
        self.host = url.port.map { "\(host):\($0)" } ?? host
        self.spool = try LocalBlobStore(root: spoolDirectory, io: PosixFileIO())
        let response: HTTPClientResponse
        do {
            response = try await send("HEAD", key: nil)
        } catch {
            throw StorageError.backendUnavailable("MB903: the S3 backend at \(settings.endpoint) cannot be reached: \(error)")
        }
        switch response.status.code {
        case 200..<300: break
        case 404: throw StorageError(status: 503, error: "Service Unavailable", code: "MB905", message: "the S3 backend has no bucket '\(settings.bucket)'")
        case 401, 403: throw StorageError(status: 503, error: "Service Unavailable", code: "MB904", message: "the S3 backend refused the credentials")
        default: throw StorageError.backendUnavailable("MB903: the S3 backend answered \(response.status.code) for bucket '\(settings.bucket)'")
        }
    }

    public var summary: String { "s3 \(settings.endpoint)/\(settings.bucket) (region \(settings.region))" }
    public var resumableArea: LocalBlobStore? { spool }

    // MARK: - Requests

    func path(_ key: String?) -> String {
        var path = "/" + SigV4.encode(settings.bucket)
        if let key { path += "/" + key.split(separator: "/", omittingEmptySubsequences: false).map { SigV4.encode(String($0)) }.joined(separator: "/") }
        return path
    }

    func send(_ method: String, key: String?, query: String = "", headers extra: [String: String] = [:], body: HTTPClientRequest.Body? = nil)
        async throws -> HTTPClientResponse
    {
        let amzDate = SigV4.amzDate(Date())
        var headers = extra
        headers["host"] = host
        headers["x-amz-date"] = amzDate
        headers["x-amz-content-sha256"] = body == nil ? SigV4.emptyHash : SigV4.unsignedPayload
        let path = self.path(key)
        let signed = SigV4.Request(method: method, rawPath: path, rawQuery: query, headers: headers)
        headers["authorization"] = SigV4.authorization(
            signed, accessKeyID: settings.accessKeyID, secret: settings.secretAccessKey, region: settings.region, amzDate: amzDate,
            payloadHash: headers["x-amz-content-sha256"]!)
        var request = HTTPClientRequest(url: settings.endpoint + path + (query.isEmpty ? "" : "?" + query))
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers where name != "host" { request.headers.add(name: name, value: value) }
        if let body { request.body = body }
        return try await client.execute(request, timeout: Self.timeout)
    }

    static func failure(_ response: HTTPClientResponse, _ what: String) async -> StorageError {
        let text = (try? await response.body.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
        return StorageError.backendUnavailable("MB903: the S3 backend answered \(response.status.code) to \(what): \(text.prefix(300))")
    }

    // MARK: - BlobStore

    public func create(tenant: String) async throws -> any BlobWriter {
        let local = try await spool.create(tenant: tenant)
        return S3BlobWriter(local: local, store: self)
    }

    func put(_ key: String, from local: String, size: Int) async throws {
        let io = PosixFileIO()
        let (descriptor, _) = try await io.openForReading(spool.path(of: local))
        let pieces = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            let task = Task {
                var offset = 0
                do {
                    while offset < size {
                        let piece = try await io.read(descriptor, at: offset, length: min(1 << 20, size - offset))
                        guard piece.readableBytes > 0 else { break }
                        offset += piece.readableBytes
                        continuation.yield(piece)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
                try? await io.close(descriptor)
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        let response = try await send("PUT", key: key, headers: ["content-length": String(size)], body: .stream(pieces, length: .known(Int64(size))))
        guard (200..<300).contains(response.status.code) else { throw await Self.failure(response, "PUT \(key)") }
        _ = try? await response.body.collect(upTo: 1 << 16)
    }

    public func open(_ key: String) async throws -> any BlobReader {
        guard LocalBlobStore.isKey(key) else { throw StorageError.objectNotFound() }
        let response = try await send("HEAD", key: key)
        if response.status.code == 404 { throw StorageError.objectNotFound() }
        guard (200..<300).contains(response.status.code), let length = response.headers.first(name: "content-length").flatMap(Int.init) else {
            throw await Self.failure(response, "HEAD \(key)")
        }
        return S3BlobReader(key: key, size: length, store: self)
    }

    func read(_ key: String, offset: Int, length: Int) async throws -> ByteBuffer {
        guard length > 0 else { return ByteBuffer() }
        let response = try await send("GET", key: key, headers: ["range": "bytes=\(offset)-\(offset + length - 1)"])
        if response.status.code == 404 { throw StorageError.objectNotFound() }
        guard (200..<300).contains(response.status.code) else { throw await Self.failure(response, "GET \(key)") }
        return try await response.body.collect(upTo: length + 1)
    }

    public func readWhole(_ key: String, limit: Int) async throws -> ByteBuffer? {
        guard LocalBlobStore.isKey(key) else { throw StorageError.objectNotFound() }
        let response = try await send("GET", key: key)
        if response.status.code == 404 { throw StorageError.objectNotFound() }
        guard (200..<300).contains(response.status.code) else { throw await Self.failure(response, "GET \(key)") }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > limit {
            // Too large for one piece: the caller reads it in ranges instead.
            return nil
        }
        return try await response.body.collect(upTo: limit)
    }

    public func delete(_ key: String) async {
        guard LocalBlobStore.isKey(key), let response = try? await send("DELETE", key: key) else { return }
        _ = try? await response.body.collect(upTo: 1 << 16)
    }

    public func deleteAll(tenant: String) async {
        guard !tenant.isEmpty, !tenant.contains("/"), !tenant.hasPrefix(".") else { return }
        for (key, _) in (try? await list(prefix: tenant + "/")) ?? [] { await delete(key) }
    }

    public func sweep(keeping: Set<String>, olderThan: Duration) async throws -> Int {
        var removed = try await spool.sweep(keeping: [], olderThan: olderThan)
        let cutoff = Date().addingTimeInterval(-Double(olderThan.components.seconds))
        for (key, modified) in try await list(prefix: "") where !keeping.contains(key) && modified < cutoff && LocalBlobStore.isKey(key) {
            await delete(key)
            removed += 1
        }
        return removed
    }

    /// Every key under `prefix` with its last-modified time (ListObjectsV2, page by page).
    func list(prefix: String) async throws -> [(String, Date)] {
        var found: [(String, Date)] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let text = query.map { "\(SigV4.encode($0.0))=\(SigV4.encode($0.1))" }.joined(separator: "&")
            let response = try await send("GET", key: nil, query: text)
            guard (200..<300).contains(response.status.code) else { throw await Self.failure(response, "ListObjectsV2") }
            let body = try await response.body.collect(upTo: 16 << 20)
            let page = try S3XML.listPage(Array(body.readableBytesView))
            found += page.objects
            token = page.nextToken
        } while token != nil
        return found
    }
}

/// Spools locally, then sends the whole blob at commit.
final class S3BlobWriter: BlobWriter, @unchecked Sendable {
    let local: any BlobWriter
    let store: S3BlobStore
    var key: String { local.key }
    var size: Int { local.size }

    init(local: any BlobWriter, store: S3BlobStore) {
        self.local = local
        self.store = store
    }

    func append(_ buffer: ByteBuffer) async throws { try await local.append(buffer) }

    func commit() async throws -> String {
        let md5 = try await local.commit()
        do {
            try await store.put(local.key, from: local.key, size: local.size)
        } catch {
            await store.spool.delete(local.key)
            throw error
        }
        await store.spool.delete(local.key)
        return md5
    }

    func abort() async { await local.abort() }
}

final class S3BlobReader: BlobReader, @unchecked Sendable {
    let key: String
    let size: Int
    let store: S3BlobStore

    init(key: String, size: Int, store: S3BlobStore) {
        self.key = key
        self.size = size
        self.store = store
    }

    func read(offset: Int, length: Int) async throws -> ByteBuffer {
        try await store.read(key, offset: offset, length: min(length, max(0, size - offset)))
    }

    func close() async {}
}
