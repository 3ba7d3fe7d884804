import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Storage
import Tenancy

/// An object's bytes as an HTTP response, for the Supabase and S3 surfaces alike: Range
/// (206/416), conditional requests (304/412), HEAD, and a body that streams in pieces as the
/// client takes them (back-pressure: the next piece is read only once the last is written).
enum ObjectDownload {
    /// Large pieces keep the per-piece hops few; the next piece is read while this one is written.
    static let pieceSize = 1 << 20
    static let smallObject = 256 << 10

    static func respond(
        _ request: Request, object: StoredObject, storage: TenantStorage, headers extra: HTTPFields,
        refusal: (StorageError) -> Response
    ) async throws -> Response {
        var headers: HTTPFields = [
            .contentType: object.mimeType, .eTag: object.etag, .cacheControl: object.cacheControl, .acceptRanges: "bytes",
            .lastModified: StorageAPI.httpDate(object.updatedAt),
        ]
        headers.append(contentsOf: extra)
        if let expected = request.headers.value(.ifMatch), !TenantStorage.etagList(expected, matches: object.etag) { throw StorageError.preconditionFailed() }
        if let cached = request.headers.value(.ifNoneMatch), TenantStorage.etagList(cached, matches: object.etag) {
            return Response(status: .notModified, headers: headers)
        }
        let range: ByteRange?
        do {
            range = try ByteRange.parse(request.headers.value(.range), size: object.size)
        } catch {
            var response = refusal(error)
            response.headers[.contentRange] = "bytes */\(object.size)"
            return response
        }
        let start = range?.start ?? 0
        let count = range?.count ?? object.size
        if let range { headers[.contentRange] = "bytes \(range.start)-\(range.end)/\(object.size)" }
        headers[.contentLength] = String(count)
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        if request.method == .head { return Response(status: status, headers: headers) }
        // Small objects in one read: open, read and close are one trip to the pool.
        if count <= smallObject, let whole = try await storage.readWhole(object, limit: smallObject) {
            guard whole.readableBytes == object.size else { throw StorageError.objectNotFound() }
            return Response(status: status, headers: headers, body: .init(byteBuffer: whole.getSlice(at: start, length: count) ?? whole))
        }
        let reader = try await storage.openBlob(object)
        let body = ResponseBody(contentLength: count) { writer in
            let end = start + count
            func fetch(_ offset: Int) -> Task<ByteBuffer, any Error>? {
                offset < end ? Task { try await reader.read(offset: offset, length: min(pieceSize, end - offset)) } : nil
            }
            var offset = start
            var next = fetch(offset)
            do {
                while let current = next {
                    let piece = try await current.value
                    guard piece.readableBytes > 0 else { break }
                    offset += piece.readableBytes
                    next = fetch(offset)
                    try await writer.write(piece)
                }
                try await writer.finish(nil)
                await reader.close()
            } catch {
                // A client gone midway: the read ahead finishes unread before the file closes.
                _ = try? await next?.value
                await reader.close()
                throw error
            }
        }
        return Response(status: status, headers: headers, body: body)
    }
}
