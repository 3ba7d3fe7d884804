import Connectors
import Foundation
import Runtime
import Tenancy

/// The built-in entities policies name for object storage, `storage.objects` and
/// `storage.buckets`, and the rows their rules are evaluated against.
public enum StorageEntities {
    public static let objects = Entity(
        schema: "storage", name: "storage.objects", kind: .table,
        columns: [
            Column(name: "id", type: .uuid, nativeType: "uuid"),
            Column(name: "bucket_id", type: .string, nativeType: "text"),
            Column(name: "name", type: .string, nativeType: "text"),
            // The first segment of the name: the usual "own folder" rule compares it with auth.uid.
            Column(name: "folder", type: .string, nativeType: "text"),
            Column(name: "owner_id", type: .string, nativeType: "text"),
            Column(name: "size", type: .bigint, nativeType: "bigint"),
            Column(name: "mime_type", type: .string, nativeType: "text"),
            Column(name: "metadata", type: .json, nativeType: "jsonb"),
            Column(name: "created_at", type: .datetime, nativeType: "timestamptz"),
            Column(name: "updated_at", type: .datetime, nativeType: "timestamptz"),
        ], primaryKey: ["id"])

    public static let buckets = Entity(
        schema: "storage", name: "storage.buckets", kind: .table,
        columns: [
            Column(name: "id", type: .string, nativeType: "text"),
            Column(name: "name", type: .string, nativeType: "text"),
            Column(name: "public", type: .boolean, nativeType: "boolean"),
            Column(name: "owner_id", type: .string, nativeType: "text"),
        ], primaryKey: ["id"])

    /// For validating policy documents beside the tenant's sources' models.
    public static let model = SchemaModel(entities: [objects, buckets])

    /// The row a policy sees for an object (existing, or about to be written).
    public static func row(bucket: String, name: String, id: String?, ownerID: String?, size: Int?, mimeType: String?, metadata: JSONObject?,
                           createdAt: Date?, updatedAt: Date?) -> JSONObject {
        var row = JSONObject()
        row["id"] = id.map(JSONValue.string) ?? .null
        row["bucket_id"] = .string(bucket)
        row["name"] = .string(name)
        row["folder"] = name.contains("/") ? .string(String(name.prefix { $0 != "/" })) : .null
        row["owner_id"] = ownerID.map(JSONValue.string) ?? .null
        row["size"] = size.map { .integer(Int64($0)) } ?? .null
        row["mime_type"] = mimeType.map(JSONValue.string) ?? .null
        row["metadata"] = metadata.map(JSONValue.object) ?? .null
        row["created_at"] = createdAt.map { .string($0.formatted(.iso8601)) } ?? .null
        row["updated_at"] = updatedAt.map { .string($0.formatted(.iso8601)) } ?? .null
        return row
    }

    public static func row(_ object: StoredObject) -> JSONObject {
        row(bucket: object.bucket, name: object.name, id: object.id, ownerID: object.ownerID, size: object.size, mimeType: object.mimeType,
            metadata: object.userMetadata, createdAt: object.createdAt, updatedAt: object.updatedAt)
    }

    public static func row(_ bucket: StorageBucket) -> JSONObject {
        ["id": .string(bucket.id), "name": .string(bucket.name), "public": .bool(bucket.isPublic), "owner_id": bucket.ownerID.map(JSONValue.string) ?? .null]
    }
}
