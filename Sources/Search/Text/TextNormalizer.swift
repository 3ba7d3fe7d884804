import Foundation
import Runtime

/// Turns text into the words the index keeps and queries look for: lower case, accents folded
/// (`Crème` is `creme`), split on everything that is not a letter or digit. Positions count words
/// within one attribute value, so proximity and word position can be ranked.
public enum TextNormalizer {
    /// One word of a text: where it is in the original and its normalized form.
    public struct Token: Sendable {
        public var range: Range<String.Index>
        public var word: String
    }

    /// The words of `text` in order, normalized. Long words are cut (no useful query types 64
    /// characters) and a value's words are capped, so one huge field cannot bloat the index.
    public static func words(_ text: String, limit: Int = 1_000) -> [String] {
        tokens(text, limit: limit).map(\.word)
    }

    /// The words with their places in `text` (highlighting and cropping mark the original).
    public static func tokens(_ text: String, limit: Int = 1_000) -> [Token] {
        var result: [Token] = []
        let scalars = text.unicodeScalars
        var index = scalars.startIndex
        while index < scalars.endIndex, result.count < limit {
            guard isWordScalar(scalars[index]) else {
                index = scalars.index(after: index)
                continue
            }
            let start = index
            var length = 0
            while index < scalars.endIndex, isWordScalar(scalars[index]) {
                index = scalars.index(after: index)
                length += 1
            }
            var word = fold(String(scalars[start..<index]))
            if length > 64 { word = String(String.UnicodeScalarView(word.unicodeScalars.prefix(64))) }
            result.append(Token(range: start..<index, word: word))
        }
        return result
    }

    @inline(__always)
    static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let value = scalar.value
            return (value >= 0x30 && value <= 0x39) || (value >= 0x41 && value <= 0x5A) || (value >= 0x61 && value <= 0x7A)
        }
        return scalar.properties.isAlphabetic || scalar.properties.numericType != nil
    }

    /// Lower case without diacritics; ASCII (most text) takes the quick path.
    public static func fold(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        return text.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil).lowercased()
    }

    /// The searchable text of a JSON value: strings, numbers and booleans as written, arrays and
    /// objects flattened in order.
    public static func texts(of value: JSONValue) -> [String] {
        switch value {
        case .null: return []
        case .bool(let flag): return [flag ? "true" : "false"]
        case .integer(let number): return [String(number)]
        case .number(let number): return [number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)]
        case .string(let text): return [text]
        case .array(let items): return items.flatMap(texts(of:))
        case .object(let object): return object.flatMap { texts(of: $0.value) }
        }
    }
}
