/// GraphQL's lexical tokens (October 2021 spec) with where each starts. Hostile input is refused
/// early: control characters, unterminated strings, bad escapes, and more tokens than a bound.
struct GraphQLLexer {
    enum Kind: Equatable {
        case name
        case int
        case float
        case string
        case punctuator
        case end
    }

    struct Token {
        var kind: Kind
        /// The name, the number's digits, the decoded string, or the punctuator.
        var text: String
        var location: SourceLocation
    }

    static let maxTokens = 100_000

    static func tokenize(_ source: String) throws(GraphQLError) -> [Token] {
        let bytes = Array(source.utf8)
        var tokens: [Token] = []
        var index = 0
        var line = 1
        var lineStart = 0

        // Columns count characters, not bytes (UTF-8 continuation bytes are skipped), counted on
        // from the previous token so a long line costs linear time.
        var counted = (line: 1, index: 0, column: 1)
        func location(_ at: Int) -> SourceLocation {
            if counted.line != line || counted.index < lineStart || counted.index > at { counted = (line, lineStart, 1) }
            var i = counted.index
            var column = counted.column
            while i < at {
                if bytes[i] & 0xC0 != 0x80 { column += 1 }
                i += 1
            }
            counted = (line, at, column)
            return SourceLocation(line: line, column: column)
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x20, 0x09, 0x2C:
                index += 1
            case 0xEF where index + 2 < bytes.count && bytes[index + 1] == 0xBB && bytes[index + 2] == 0xBF:
                index += 3
            case 0x0A:
                index += 1
                line += 1
                lineStart = index
            case 0x0D:
                index += 1
                if index < bytes.count && bytes[index] == 0x0A { index += 1 }
                line += 1
                lineStart = index
            case 0x23:
                while index < bytes.count && bytes[index] != 0x0A && bytes[index] != 0x0D { index += 1 }
            case 0x22:
                let start = location(index)
                if index + 2 < bytes.count && bytes[index + 1] == 0x22 && bytes[index + 2] == 0x22 {
                    let (text, end, lines, lastLineStart) = try blockString(bytes, from: index + 3, start: start)
                    tokens.append(Token(kind: .string, text: text, location: start))
                    index = end
                    if lines > 0 {
                        line += lines
                        lineStart = lastLineStart
                    }
                } else {
                    let (text, end) = try string(bytes, from: index + 1, start: start)
                    tokens.append(Token(kind: .string, text: text, location: start))
                    index = end
                }
            case 0x2E:
                guard index + 2 < bytes.count, bytes[index + 1] == 0x2E, bytes[index + 2] == 0x2E else {
                    throw .syntax("Unexpected \".\"", at: location(index))
                }
                tokens.append(Token(kind: .punctuator, text: "...", location: location(index)))
                index += 3
            case 0x21, 0x24, 0x26, 0x28, 0x29, 0x3A, 0x3D, 0x40, 0x5B, 0x5D, 0x7B, 0x7C, 0x7D:
                tokens.append(Token(kind: .punctuator, text: String(UnicodeScalar(byte)), location: location(index)))
                index += 1
            case _ where isNameStart(byte):
                var end = index + 1
                while end < bytes.count && (isNameStart(bytes[end]) || isDigit(bytes[end])) { end += 1 }
                tokens.append(Token(kind: .name, text: String(decoding: bytes[index..<end], as: UTF8.self), location: location(index)))
                index = end
            case _ where isDigit(byte) || byte == 0x2D:
                let start = location(index)
                let (text, isFloat, end) = try number(bytes, from: index, start: start)
                tokens.append(Token(kind: isFloat ? .float : .int, text: text, location: start))
                index = end
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                let shown = byte < 0x20 ? "\\u" + String(repeating: "0", count: 4 - hex.count) + hex : String(decoding: [byte], as: UTF8.self)
                throw .syntax("Unexpected character \"\(shown)\"", at: location(index))
            }
            guard tokens.count <= maxTokens else {
                throw GraphQLError("the document has more than \(maxTokens) tokens", code: "MB725")
            }
        }
        tokens.append(Token(kind: .end, text: "<EOF>", location: location(bytes.count)))
        return tokens
    }

    static func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, not followed by a name start or `.`.
    static func number(_ bytes: [UInt8], from start: Int, start location: SourceLocation) throws(GraphQLError) -> (String, Bool, Int) {
        var index = start
        var isFloat = false
        if bytes[index] == 0x2D { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw .syntax("Invalid number", at: location) }
        if bytes[index] == 0x30 {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) { throw .syntax("Invalid number, unexpected digit after 0", at: location) }
        } else {
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && bytes[index] == 0x2E {
            isFloat = true
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw .syntax("Invalid number, expected digit after \".\"", at: location) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (bytes[index] == 0x65 || bytes[index] == 0x45) {
            isFloat = true
            index += 1
            if index < bytes.count && (bytes[index] == 0x2B || bytes[index] == 0x2D) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw .syntax("Invalid number, expected digit in the exponent", at: location) }
            while index < bytes.count && isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count && (isNameStart(bytes[index]) || bytes[index] == 0x2E) {
            throw .syntax("Invalid number, unexpected character after it", at: location)
        }
        return (String(decoding: bytes[start..<index], as: UTF8.self), isFloat, index)
    }

    /// A `"…"` string with its escapes decoded; ends at the closing quote.
    static func string(_ bytes: [UInt8], from start: Int, start location: SourceLocation) throws(GraphQLError) -> (String, Int) {
        var out: [UInt8] = []
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x22:
                return (String(decoding: out, as: UTF8.self), index + 1)
            case 0x0A, 0x0D:
                throw .syntax("Unterminated string", at: location)
            case 0x5C:
                guard index + 1 < bytes.count else { throw .syntax("Unterminated string", at: location) }
                let escaped = bytes[index + 1]
                index += 2
                switch escaped {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x2F: out.append(0x2F)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    var scalar = try hex4(bytes, at: index, location)
                    index += 4
                    // A surrogate pair spells one scalar beyond the BMP.
                    if (0xD800...0xDBFF).contains(scalar), index + 5 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == 0x75 {
                        let low = try hex4(bytes, at: index + 2, location)
                        if (0xDC00...0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            index += 6
                        }
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw .syntax("Invalid Unicode escape sequence", at: location) }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default:
                    throw .syntax("Invalid character escape sequence", at: location)
                }
            default:
                if byte < 0x20 && byte != 0x09 { throw .syntax("Invalid character within String", at: location) }
                out.append(byte)
                index += 1
            }
        }
        throw .syntax("Unterminated string", at: location)
    }

    static func hex4(_ bytes: [UInt8], at index: Int, _ location: SourceLocation) throws(GraphQLError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .syntax("Invalid Unicode escape sequence", at: location) }
        var value: UInt32 = 0
        for byte in bytes[index..<(index + 4)] {
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw .syntax("Invalid Unicode escape sequence", at: location)
            }
            value = value << 4 | digit
        }
        return value
    }

    /// A `"""…"""` block string, its common indentation removed as the spec says.
    static func blockString(_ bytes: [UInt8], from start: Int, start location: SourceLocation) throws(GraphQLError) -> (String, Int, Int, Int) {
        var raw: [UInt8] = []
        var index = start
        var lines = 0
        var lastLineStart = 0
        while index < bytes.count {
            if index + 2 < bytes.count && bytes[index] == 0x22 && bytes[index + 1] == 0x22 && bytes[index + 2] == 0x22 {
                return (dedent(String(decoding: raw, as: UTF8.self)), index + 3, lines, lastLineStart)
            }
            if index + 3 < bytes.count && bytes[index] == 0x5C && bytes[index + 1] == 0x22 && bytes[index + 2] == 0x22 && bytes[index + 3] == 0x22 {
                raw += [0x22, 0x22, 0x22]
                index += 4
                continue
            }
            let byte = bytes[index]
            if byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D { throw .syntax("Invalid character within String", at: location) }
            if byte == 0x0A {
                lines += 1
                lastLineStart = index + 1
            }
            raw.append(byte)
            index += 1
        }
        throw .syntax("Unterminated string", at: location)
    }

    static func dedent(_ raw: String) -> String {
        var lines = raw.replacingOccurrences("\r\n", "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var common: Int?
        for line in lines.dropFirst() {
            let indent = line.prefix { $0 == " " || $0 == "\t" }.count
            if indent < line.count { common = min(common ?? indent, indent) }
        }
        if let common {
            for index in lines.indices.dropFirst() { lines[index] = String(lines[index].dropFirst(common)) }
        }
        while let first = lines.first, first.allSatisfy({ $0 == " " || $0 == "\t" }) { lines.removeFirst() }
        while let last = lines.last, last.allSatisfy({ $0 == " " || $0 == "\t" }) { lines.removeLast() }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
