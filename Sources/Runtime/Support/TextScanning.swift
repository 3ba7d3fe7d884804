// Header and query-string scanning on the REST hot path, in UTF-8. With Foundation imported,
// `String.contains(String)` and `range(of:)` go through NSString, which profiles of a REST read
// showed at several per cent. Inlinable so that callers in other modules get code specialised for
// `String` and `Substring` rather than calls through `StringProtocol`'s witness tables (which
// profiles showed as the larger part of these helpers' cost).

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (header values).
    @inlinable
    public var trimmingSpaces: String { String(self[rangeWithoutSpaces]) }

    /// Where the text lies once leading and trailing spaces and tabs are left out (empty at the
    /// end when it is all spaces), in bytes.
    @inlinable
    public var rangeWithoutSpaces: Range<Index> {
        let bytes = utf8
        var start = bytes.startIndex
        while start != bytes.endIndex, bytes[start] == 0x20 || bytes[start] == 0x09 { start = bytes.index(after: start) }
        // Forward (the protocol's UTF-8 view need not walk backwards): just past the last byte
        // that is not a space.
        var end = start
        var index = start
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            if byte != 0x20 && byte != 0x09 { end = index }
        }
        return start..<end
    }

    /// Whether `needle` occurs, byte for byte (no Unicode normalisation: for ASCII tokens).
    @inlinable
    public func containsBytes(_ needle: String) -> Bool {
        rangeOfBytes(needle) != nil
    }

    /// Where `needle` first occurs, byte for byte.
    @inlinable
    public func rangeOfBytes(_ needle: String) -> Range<Index>? {
        let pattern = needle.utf8
        guard let first = pattern.first else { return startIndex..<startIndex }
        let bytes = utf8
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index] == first {
                var probe = index
                var candidate = pattern.startIndex
                while candidate != pattern.endIndex, probe != bytes.endIndex, bytes[probe] == pattern[candidate] {
                    candidate = pattern.index(after: candidate)
                    probe = bytes.index(after: probe)
                }
                if candidate == pattern.endIndex { return index..<probe }
            }
            index = bytes.index(after: index)
        }
        return nil
    }
}
