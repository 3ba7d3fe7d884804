import Foundation
import Logging

/// Lines on standard error in swift-log's `StreamLogHandler` format
/// (`time level label: key=value … [source] message`), formatting metadata only when a line is
/// written. `StreamLogHandler` formats its metadata again every time a key is set, and the edge
/// sets keys (request id, tenant, role) on every request whether or not anything is logged — that
/// alone was several per cent of a REST read in profiles.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadataProvider: Logger.MetadataProvider?
    /// Keys set one by one, newest first: setting a key on a copied logger (every request copies
    /// the node's) adds one link instead of copying and rehashing a dictionary.
    private var links: MetadataLink?

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    var metadata: Logger.Metadata {
        get { links?.flattened() ?? [:] }
        set { links = MetadataLink.chain(newValue) }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { links?.value(for: key) }
        set {
            links = MetadataLink(key: key, value: newValue, next: links)
            // A logger kept and re-tagged for a long time must not grow without bound.
            if links!.depth > MetadataLink.maxDepth { links = MetadataLink.chain(links!.flattened()) }
        }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata, !explicit.isEmpty { merged.merge(explicit) { _, new in new } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        let pretty = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line = "\(Self.timestamp()) \(event.level)\(label.isEmpty ? "" : " ")\(label):\(pretty) [\(event.source)] \(event.message)\n"
        // Whole lines under one lock: a long line or a partial write must not interleave with
        // another thread's.
        var bytes = Array(line.utf8)
        Self.output.lock()
        defer { Self.output.unlock() }
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }

    private static let output = NSLock()

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        guard localtime_r(&now, &parts) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One metadata key's value (nil: removed), in front of the keys set before it.
private final class MetadataLink: Sendable {
    static let maxDepth = 32
    let key: String
    let value: Logger.Metadata.Value?
    let next: MetadataLink?
    let depth: Int

    init(key: String, value: Logger.Metadata.Value?, next: MetadataLink?) {
        self.key = key
        self.value = value
        self.next = next
        self.depth = (next?.depth ?? 0) + 1
    }

    func value(for key: String) -> Logger.Metadata.Value? {
        var link: MetadataLink? = self
        while let current = link {
            if current.key == key { return current.value }
            link = current.next
        }
        return nil
    }

    /// The newest value of every key still set.
    func flattened() -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        var seen: Set<String> = []
        var link: MetadataLink? = self
        while let current = link {
            if seen.insert(current.key).inserted, let value = current.value { metadata[current.key] = value }
            link = current.next
        }
        return metadata
    }

    static func chain(_ metadata: Logger.Metadata) -> MetadataLink? {
        metadata.reduce(nil) { next, entry in MetadataLink(key: entry.key, value: entry.value, next: next) }
    }
}
