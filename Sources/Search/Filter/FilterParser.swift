import Runtime

/// Reads Meilisearch's filter syntax: `genre = horror AND (year >= 2000 OR rating 4 TO 5)`,
/// `id IN [1, 2]`, `tag NOT EXISTS`, `note IS NULL`, `list IS NOT EMPTY`, `NOT …`, values bare or
/// quoted with `'` or `"`. The array form nests: the outer array ANDs, an inner array ORs.
/// Errors name the position, as Meilisearch's do; depth and length are bounded.
public struct FilterParser {
    enum Token: Equatable {
        case word(String)
        case quoted(String)
        case symbol(String)
    }

    static let maxLength = 20_000
    static let maxDepth = 64

    private var tokens: [(token: Token, offset: Int)] = []
    private var index = 0
    private var depth = 0
    private let source: String

    init(_ source: String) throws(SearchError) {
        self.source = source
        guard source.utf8.count <= Self.maxLength else { throw SearchError.badFilter("The filter is longer than \(Self.maxLength) bytes.") }
        self.tokens = try Self.tokenize(source)
    }

    /// The filter of a search request: a string, an array (AND of strings or OR-arrays), or null.
    public static func parse(_ value: JSONValue?) throws(SearchError) -> FilterExpression? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?:
            if text.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            var parser = try FilterParser(text)
            return try parser.expression()
        case .array(let items)?:
            var parts: [FilterExpression] = []
            for item in items {
                switch item {
                case .string(let text):
                    if let part = try parse(.string(text)) { parts.append(part) }
                case .array(let alternatives):
                    var options: [FilterExpression] = []
                    for alternative in alternatives {
                        guard case .string(let text) = alternative else {
                            throw SearchError.badFilter("Invalid value type: expected a string inside the nested array, found \(alternative.typeName).")
                        }
                        if let option = try parse(.string(text)) { options.append(option) }
                    }
                    if !options.isEmpty { parts.append(options.count == 1 ? options[0] : .or(options)) }
                default:
                    throw SearchError.badFilter("Invalid value type: expected an array of strings or arrays of strings, found \(item.typeName).")
                }
            }
            return parts.isEmpty ? nil : parts.count == 1 ? parts[0] : .and(parts)
        case let other?:
            throw SearchError.badFilter("Invalid value type at `.filter`: expected an array or a string, but found \(other.typeName).")
        }
    }

    mutating func expression() throws(SearchError) -> FilterExpression {
        let result = try orExpression()
        if index < tokens.count { throw failure("Found unexpected characters at the end of the filter") }
        return result
    }

    private mutating func orExpression() throws(SearchError) -> FilterExpression {
        var parts = [try andExpression()]
        while keyword("OR") { parts.append(try andExpression()) }
        return parts.count == 1 ? parts[0] : .or(parts)
    }

    private mutating func andExpression() throws(SearchError) -> FilterExpression {
        var parts = [try notExpression()]
        while keyword("AND") { parts.append(try notExpression()) }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    private mutating func notExpression() throws(SearchError) -> FilterExpression {
        if keyword("NOT") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw failure("The filter is nested too deeply") }
            return .not(try notExpression())
        }
        return try primary()
    }

    private mutating func primary() throws(SearchError) -> FilterExpression {
        if symbol("(") {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw failure("The filter is nested too deeply") }
            let inner = try orExpression()
            guard symbol(")") else { throw failure("Expression `(` was not closed") }
            return inner
        }
        guard index < tokens.count else { throw failure("Was expecting a condition") }
        let attribute: String
        switch tokens[index].token {
        case .word(let word):
            if word.hasPrefix("_geo") {
                throw SearchError.badFilter("`\(word)` is not supported: documents of a mini-baas index have no geo field.")
            }
            attribute = word
        case .quoted(let text): attribute = text
        case .symbol: throw failure("Was expecting an attribute")
        }
        index += 1
        if let comparison = comparisonSymbol() {
            return .compare(attribute: attribute, comparison, try value())
        }
        if keyword("IN") { return .oneOf(attribute: attribute, try list()) }
        if keyword("EXISTS") { return .exists(attribute: attribute) }
        if keyword("IS") {
            let negated = keyword("NOT")
            let condition: FilterExpression
            if keyword("NULL") {
                condition = .isNull(attribute: attribute)
            } else if keyword("EMPTY") {
                condition = .isEmpty(attribute: attribute)
            } else {
                throw failure("Was expecting `NULL` or `EMPTY` after `IS`")
            }
            return negated ? .not(condition) : condition
        }
        if keyword("NOT") {
            if keyword("IN") { return .not(.oneOf(attribute: attribute, try list())) }
            if keyword("EXISTS") { return .not(.exists(attribute: attribute)) }
            throw failure("Was expecting `IN` or `EXISTS` after `NOT`")
        }
        // `attribute low TO high`.
        if index < tokens.count, case .symbol = tokens[index].token {} else if index < tokens.count {
            let low = try value()
            guard keyword("TO") else { throw failure(Self.expectingOperation) }
            return .range(attribute: attribute, low, try value())
        }
        throw failure(Self.expectingOperation)
    }

    static let expectingOperation =
        "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, `IS NOT EMPTY`"

    private mutating func list() throws(SearchError) -> [FilterValue] {
        guard symbol("[") else { throw failure("Was expecting `[` after `IN`") }
        var values: [FilterValue] = []
        if symbol("]") { return values }
        repeat {
            values.append(try value())
            guard values.count <= 10_000 else { throw failure("Too many values in `IN`") }
        } while symbol(",")
        guard symbol("]") else { throw failure("Expected matching `]` after the list") }
        return values
    }

    private mutating func value() throws(SearchError) -> FilterValue {
        guard index < tokens.count else { throw failure("Was expecting a value") }
        switch tokens[index].token {
        case .word(let word):
            index += 1
            return FilterValue(word)
        case .quoted(let text):
            index += 1
            return FilterValue(text)
        case .symbol: throw failure("Was expecting a value")
        }
    }

    private mutating func comparisonSymbol() -> FilterExpression.Comparison? {
        guard index < tokens.count, case .symbol(let text) = tokens[index].token, let comparison = FilterExpression.Comparison(rawValue: text) else {
            return nil
        }
        index += 1
        return comparison
    }

    private mutating func keyword(_ word: String) -> Bool {
        guard index < tokens.count, case .word(let text) = tokens[index].token, text.uppercased() == word else { return false }
        index += 1
        return true
    }

    private mutating func symbol(_ text: String) -> Bool {
        guard index < tokens.count, tokens[index].token == .symbol(text) else { return false }
        index += 1
        return true
    }

    private func failure(_ message: String) -> SearchError {
        let offset = index < tokens.count ? tokens[index].offset : source.count
        let rest = String(source.dropFirst(offset).prefix(40))
        return SearchError.badFilter("\(message) at `\(rest)`.\n1:\(offset + 1) \(source.prefix(200))")
    }

    static func tokenize(_ source: String) throws(SearchError) -> [(token: Token, offset: Int)] {
        let characters = Array(source)
        var tokens: [(token: Token, offset: Int)] = []
        var position = 0
        while position < characters.count {
            let character = characters[position]
            if character.isWhitespace {
                position += 1
                continue
            }
            let start = position
            switch character {
            case "(", ")", "[", "]", ",":
                tokens.append((.symbol(String(character)), start))
                position += 1
            case "=":
                tokens.append((.symbol("="), start))
                position += 1
            case "!", ">", "<":
                if position + 1 < characters.count, characters[position + 1] == "=" {
                    tokens.append((.symbol(String(character) + "="), start))
                    position += 2
                } else if character == "!" {
                    throw SearchError.badFilter("Found unexpected `!`: use `!=` or `NOT` at character \(start + 1).")
                } else {
                    tokens.append((.symbol(String(character)), start))
                    position += 1
                }
            case "'", "\"":
                var text = ""
                position += 1
                var closed = false
                while position < characters.count {
                    let next = characters[position]
                    if next == "\\", position + 1 < characters.count {
                        text.append(characters[position + 1])
                        position += 2
                        continue
                    }
                    if next == character {
                        closed = true
                        position += 1
                        break
                    }
                    text.append(next)
                    position += 1
                }
                guard closed else { throw SearchError.badFilter("Expression `\(character)` was not closed: the quote at character \(start + 1) has no end.") }
                tokens.append((.quoted(text), start))
            default:
                var word = ""
                while position < characters.count {
                    let next = characters[position]
                    if next.isWhitespace || "()[],=!<>'\"".contains(next) { break }
                    word.append(next)
                    position += 1
                }
                tokens.append((.word(word), start))
            }
            guard tokens.count <= 10_000 else { throw SearchError.badFilter("The filter has too many parts.") }
        }
        return tokens
    }
}
