import Foundation
import NIOCore
import Runtime

/// GET answers of an upstream, kept as long as the upstream's `Cache-Control: max-age` allows
/// (never with `no-store`, `no-cache` or `private`), bounded in entries and bytes with
/// least-recently-used eviction.
public final class ResponseCache: @unchecked Sendable {
    public struct Entry: Sendable {
        public var status: Int
        public var contentType: String?
        public var body: ByteBuffer
        public var storedAt: ContinuousClock.Instant
        public var maxAge: Int
    }

    private let maxEntries: Int
    private let maxBytes: Int
    private let lock = Lock()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var bytes = 0

    public init(maxEntries: Int = 512, maxBytes: Int = 16 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    /// The seconds `Cache-Control` allows keeping an answer for, or nil.
    public static func maxAge(_ cacheControl: String?) -> Int? {
        guard let cacheControl else { return nil }
        let directives = cacheControl.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if directives.contains(where: { ["no-store", "no-cache", "private"].contains($0) }) { return nil }
        for directive in directives {
            for prefix in ["s-maxage=", "max-age="] where directive.hasPrefix(prefix) {
                if let seconds = Int(directive.dropFirst(prefix.count)), seconds > 0 { return min(seconds, 86_400) }
            }
        }
        return nil
    }

    public func get(_ key: String) -> (entry: Entry, age: Int)? {
        lock.withLock {
            guard let entry = entries[key] else { return nil }
            let age = ContinuousClock.now - entry.storedAt
            guard age < .seconds(entry.maxAge) else {
                remove(key)
                return nil
            }
            order.removeAll { $0 == key }
            order.append(key)
            return (entry, Int(age.components.seconds))
        }
    }

    public func put(_ key: String, _ entry: Entry) {
        guard entry.body.readableBytes <= maxBytes / 4 else { return }
        lock.withLock {
            remove(key)
            entries[key] = entry
            order.append(key)
            bytes += entry.body.readableBytes
            while (entries.count > maxEntries || bytes > maxBytes), let oldest = order.first { remove(oldest) }
        }
    }

    private func remove(_ key: String) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        bytes -= entry.body.readableBytes
        order.removeAll { $0 == key }
    }
}
