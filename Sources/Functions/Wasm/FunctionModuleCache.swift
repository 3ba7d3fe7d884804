import Foundation
import Runtime

/// Parsed function modules of every tenant on the node (parsing takes milliseconds, a warm call
/// microseconds), bounded in bytes for the whole node (`MINIBAAS_FUNCTION_CACHE_MB`, 256 by
/// default) rather than per tenant: the least recently used go first. A module is weighed by its
/// deployed size (the Wasm binary, or the JavaScript source); one larger than the whole bound is
/// parsed for each call instead of kept.
public final class FunctionModuleCache: @unchecked Sendable {
    public static let shared = FunctionModuleCache(
        maxBytes: (ProcessInfo.processInfo.environment["MINIBAAS_FUNCTION_CACHE_MB"].flatMap(Int.init) ?? 256) << 20)

    public let maxBytes: Int
    private let lock = Lock()
    private var entries: [String: (module: FunctionModule, tenant: String, used: UInt64)] = [:]
    private var tick: UInt64 = 0
    private var heldBytes = 0

    public init(maxBytes: Int) {
        self.maxBytes = max(0, maxBytes)
    }

    /// The sizes of the modules kept, in bytes.
    public var bytes: Int { lock.withLock { heldBytes } }

    public func module(tenant: String, key: String) -> FunctionModule? {
        lock.withLock {
            let entryKey = tenant + "\u{0}" + key
            guard let entry = entries[entryKey] else { return nil }
            tick += 1
            entries[entryKey]?.used = tick
            return entry.module
        }
    }

    public func insert(_ module: FunctionModule, tenant: String, key: String) {
        let size = module.sizeBytes
        guard size <= maxBytes else { return }
        lock.withLock {
            let entryKey = tenant + "\u{0}" + key
            if let old = entries.removeValue(forKey: entryKey) { heldBytes -= old.module.sizeBytes }
            while heldBytes + size > maxBytes, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
                entries[oldest.key] = nil
                heldBytes -= oldest.value.module.sizeBytes
            }
            tick += 1
            entries[entryKey] = (module, tenant, tick)
            heldBytes += size
        }
    }

    /// Drops a tenant's modules whose key starts with `prefix` (a deleted function's versions).
    public func forget(tenant: String, keyPrefix: String) {
        lock.withLock {
            let prefix = tenant + "\u{0}" + keyPrefix
            for (key, entry) in entries where key.hasPrefix(prefix) {
                entries[key] = nil
                heldBytes -= entry.module.sizeBytes
            }
        }
    }

    public func count(tenant: String) -> Int {
        lock.withLock { entries.values.filter { $0.tenant == tenant }.count }
    }
}
