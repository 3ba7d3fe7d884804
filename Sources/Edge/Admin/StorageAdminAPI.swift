import Crypto
import Foundation
import Hummingbird
import Runtime
import Storage
import Tenancy

/// A tenant's storage for its operator: usage against limits, and S3 access keys (the secret is
/// shown once, when made, and kept sealed).
struct StorageAdminAPI {
    let node: NodeServices
    static let maxS3Keys = 10

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/storage", use: usage)
        group.post("tenants/:slug/storage/s3-keys", use: createKey)
        group.get("tenants/:slug/storage/s3-keys", use: listKeys)
        group.delete("tenants/:slug/storage/s3-keys/:id", use: deleteKey)
    }

    static func sealContext(_ key: S3KeyRecord) -> String { "s3key:\(key.tenant):\(key.id)" }

    /// `GET /admin/v1/tenants/{slug}/storage`: what the tenant stores against its limits.
    @Sendable func usage(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let usage = try await node.store.storageUsage(tenant: tenant.slug)
        let limits = tenant.limits.storage
        return try jsonResponse([
            "usage": ["bytes": .integer(Int64(usage.bytes)), "objects": .integer(Int64(usage.objects)), "buckets": .integer(Int64(usage.buckets))],
            "limits": ["maxBytes": .integer(Int64(limits.maxBytes)), "maxObjectBytes": .integer(Int64(limits.maxObjectBytes)),
                       "maxBuckets": .integer(Int64(limits.maxBuckets))],
            "settings": ["backend": .string(node.blobs?.summary ?? "off (MB906: no shared storage directory)"),
                         "s3Endpoint": .string(node.apiURL(for: tenant.slug) + "/storage/v1/s3")],
        ])
    }

    @Sendable func createKey(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        guard try await node.store.s3Keys(tenant: tenant.slug).count < Self.maxS3Keys else {
            throw APIError(status: .conflict, code: "MB902", message: "tenant '\(tenant.slug)' already has \(Self.maxS3Keys) S3 keys", hint: "delete one first")
        }
        let id = UUID().uuidString.lowercased()
        let accessKeyID = "MB" + String(Self.random(alphabet: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), count: 18))
        let secret = String(Self.random(alphabet: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), count: 40))
        var record = S3KeyRecord(tenant: tenant.slug, id: id, accessKeyID: accessKeyID, sealedSecret: [], createdAt: Date())
        record.sealedSecret = try node.secretBox.seal(Array(secret.utf8), context: Self.sealContext(record))
        try await node.store.createS3Key(record)
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: "storage.s3_key.create", tenant: tenant.slug, requestID: context.requestID,
            detail: ["id": .string(id), "accessKeyId": .string(accessKeyID)]))
        return try jsonResponse(
            ["id": .string(id), "accessKeyId": .string(accessKeyID), "secretAccessKey": .string(secret),
             "endpoint": .string(node.apiURL(for: tenant.slug) + "/storage/v1/s3")], status: .created)
    }

    @Sendable func listKeys(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let keys = try await node.store.s3Keys(tenant: tenant.slug)
        return try jsonResponse(.array(keys.map { key in
            ["id": .string(key.id), "accessKeyId": .string(key.accessKeyID), "createdAt": .string(ISO8601DateFormatter().string(from: key.createdAt))]
        }))
    }

    @Sendable func deleteKey(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let id = context.parameters.get("id") ?? ""
        guard try await node.store.deleteS3Key(tenant: tenant.slug, id: id) else {
            throw APIError(status: .notFound, code: "MB901", message: "tenant '\(tenant.slug)' has no S3 key '\(id)'")
        }
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: "storage.s3_key.delete", tenant: tenant.slug, requestID: context.requestID, detail: ["id": .string(id)]))
        return Response(status: .noContent)
    }

    static func random(alphabet: [Character], count: Int) -> [Character] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] }
    }
}
