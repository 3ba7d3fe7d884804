// Header and query-string scanning on the REST hot path, in UTF-8. With Foundation imported,
// `String.contains(String)` and `range(of:)` go through NSString, which profiles of a REST read
// showed at several per cent.

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (header values).
    public var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }

    /// Whether `needle` occurs, byte for byte (no Unicode normalisation: for ASCII tokens).
    public func containsBytes(_ needle: String) -> Bool {
        rangeOfBytes(needle) != nil
    }

    /// Where `needle` first occurs, byte for byte.
    public func rangeOfBytes(_ needle: String) -> Range<Index>? {
        let pattern = Array(needle.utf8)
        guard let first = pattern.first else { return startIndex..<startIndex }
        let bytes = utf8
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index] == first {
                var probe = index
                var matched = 0
                while matched < pattern.count, probe != bytes.endIndex, bytes[probe] == pattern[matched] {
                    matched += 1
                    probe = bytes.index(after: probe)
                }
                if matched == pattern.count { return index..<probe }
            }
            index = bytes.index(after: index)
        }
        return nil
    }
}
