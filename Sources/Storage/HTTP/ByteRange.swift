import Foundation

/// One `Range: bytes=…` request resolved against an object's size. Several ranges are answered
/// with the whole object (allowed by RFC 9110 and what S3 does); syntax that is not a byte range
/// is ignored, as the RFC asks; a range past the end is unsatisfiable (416).
public struct ByteRange: Sendable, Equatable {
    public let start: Int
    /// Inclusive.
    public let end: Int
    public var count: Int { end - start + 1 }

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    /// nil: serve the whole object.
    public static func parse(_ header: String?, size: Int) throws(StorageError) -> ByteRange? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), header.lowercased().hasPrefix("bytes=") else { return nil }
        let spec = header.dropFirst("bytes=".count)
        guard !spec.contains(",") else { return nil }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let first = parts[0].trimmingCharacters(in: .whitespaces), last = parts[1].trimmingCharacters(in: .whitespaces)
        if first.isEmpty {
            // Suffix: the last N bytes.
            guard let suffix = Int(last), suffix >= 0 else { return nil }
            guard suffix > 0, size > 0 else { throw .rangeNotSatisfiable(size: size) }
            return ByteRange(start: max(0, size - suffix), end: size - 1)
        }
        guard let start = Int(first), start >= 0 else { return nil }
        var end = size - 1
        if !last.isEmpty {
            guard let parsed = Int(last), parsed >= start else { return nil }
            end = min(parsed, size - 1)
        }
        guard start < size else { throw .rangeNotSatisfiable(size: size) }
        return ByteRange(start: start, end: end)
    }
}
