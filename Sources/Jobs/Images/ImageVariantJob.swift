import Foundation
import Logging
import Runtime
import Storage
import Tenancy

/// Renders image variants in the background: a job names an object and a transform, and the
/// render lands in the node's variant cache, so the first request for that variant is a cache
/// hit. It runs in the tenant's job workers, under the same limits as every other job, and
/// libvips's own concurrency gate. A missing object or an image libvips cannot read is final;
/// anything else is retried.
public struct ImageVariantJob: JobHandler {
    public static let kind = "image"
    public static let schedule = RetrySchedule(delays: [.zero, .seconds(10), .seconds(60)])

    let storage: TenantStorage

    public init(storage: TenantStorage) {
        self.storage = storage
    }

    public func retrySchedule(for job: JobRecord) -> RetrySchedule? { Self.schedule }

    /// The job of one variant of one object; its id names the object and transform (a hash) and
    /// the time it was asked for.
    public static func job(tenant: String, bucket: String, name: String, transform: ImageTransform, webp: Bool, now: Date) -> JobRecord {
        var payload: JSONObject = ["bucket": .string(bucket), "name": .string(name), "transform": .object(transform.claims), "webp": .bool(webp)]
        payload["requestedAt"] = .string(String(Int64(now.timeIntervalSince1970)))
        let identity = "\(bucket)\u{0}\(name)\u{0}\(String(decoding: JSONValue.object(transform.claims).encoded(), as: UTF8.self))\u{0}\(webp)"
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in identity.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return JobRecord(
            tenant: tenant, id: "img_" + String(hash, radix: 16) + "_" + String(Int64(now.timeIntervalSince1970 * 1000), radix: 36), kind: kind,
            key: nil, subject: "image", payload: payload, maxAttempts: schedule.maxAttempts, runAt: now, createdAt: now, updatedAt: now)
    }

    public func run(_ job: JobRecord) async -> JobResult {
        guard let bucket = job.payload["bucket"]?.stringValue, let name = job.payload["name"]?.stringValue,
            let claims = job.payload["transform"]?.objectValue, let transform = try? ImageTransform.parse(claims: claims)
        else { return .fail(error: "the job does not name an object and a transform") }
        do {
            let object = try await storage.signedObject(bucket: bucket, name: name)
            _ = try await storage.render(object, transform: transform, acceptsWebP: job.payload["webp"]?.boolValue ?? true)
            return .done
        } catch let error as StorageError {
            // 4xx: the object is gone, too large, or not an image libvips reads.
            return (400..<500).contains(error.status) || error.status == 501 ? .fail(error: error.message) : .retry(error: error.message)
        } catch {
            return .retry(error: "\(error)")
        }
    }
}
