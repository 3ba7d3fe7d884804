/// The names clients give buckets and objects, checked before anything else sees them. Names are
/// metadata only: they never become file paths, so these rules are about what clients can
/// address unambiguously, not about the disk.
public enum StorageNames {
    public static let maxObjectNameBytes = 1024

    /// UTF-8 up to 1,024 bytes; segments separated by `/`, none empty, `.` or `..`; no NUL or
    /// other control characters.
    public static func object(_ name: String) throws(StorageError) -> String {
        guard !name.isEmpty else { throw .invalidKey("the object name is empty") }
        guard name.utf8.count <= maxObjectNameBytes else { throw .invalidKey("the object name is longer than \(maxObjectNameBytes) bytes") }
        if let bad = name.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            throw .invalidKey("the object name holds a control character (U+\(String(bad.value, radix: 16, uppercase: true)))")
        }
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty { throw .invalidKey("the object name '\(name)' has an empty segment") }
            if segment == "." || segment == ".." { throw .invalidKey("the object name '\(name)' has a '\(segment)' segment") }
        }
        return name
    }

    /// 1 to 100 characters: letters, digits and `-_.` as in S3 and Supabase, not `.`/`..`.
    public static func bucket(_ id: String) throws(StorageError) -> String {
        guard (1...100).contains(id.count) else { throw .invalidBucketName("a bucket name has 1 to 100 characters") }
        guard id != ".", id != "..",
            id.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "-_.".unicodeScalars.contains($0) })
        else { throw .invalidBucketName("the bucket name '\(id)' may hold only letters, digits, '-', '_' and '.'") }
        return id
    }

    /// A list prefix: like a name, but may be empty and may end in `/`.
    public static func prefix(_ prefix: String) throws(StorageError) -> String {
        guard !prefix.isEmpty else { return "" }
        let trimmed = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        guard !trimmed.isEmpty else { return "" }
        _ = try object(trimmed)
        return prefix
    }
}
