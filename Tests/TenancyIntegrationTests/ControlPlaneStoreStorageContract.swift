import Foundation
import Runtime
import TestSupport
import XCTest
@testable import Tenancy

/// Object storage rows, run against both stores.
extension ControlPlaneStoreContract {
    func bucketRow(_ tenant: String, _ id: String, isPublic: Bool = false) -> StorageBucket {
        StorageBucket(
            tenant: tenant, id: id, name: id, isPublic: isPublic, fileSizeLimit: 1024, allowedMimeTypes: ["image/*"], ownerID: "u1",
            createdAt: Date(timeIntervalSince1970: 1_800_000_000), updatedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    func objectRow(_ tenant: String, _ bucket: String, _ name: String, blob: String, size: Int = 10) -> StoredObject {
        StoredObject(
            tenant: tenant, bucket: bucket, name: name, id: "id-" + name, blobKey: blob, size: size, mimeType: "image/png",
            cacheControl: "max-age=60", etag: "\"e\"", userMetadata: ["k": "v"], ownerID: "u1",
            createdAt: Date(timeIntervalSince1970: 1_800_000_000), updatedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    func storageRowsBelongToTheirTenantAndBucket() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createTenant(tenant("beta"), secret: secret(), audit: audit("tenant.create", tenant: "beta"))
        try await store.createBucket(bucketRow("acme", "pics"))
        try await store.createBucket(bucketRow("beta", "pics", isPublic: true))
        do {
            try await store.createBucket(bucketRow("acme", "pics"))
            XCTFail("a taken bucket id must be refused")
        } catch StorageStoreError.bucketExists {}
        try await assertEqual(try await store.bucket(tenant: "acme", id: "pics"), bucketRow("acme", "pics"))
        try await assertEqual(try await store.buckets(tenant: "beta").map(\.isPublic), [true])

        let a = objectRow("acme", "pics", "a/1.png", blob: "acme/aa/1")
        try await store.putObject(a, replacing: nil)
        try await store.putObject(objectRow("acme", "pics", "a/2.png", blob: "acme/aa/2", size: 5), replacing: nil)
        try await store.putObject(objectRow("acme", "pics", "b%_.png", blob: "acme/aa/3"), replacing: nil)
        try await assertEqual(try await store.object(tenant: "acme", bucket: "pics", name: "a/1.png"), a)
        try await assertNil(try await store.object(tenant: "beta", bucket: "pics", name: "a/1.png"))
        // Prefixes are literal (no LIKE wildcards) and pages run by name.
        try await assertEqual(try await store.objects(tenant: "acme", bucket: "pics", prefix: "a/", after: nil, limit: 10).map(\.name), ["a/1.png", "a/2.png"])
        try await assertEqual(try await store.objects(tenant: "acme", bucket: "pics", prefix: "b%", after: nil, limit: 10).map(\.name), ["b%_.png"])
        try await assertEqual(try await store.objects(tenant: "acme", bucket: "pics", prefix: "_", after: nil, limit: 10).map(\.name), [])
        try await assertEqual(try await store.objects(tenant: "acme", bucket: "pics", prefix: "", after: "a/1.png", limit: 1).map(\.name), ["a/2.png"])
        try await assertEqual(try await store.storageUsage(tenant: "acme"), StorageUsage(bytes: 25, objects: 3, buckets: 1))
        try await assertEqual(try await store.allBlobKeys(), ["acme/aa/1", "acme/aa/2", "acme/aa/3"])

        do {
            try await store.deleteBucket(tenant: "acme", id: "pics")
            XCTFail("a bucket holding objects must not be deleted")
        } catch StorageStoreError.bucketNotEmpty {}
        do {
            try await store.putObject(objectRow("acme", "nope", "x", blob: "acme/aa/9"), replacing: nil)
            XCTFail("an object needs its bucket")
        } catch StorageStoreError.bucketMissing {}
    }

    func overwritesReplaceOnlyTheVersionTheyRead() async throws {
        try await store.createTenant(tenant("acme"), secret: secret(), audit: audit("tenant.create", tenant: "acme"))
        try await store.createBucket(bucketRow("acme", "pics"))
        try await store.putObject(objectRow("acme", "pics", "x.png", blob: "acme/aa/v1"), replacing: nil)
        do {
            try await store.putObject(objectRow("acme", "pics", "x.png", blob: "acme/aa/v2"), replacing: nil)
            XCTFail("an existing name needs an overwrite")
        } catch StorageStoreError.objectExists {}
        do {
            try await store.putObject(objectRow("acme", "pics", "x.png", blob: "acme/aa/v2"), replacing: "acme/aa/other")
            XCTFail("an overwrite of a version that is no longer there must be refused")
        } catch StorageStoreError.conflict {}
        var second = objectRow("acme", "pics", "x.png", blob: "acme/aa/v2", size: 99)
        second.updatedAt = Date(timeIntervalSince1970: 1_800_000_500)
        try await store.putObject(second, replacing: "acme/aa/v1")
        try await assertEqual(try await store.object(tenant: "acme", bucket: "pics", name: "x.png")?.blobKey, "acme/aa/v2")
        try await assertEqual(try await store.object(tenant: "acme", bucket: "pics", name: "x.png")?.size, 99)

        try await store.createBucket(bucketRow("acme", "other"))
        let moved = try await store.moveObject(tenant: "acme", bucket: "pics", name: "x.png", toBucket: "other", toName: "y.png", overwrite: false)
        XCTAssertEqual(moved.moved.name, "y.png")
        XCTAssertNil(moved.replaced)
        try await assertNil(try await store.object(tenant: "acme", bucket: "pics", name: "x.png"))
        try await store.putObject(objectRow("acme", "other", "z.png", blob: "acme/aa/z"), replacing: nil)
        do {
            _ = try await store.moveObject(tenant: "acme", bucket: "other", name: "y.png", toBucket: "other", toName: "z.png", overwrite: false)
            XCTFail("a move onto a taken name must be refused")
        } catch StorageStoreError.objectExists {}
        try await assertEqual(try await store.object(tenant: "acme", bucket: "other", name: "z.png")?.blobKey, "acme/aa/z")

        try await assertEqual(try await store.deleteObjects(tenant: "acme", bucket: "other", names: ["y.png", "y.png", "nope"]).map(\.name), ["y.png"])
        try await assertEqual(try await store.emptyBucket(tenant: "acme", bucket: "other", limit: 10).map(\.name), ["z.png"])
        try await store.deleteBucket(tenant: "acme", id: "other")
        try await assertNil(try await store.bucket(tenant: "acme", id: "other"))
        // Deleting the tenant takes its rows with it.
        _ = try await store.deleteTenant("acme", audit: audit("tenant.delete", tenant: "acme"))
        try await assertEqual(try await store.allBlobKeys(), [])
    }
}
