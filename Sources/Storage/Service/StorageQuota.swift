import NIOConcurrencyHelpers
import Tenancy

/// Bytes promised to uploads still in flight, per tenant and node, so that concurrent uploads
/// cannot together pass the tenant's quota: each reserves before it writes, and gives back
/// what it did not store. Usage already stored comes from the control plane.
public final class StorageReservations: Sendable {
    private let reserved = NIOLockedValueBox<Int>(0)

    public init() {}

    public var inFlight: Int { reserved.withLockedValue { $0 } }

    /// Takes `bytes` more if `stored + reserved + bytes` stays within `limit`.
    public func reserve(_ bytes: Int, stored: Int, limit: Int) -> Bool {
        reserved.withLockedValue { reserved in
            guard stored + reserved + bytes <= limit else { return false }
            reserved += bytes
            return true
        }
    }

    public func release(_ bytes: Int) {
        reserved.withLockedValue { $0 = max(0, $0 - bytes) }
    }
}
