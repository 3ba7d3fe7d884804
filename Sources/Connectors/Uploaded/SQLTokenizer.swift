/// PostgreSQL's lexical structure, enough for schema files: bare identifiers (folded to lower
/// case), quoted identifiers (kept as written, `""` unescaped), string constants (`'…'`, `E'…'`,
/// dollar-quoted), numbers, operators and punctuation; `--` and nested `/* */` comments dropped.
/// Every token keeps its line, column and its span of the source, so errors point at the input and
/// expressions (defaults, checks) can be kept as written.
struct SQLToken: Equatable, Sendable {
    enum Kind: Equatable, Sendable { case word, quoted, string, number, symbol }
    var kind: Kind
    /// Words lower-cased; quoted identifiers and strings unescaped; symbols as written.
    var text: String
    var line: Int
    var column: Int
    /// UTF-8 offsets of the token in the source.
    var start: Int
    var end: Int

    func isWord(_ word: String) -> Bool { kind == .word && text == word }
    func isSymbol(_ symbol: String) -> Bool { kind == .symbol && text == symbol }
}

struct SQLSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    var message: String
    var line: Int
    var column: Int
    var description: String { "line \(line), column \(column): \(message)" }
}

enum SQLTokenizer {
    static let maxBytes = 16 << 20

    static func tokenize(_ source: String) throws(SQLSyntaxError) -> [SQLToken] {
        let bytes = Array(source.utf8)
        guard bytes.count <= maxBytes else { throw SQLSyntaxError(message: "the document is larger than \(maxBytes >> 20) MiB", line: 1, column: 1) }
        // NUL cannot be stored in PostgreSQL text, so none may hide in a string or a name either.
        if let nul = bytes.firstIndex(of: 0) {
            let before = bytes[..<nul]
            let line = before.filter { $0 == 0x0A }.count + 1
            let column = nul - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            throw SQLSyntaxError(message: "NUL byte in the document", line: line, column: column)
        }
        var tokens: [SQLToken] = []
        var index = 0
        var line = 1
        var lineStart = 0

        func error(_ message: String, at offset: Int) -> SQLSyntaxError {
            SQLSyntaxError(message: message, line: line, column: offset - lineStart + 1)
        }
        func advanceLines(from: Int, to: Int) {
            var i = from
            while i < to {
                if bytes[i] == 0x0A {
                    line += 1
                    lineStart = i + 1
                }
                i += 1
            }
        }
        func text(_ from: Int, _ to: Int) -> String { String(decoding: bytes[from..<to], as: UTF8.self) }
        func isIdentStart(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || b >= 0x80 }
        func isIdentPart(_ b: UInt8) -> Bool { isIdentStart(b) || (b >= 0x30 && b <= 0x39) || b == 0x24 }

        while index < bytes.count {
            let byte = bytes[index]
            let startLine = line
            let startColumn = index - lineStart + 1
            if byte == 0x0A || byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0C {
                advanceLines(from: index, to: index + 1)
                index += 1
                continue
            }
            if byte == 0 { throw error("NUL byte in the document", at: index) }
            // psql meta-commands (`\restrict` in recent pg_dump output, `\connect` …) fill their line.
            if byte == 0x5C {
                while index < bytes.count && bytes[index] != 0x0A { index += 1 }
                continue
            }
            // -- comment
            if byte == 0x2D, index + 1 < bytes.count, bytes[index + 1] == 0x2D {
                while index < bytes.count && bytes[index] != 0x0A { index += 1 }
                continue
            }
            // /* nested */ comment
            if byte == 0x2F, index + 1 < bytes.count, bytes[index + 1] == 0x2A {
                var depth = 0
                var i = index
                while i < bytes.count {
                    if bytes[i] == 0x2F, i + 1 < bytes.count, bytes[i + 1] == 0x2A { depth += 1; i += 2; continue }
                    if bytes[i] == 0x2A, i + 1 < bytes.count, bytes[i + 1] == 0x2F {
                        depth -= 1
                        i += 2
                        if depth == 0 { break }
                        continue
                    }
                    i += 1
                }
                guard depth == 0 else { throw error("unterminated /* comment", at: index) }
                advanceLines(from: index, to: i)
                index = i
                continue
            }
            // Strings: '…', E'…' (backslash escapes), with '' for a quote.
            var escapeString = false
            var stringStart = index
            if (byte == 0x45 || byte == 0x65), index + 1 < bytes.count, bytes[index + 1] == 0x27 {
                escapeString = true
                stringStart = index + 1
            }
            if bytes[stringStart] == 0x27 {
                var value: [UInt8] = []
                var i = stringStart + 1
                var closed = false
                while i < bytes.count {
                    let b = bytes[i]
                    if escapeString && b == 0x5C, i + 1 < bytes.count {
                        value.append(bytes[i + 1])
                        i += 2
                        continue
                    }
                    if b == 0x27 {
                        if i + 1 < bytes.count && bytes[i + 1] == 0x27 {
                            value.append(0x27)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    value.append(b)
                    i += 1
                }
                guard closed else { throw error("unterminated string constant", at: index) }
                tokens.append(SQLToken(kind: .string, text: String(decoding: value, as: UTF8.self), line: startLine, column: startColumn, start: index, end: i))
                advanceLines(from: index, to: i)
                index = i
                continue
            }
            // "quoted identifier"
            if byte == 0x22 {
                var value: [UInt8] = []
                var i = index + 1
                var closed = false
                while i < bytes.count {
                    if bytes[i] == 0x22 {
                        if i + 1 < bytes.count && bytes[i + 1] == 0x22 {
                            value.append(0x22)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    value.append(bytes[i])
                    i += 1
                }
                guard closed else { throw error("unterminated quoted identifier", at: index) }
                guard !value.isEmpty else { throw error("zero-length quoted identifier", at: index) }
                tokens.append(SQLToken(kind: .quoted, text: String(decoding: value, as: UTF8.self), line: startLine, column: startColumn, start: index, end: i))
                advanceLines(from: index, to: i)
                index = i
                continue
            }
            // $tag$ … $tag$
            if byte == 0x24 {
                var i = index + 1
                while i < bytes.count && bytes[i] != 0x24 && isIdentPart(bytes[i]) { i += 1 }
                if i < bytes.count && bytes[i] == 0x24 {
                    let tag = Array(bytes[index...i])
                    var j = i + 1
                    var found = -1
                    while j + tag.count <= bytes.count {
                        if bytes[j] == 0x24 && Array(bytes[j..<(j + tag.count)]) == tag { found = j; break }
                        j += 1
                    }
                    guard found >= 0 else { throw error("unterminated dollar-quoted string", at: index) }
                    let end = found + tag.count
                    tokens.append(SQLToken(kind: .string, text: text(i + 1, found), line: startLine, column: startColumn, start: index, end: end))
                    advanceLines(from: index, to: end)
                    index = end
                    continue
                }
            }
            if isIdentStart(byte) {
                var i = index + 1
                while i < bytes.count && isIdentPart(bytes[i]) { i += 1 }
                tokens.append(SQLToken(kind: .word, text: text(index, i).lowercased(), line: startLine, column: startColumn, start: index, end: i))
                index = i
                continue
            }
            if byte >= 0x30 && byte <= 0x39 || (byte == 0x2E && index + 1 < bytes.count && bytes[index + 1] >= 0x30 && bytes[index + 1] <= 0x39) {
                var i = index + 1
                while i < bytes.count && ((bytes[i] >= 0x30 && bytes[i] <= 0x39) || bytes[i] == 0x2E || bytes[i] == 0x65 || bytes[i] == 0x45
                    || ((bytes[i] == 0x2B || bytes[i] == 0x2D) && (bytes[i - 1] == 0x65 || bytes[i - 1] == 0x45)))
                {
                    i += 1
                }
                tokens.append(SQLToken(kind: .number, text: text(index, i), line: startLine, column: startColumn, start: index, end: i))
                index = i
                continue
            }
            // Two-character symbols the schema grammar cares about; everything else is one byte.
            let pairs = ["::", "<=", ">=", "<>", "!=", "||", "->", "=>"]
            if index + 1 < bytes.count, pairs.contains(text(index, index + 2)) {
                tokens.append(SQLToken(kind: .symbol, text: text(index, index + 2), line: startLine, column: startColumn, start: index, end: index + 2))
                index += 2
                continue
            }
            guard byte < 0x80 else { throw error("unexpected character", at: index) }
            tokens.append(SQLToken(kind: .symbol, text: text(index, index + 1), line: startLine, column: startColumn, start: index, end: index + 1))
            index += 1
        }
        return tokens
    }
}
