import Foundation
import Hummingbird
import Runtime
import Storage
import Tenancy

extension StorageAPI {
    func listBuckets(_ call: Call) async throws -> Response {
        try call.requireKey()
        return try Self.json(.array(try await call.storage.buckets(call.access).map(Self.bucketJSON)))
    }

    func getBucket(_ call: Call, _ id: String) async throws -> Response {
        try call.requireKey()
        return try Self.json(Self.bucketJSON(try await call.storage.bucket(id, call.access)))
    }

    func createBucket(_ call: Call) async throws -> Response {
        try call.requireKey()
        let body = try await Self.jsonBody(call)
        guard let id = (body["id"] ?? body["name"])?.stringValue else { throw StorageError.invalidBucketName("the body needs the bucket's id (or name)") }
        let bucket = try await call.storage.createBucket(id: id, name: body["name"]?.stringValue, settings: try Self.settings(body), access: call.access)
        return try Self.json(["name": .string(bucket.id)])
    }

    func updateBucket(_ call: Call, _ id: String) async throws -> Response {
        try call.requireKey()
        _ = try await call.storage.updateBucket(id, settings: try Self.settings(try await Self.jsonBody(call)), access: call.access)
        return try Self.json(["message": "Successfully updated"])
    }

    func emptyBucket(_ call: Call, _ id: String) async throws -> Response {
        try call.requireKey()
        try await call.storage.emptyBucket(id, access: call.access)
        return try Self.json(["message": "Successfully emptied"])
    }

    func deleteBucket(_ call: Call, _ id: String) async throws -> Response {
        try call.requireKey()
        try await call.storage.deleteBucket(id, access: call.access)
        return try Self.json(["message": "Successfully deleted"])
    }

    /// `public`, `file_size_limit` (bytes, or a string like "5MB") and `allowed_mime_types`.
    static func settings(_ body: JSONObject) throws -> TenantStorage.BucketSettings {
        var settings = TenantStorage.BucketSettings()
        if let value = body["public"], value != .null {
            guard let flag = value.boolValue else { throw StorageError.invalidRequest("public must be true or false") }
            settings.isPublic = flag
        }
        if let value = body["file_size_limit"] {
            settings.fileSizeLimit = .some(try sizeLimit(value))
        }
        if let value = body["allowed_mime_types"] {
            if value == .null {
                settings.allowedMimeTypes = .some(nil)
            } else {
                guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                    throw StorageError.invalidRequest("allowed_mime_types must be an array of MIME types")
                }
                settings.allowedMimeTypes = .some(list.compactMap(\.stringValue))
            }
        }
        return settings
    }

    static let maxSizeLimit = 1 << 40

    static func sizeLimit(_ value: JSONValue) throws -> Int? {
        switch value {
        case .null: return nil
        case .integer, .number:
            guard let bytes = value.intValue, (0...Int64(maxSizeLimit)).contains(bytes) else {
                throw StorageError.invalidRequest("file_size_limit must be a whole number of bytes up to 2^40")
            }
            return bytes == 0 ? nil : Int(bytes)
        case .string(let text):
            // Supabase accepts "50MB", "1GB", "100KB".
            let units: [(String, Int)] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)]
            let upper = text.uppercased().trimmingCharacters(in: .whitespaces)
            for (unit, factor) in units where upper.hasSuffix(unit) {
                if let number = Double(upper.dropLast(unit.count).trimmingCharacters(in: .whitespaces)), number.isFinite, number >= 0,
                    number * Double(factor) <= Double(maxSizeLimit)
                {
                    return Int(number * Double(factor))
                }
            }
            if let bytes = Int(upper), (0...maxSizeLimit).contains(bytes) { return bytes }
            throw StorageError.invalidRequest("file_size_limit '\(text)' is not a size (bytes, or like 50MB)")
        default:
            throw StorageError.invalidRequest("file_size_limit must be a number of bytes")
        }
    }

    static func bucketJSON(_ bucket: StorageBucket) -> JSONValue {
        [
            "id": .string(bucket.id), "name": .string(bucket.name), "owner": .string(bucket.ownerID ?? ""),
            "owner_id": bucket.ownerID.map(JSONValue.string) ?? .null, "public": .bool(bucket.isPublic), "type": "STANDARD",
            "file_size_limit": bucket.fileSizeLimit.map { .integer(Int64($0)) } ?? .null,
            "allowed_mime_types": bucket.allowedMimeTypes.map { .array($0.map(JSONValue.string)) } ?? .null,
            "created_at": date(bucket.createdAt), "updated_at": date(bucket.updatedAt),
        ]
    }
}
