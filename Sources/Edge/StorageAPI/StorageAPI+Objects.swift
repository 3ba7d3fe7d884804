import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Runtime
import Storage
import Tenancy

extension StorageAPI {
    // MARK: - Uploads

    func upload(_ call: Call, _ bucket: String, _ name: String, upsert: Bool) async throws -> Response {
        try call.requireKey()
        let object = try await receive(call, bucket: bucket, name: name, upsert: upsert, access: call.access)
        return try Self.json(["Id": .string(object.id), "Key": .string("\(object.bucket)/\(object.name)")])
    }

    /// Reads an upload's body — a multipart form (storage3, supabase-js with FormData) or the raw
    /// bytes (with `Content-Type`, `Cache-Control` and base64 JSON in `x-metadata`) — into the
    /// tenant's storage as it streams.
    func receive(_ call: Call, bucket: String, name: String, upsert: Bool, access: Access) async throws -> StoredObject {
        let headers = call.request.headers
        let contentType = headers.value(.contentType) ?? ""
        let headerMetadata = try Self.metadata(fromHeader: headers[HTTPField.Name("x-metadata")!])
        let storage = call.storage
        guard contentType.lowercased().hasPrefix("multipart/form-data") else {
            let declared = try headers.value(.contentLength).map { text -> Int in
                guard let length = Int(text), length >= 0 else { throw StorageError.invalidRequest("Content-Length is not a number") }
                return length
            }
            let request = TenantStorage.UploadRequest(
                bucket: bucket, name: name, upsert: upsert, contentType: contentType, cacheControl: Self.cacheControl(headers.value(.cacheControl)),
                metadata: headerMetadata, declaredLength: declared, ifMatch: headers.value(.ifMatch))
            let prepared = try await storage.prepareUpload(request, access: access)
            let body = call.request.body
            return try await storage.upload(prepared, access: access) { sink in
                for try await piece in body { try await sink(piece) }
            }
        }
        let reader = MultipartFormReader(boundary: try MultipartFormReader.boundary(contentType: contentType))
        var pieces = call.request.body.makeAsyncIterator()
        // Up to the file part's headers: the fields before it, and the file's content type.
        var fileType: String??
        var pending: [MultipartFormReader.Event] = []
        reading: while let piece = try await pieces.next() {
            let events = try reader.feed(piece)
            for (index, event) in events.enumerated() {
                if case .fileStarted(let type) = event {
                    fileType = .some(type)
                    pending = Array(events[(index + 1)...])
                    break reading
                }
            }
        }
        guard case .some(let type) = fileType else { throw StorageError.invalidRequest("the form has no file part (send the object as the field 'file')") }
        var request = TenantStorage.UploadRequest(
            bucket: bucket, name: name, upsert: upsert, contentType: type ?? "application/octet-stream",
            cacheControl: Self.cacheControl(reader.fields["cacheControl"] ?? headers.value(.cacheControl)),
            metadata: try Self.metadata(fromField: reader.fields["metadata"]) ?? headerMetadata, ifMatch: headers.value(.ifMatch))
        var prepared = try await storage.prepareUpload(request, access: access)
        let blob = try await storage.writeBlob(maxBytes: prepared.maxBytes, declared: nil) { sink in
            var ended = false
            func take(_ events: [MultipartFormReader.Event]) async throws {
                for event in events {
                    switch event {
                    case .fileBytes(let bytes) where !ended: try await sink(bytes)
                    case .fileBytes: break
                    case .fileEnded: ended = true
                    case .fileStarted: throw StorageError.invalidRequest("the form holds more than one file")
                    }
                }
            }
            try await take(pending)
            while let piece = try await pieces.next() { try await take(try reader.feed(piece)) }
            guard ended else { throw StorageError.invalidRequest("the multipart body ended inside the file part") }
        }
        // Fields sent after the file still count; a bad one gives the written blob back.
        do {
            if let value = reader.fields["cacheControl"] { request.cacheControl = Self.cacheControl(value) }
            if let value = try Self.metadata(fromField: reader.fields["metadata"]) { request.metadata = value }
        } catch {
            await storage.discard(blob)
            throw error
        }
        prepared.request.cacheControl = request.cacheControl
        prepared.request.metadata = request.metadata
        return try await storage.commit(prepared, blob: blob, access: access)
    }

    /// Supabase sends seconds (`3600`), stored as `max-age=3600`; anything else is kept as given.
    static func cacheControl(_ value: String?) -> String {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return "no-cache" }
        if let seconds = Int(value), seconds >= 0 { return "max-age=\(seconds)" }
        return value
    }

    static func metadata(fromField text: String?) throws -> JSONObject? {
        guard let text, !text.isEmpty else { return nil }
        guard let object = (try? JSONValue.parse(Array(text.utf8)))?.objectValue else {
            throw StorageError.invalidRequest("the metadata field is not a JSON object")
        }
        return object
    }

    static func metadata(fromHeader text: String?) throws -> JSONObject {
        guard let text, !text.isEmpty else { return [:] }
        guard let data = Data(base64Encoded: text), let object = (try? JSONValue.parse(Array(data)))?.objectValue else {
            throw StorageError.invalidRequest("x-metadata must be a base64-encoded JSON object")
        }
        return object
    }

    // MARK: - Downloads

    func download(_ call: Call, _ bucket: String, _ name: String, publicOnly: Bool) async throws -> Response {
        if !publicOnly { try call.requireKey() }
        let object = try await call.storage.object(bucket: bucket, name: name, access: call.access, publicOnly: publicOnly)
        return try await serve(call, object)
    }

    /// The object's bytes with its headers, `download` as Content-Disposition; with transform
    /// options (`width`, `height`…), a rendered variant instead.
    func serve(_ call: Call, _ object: StoredObject, transform given: ImageTransform? = nil) async throws -> Response {
        if let transform = try given ?? ImageTransform.parse({ call.query($0) }) { return try await render(call, object, transform) }
        var headers: HTTPFields = [:]
        if let download = call.query("download") {
            let filename = download.isEmpty ? String(object.name.split(separator: "/").last ?? "download") : download
            headers[.contentDisposition] = Self.attachment(filename)
        }
        return try await ObjectDownload.respond(call.request, object: object, storage: call.storage, headers: headers) { error in
            StorageErrorMiddleware.render(status: error.status, error: error.error, code: error.code, message: error.message)
        }
    }

    static func attachment(_ filename: String) -> String {
        let ascii = String(filename.unicodeScalars.map { $0.isASCII && $0 != "\"" && $0 != "\\" && $0.value >= 0x20 ? Character($0) : "_" })
        let encoded = filename.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? ascii
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }

    /// RFC 9110's IMF-fixdate, e.g. `Sun, 06 Dec 2026 03:07:09 GMT`.
    static func httpDate(_ date: Date) -> String {
        date.formatted(Date.VerbatimFormatStyle(
            format: "\(weekday: .abbreviated), \(day: .twoDigits) \(month: .abbreviated) \(year: .defaultDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits) GMT",
            locale: Locale(identifier: "en_US_POSIX"), timeZone: TimeZone(identifier: "GMT")!, calendar: Calendar(identifier: .gregorian)))
    }

    func info(_ call: Call, _ bucket: String, _ name: String, publicOnly: Bool) async throws -> Response {
        if !publicOnly { try call.requireKey() }
        let object = try await call.storage.object(bucket: bucket, name: name, access: call.access, publicOnly: publicOnly)
        return try Self.json([
            "id": .string(object.id), "name": .string(object.name), "bucket_id": .string(object.bucket), "version": .string(object.blobKey.split(separator: "/").last.map(String.init) ?? ""),
            "size": .integer(Int64(object.size)), "content_type": .string(object.mimeType), "cache_control": .string(object.cacheControl),
            "etag": .string(object.etag), "metadata": .object(object.userMetadata), "owner_id": object.ownerID.map(JSONValue.string) ?? .null,
            "last_modified": Self.date(object.updatedAt), "created_at": Self.date(object.createdAt), "updated_at": Self.date(object.updatedAt),
        ])
    }

    // MARK: - Listing

    func list(_ call: Call, _ bucket: String) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        let sort = body["sortBy"]?.objectValue ?? [:]
        guard let column = TenantStorage.SortColumn(rawValue: sort["column"]?.stringValue ?? "name") else {
            throw StorageError.invalidRequest("sortBy.column must be name, created_at, updated_at or last_accessed_at")
        }
        let request = TenantStorage.ListRequest(
            prefix: body["prefix"]?.stringValue ?? "", search: body["search"]?.stringValue ?? "",
            limit: Int(clamping: body["limit"]?.intValue ?? 100), offset: Int(clamping: body["offset"]?.intValue ?? 0),
            sortColumn: column, descending: sort["order"]?.stringValue?.lowercased() == "desc")
        guard (0...10_000).contains(request.limit), request.offset >= 0 else { throw StorageError.invalidRequest("limit must be 0 to 10000 and offset not negative") }
        let entries = try await call.storage.list(bucket: bucket, request, access: call.access)
        return try Self.json(.array(entries.map { entry in
            switch entry {
            case .folder(let name):
                return ["name": .string(name), "id": .null, "updated_at": .null, "created_at": .null, "last_accessed_at": .null, "metadata": .null]
            case .file(let name, let object):
                var json = Self.objectJSON(object)
                json["name"] = .string(name)
                return .object(json)
            }
        }))
    }

    func listV2(_ call: Call, _ bucket: String) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        let limit = Int(clamping: body["limit"]?.intValue ?? 1000)
        guard (1...10_000).contains(limit) else { throw StorageError.invalidRequest("limit must be 1 to 10000") }
        let cursor = try body["cursor"]?.stringValue.map { text -> String in
            guard let data = Data(base64Encoded: text), let name = String(data: data, encoding: .utf8) else { throw StorageError.invalidRequest("the cursor is not one this API gave") }
            return name
        }
        let page = try await call.storage.listV2(
            bucket: bucket,
            .init(prefix: body["prefix"]?.stringValue ?? "", cursor: cursor, limit: limit, withDelimiter: body["with_delimiter"]?.boolValue ?? false),
            access: call.access)
        var json: JSONObject = [
            "hasNext": .bool(page.nextCursor != nil),
            "folders": .array(page.folders.map { ["key": .string($0), "name": .string($0)] }),
            "objects": .array(page.objects.map { object in
                ["id": .string(object.id), "name": .string(object.name), "key": .string(object.name), "updated_at": Self.date(object.updatedAt),
                 "created_at": Self.date(object.createdAt), "metadata": .object(Self.systemMetadata(object))]
            }),
        ]
        json["nextCursor"] = page.nextCursor.map { .string(Data($0.utf8).base64EncodedString()) } ?? .null
        return try Self.json(.object(json))
    }

    static func systemMetadata(_ object: StoredObject) -> JSONObject {
        [
            "eTag": .string(object.etag), "size": .integer(Int64(object.size)), "mimetype": .string(object.mimeType),
            "cacheControl": .string(object.cacheControl), "lastModified": date(object.updatedAt), "contentLength": .integer(Int64(object.size)),
            "httpStatusCode": 200,
        ]
    }

    static func objectJSON(_ object: StoredObject) -> JSONObject {
        [
            "name": .string(object.name), "id": .string(object.id), "bucket_id": .string(object.bucket),
            "owner": .string(object.ownerID ?? ""), "owner_id": object.ownerID.map(JSONValue.string) ?? .null,
            "updated_at": date(object.updatedAt), "created_at": date(object.createdAt), "last_accessed_at": date(object.updatedAt),
            "metadata": .object(systemMetadata(object)), "user_metadata": .object(object.userMetadata),
        ]
    }

    // MARK: - Changes

    func move(_ call: Call) async throws -> Response {
        try call.requireKey()
        let (bucket, from, to, destination) = try Self.transfer(try await Self.jsonBody(call))
        try await call.storage.move(bucket: bucket, from: from, to: to, toBucket: destination, access: call.access)
        return try Self.json(["message": "Successfully moved"])
    }

    func copy(_ call: Call) async throws -> Response {
        try call.requireKey()
        let (bucket, from, to, destination) = try Self.transfer(try await Self.jsonBody(call))
        let copied = try await call.storage.copy(
            bucket: bucket, from: from, to: to, toBucket: destination, upsert: Self.flag(call.request.headers[HTTPField.Name("x-upsert")!]),
            access: call.access)
        return try Self.json(["Id": .string(copied.id), "Key": .string("\(copied.bucket)/\(copied.name)")])
    }

    static func transfer(_ body: JSONObject) throws -> (String, String, String, String?) {
        guard let bucket = body["bucketId"]?.stringValue, let from = body["sourceKey"]?.stringValue, let to = body["destinationKey"]?.stringValue else {
            throw StorageError.invalidRequest("the body needs bucketId, sourceKey and destinationKey")
        }
        return (bucket, from, to, body["destinationBucket"]?.stringValue)
    }

    func removeMany(_ call: Call, _ bucket: String) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        guard let list = body["prefixes"]?.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
            throw StorageError.invalidRequest("the body needs prefixes: an array of object names")
        }
        guard list.count <= 1000 else { throw StorageError.invalidRequest("at most 1000 objects at once") }
        let removed = try await call.storage.remove(bucket: bucket, names: list.compactMap(\.stringValue), access: call.access)
        return try Self.json(.array(removed.map { .object(Self.objectJSON($0)) }))
    }

    func removeOne(_ call: Call, _ bucket: String, _ name: String) async throws -> Response {
        try call.requireKey()
        let name = try StorageNames.object(name)
        guard !(try await call.storage.remove(bucket: bucket, names: [name], access: call.access)).isEmpty else { throw StorageError.objectNotFound() }
        return try Self.json(["message": "Successfully deleted"])
    }
}
