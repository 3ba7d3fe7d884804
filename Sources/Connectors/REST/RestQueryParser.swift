/// Parses PostgREST's URL grammar into a `RestQuery`. Bounded everywhere (nesting depth, list
/// sizes) so that hostile input gets a PGRST100, never a crash or a hang.
public struct RestQueryParser: Sendable {
    public static let maxDepth = 16
    public static let reserved: Set<String> = ["select", "order", "limit", "offset", "on_conflict", "columns", "or", "and", "not.or", "not.and"]
    static let selects = ParsedSelectCache()

    /// `argumentNames`: for RPC, the parameters that are the function's arguments, not filters.
    public static func parse(_ items: [(String, String)], argumentNames: Set<String> = []) throws(RestError) -> RestQuery {
        var query = RestQuery()
        for (key, value) in items {
            guard !key.utf8.contains(0), !value.utf8.contains(0) else { throw .parse("NUL bytes are not allowed in the query string") }
            if argumentNames.contains(key) {
                query.arguments.append((key, value))
                continue
            }
            let (path, last) = split(key)
            switch last {
            case "select" where path.isEmpty:
                guard query.select == nil else { throw .parse("select given more than once") }
                query.select = try selects.items(for: value) { text throws(RestError) in try parseSelect(text, depth: 0) }
            case "order":
                query.order[path] = try parseOrder(value)
            case "limit":
                query.limit[path] = try nonNegative(value, "limit")
            case "offset":
                query.offset[path] = try nonNegative(value, "offset")
            case "on_conflict" where path.isEmpty:
                query.onConflict = try identifierList(value, "on_conflict")
            case "columns" where path.isEmpty:
                query.columns = try identifierList(value, "columns")
            case "or", "and":
                let negated = path.last == "not"
                let conditionPath = negated ? Array(path.dropLast()) : path
                let children = try parseLogicList(value, depth: 0)
                query.conditions[conditionPath, default: []].append(last == "or" ? .or(children, negated: negated) : .and(children, negated: negated))
            default:
                let field = try parseField(last)
                query.conditions[path, default: []].append(.filter(try parseFilter(field: field, value)))
            }
        }
        return query
    }

    /// `books.authors.name` → (["books", "authors"], "name"); JSON arrows stay in the last part.
    static func split(_ key: String) -> ([String], String) {
        // Most keys are a plain column name (`id=eq.5`): no path, no arrow, nothing to split.
        if !key.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) { return ([], key) }
        let arrow = key.rangeOfBytes("->")
        let head = arrow.map { String(key[..<$0.lowerBound]) } ?? key
        let tail = arrow.map { String(key[$0.lowerBound...]) } ?? ""
        var parts = head.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // `not.or` / `not.and` keep "not" as a path marker for the caller.
        let last = (parts.popLast() ?? "") + tail
        return (parts, last)
    }

    static func nonNegative(_ value: String, _ name: String) throws(RestError) -> Int {
        guard let number = Int(value), number >= 0 else { throw .parse("\(name) must be a non-negative integer", details: value) }
        return number
    }

    static func identifierList(_ value: String, _ name: String) throws(RestError) -> [String] {
        let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty }) else { throw .parse("\(name) must list column names") }
        return names.map { $0.hasPrefix("\"") && $0.hasSuffix("\"") && $0.count >= 2 ? String($0.dropFirst().dropLast()) : $0 }
    }

    // MARK: - Fields

    static func parseField(_ text: String) throws(RestError) -> Field {
        var rest = Substring(text)
        guard let first = rest.rangeOfBytes("->") else {
            guard !text.isEmpty else { throw .parse("empty column name") }
            return Field(name: unquote(text), path: [])
        }
        let name = String(rest[..<first.lowerBound])
        guard !name.isEmpty else { throw .parse("empty column name", details: text) }
        rest = rest[first.lowerBound...]
        var path: [Field.PathStep] = []
        while !rest.isEmpty {
            // In bytes, like the search for the arrow: a combining mark after `>` must not fuse
            // with it into one Character.
            let isText = rest.utf8.starts(with: "->>".utf8)
            guard isText || rest.utf8.starts(with: "->".utf8) else { throw .parse("invalid JSON path", details: text) }
            rest = rest[rest.utf8.index(rest.startIndex, offsetBy: isText ? 3 : 2)...]
            let end = rest.rangeOfBytes("->")?.lowerBound ?? rest.endIndex
            let key = String(rest[..<end])
            guard !key.isEmpty else { throw .parse("empty key in JSON path", details: text) }
            path.append(isText ? .text(unquote(key)) : .json(unquote(key)))
            rest = rest[end...]
            if path.count > 32 { throw .parse("JSON path too long", details: text) }
        }
        return Field(name: unquote(name), path: path)
    }

    static func unquote(_ text: String) -> String {
        text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
    }

    // MARK: - Filters

    static func parseFilter(field: Field, _ text: String) throws(RestError) -> Filter {
        // In bytes: the operator and its dot are ASCII, and a combining mark after the dot must
        // stay with the value rather than fuse with the dot into one Character.
        var rest = Substring(text)
        var negated = false
        if rest.utf8.starts(with: "not.".utf8) {
            negated = true
            rest = rest[rest.utf8.index(rest.startIndex, offsetBy: 4)...]
        }
        guard let dot = rest.utf8.firstIndex(of: UInt8(ascii: ".")) else {
            throw .parse("\"failed to parse filter (\(text))\"", details: "expected operator.value")
        }
        var opText = String(rest[..<dot])
        let value = String(rest[rest.utf8.index(after: dot)...])
        var quantifier: Filter.Quantifier?
        var language: String?
        if let open = opText.firstIndex(of: "("), opText.hasSuffix(")") {
            let modifier = String(opText[opText.index(after: open)..<opText.index(before: opText.endIndex)])
            opText = String(opText[..<open])
            if let q = Filter.Quantifier(rawValue: modifier) {
                quantifier = q
            } else if ["fts", "plfts", "phfts", "wfts"].contains(opText), !modifier.isEmpty,
                modifier.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
            {
                language = modifier
            } else {
                throw .parse("unknown operator modifier '\(modifier)'")
            }
        }
        guard let op = FilterOperator(rawValue: opText) else {
            throw .parse("unknown operator '\(opText)'", hint: "operators: " + FilterOperator.allCases.map(\.rawValue).joined(separator: " "))
        }
        if quantifier != nil {
            guard [.eq, .neq, .gt, .gte, .lt, .lte, .like, .ilike, .match, .imatch].contains(op) else {
                throw .parse("(any) and (all) apply to comparison and pattern operators only")
            }
            return Filter(field: field, negated: negated, op: op, quantifier: quantifier, language: nil, value: .list(try parseList(value, open: "{", close: "}")))
        }
        switch op {
        case .in:
            return Filter(field: field, negated: negated, op: op, quantifier: nil, language: nil, value: .list(try parseList(value, open: "(", close: ")")))
        case .is:
            guard ["null", "true", "false", "unknown", "not_null"].contains(value.lowercased()) else {
                throw .parse("is accepts null, not_null, true, false or unknown", details: value)
            }
            return Filter(field: field, negated: negated, op: op, quantifier: nil, language: nil, value: .scalar(value.lowercased()))
        default:
            return Filter(field: field, negated: negated, op: op, quantifier: nil, language: language, value: .scalar(value))
        }
    }

    /// `(a,"b,c",d)` or `{a,b}`: comma-separated, double quotes protect commas, backslash escapes.
    static func parseList(_ text: String, open: Character, close: Character) throws(RestError) -> [String] {
        guard text.first == open, text.last == close, text.count >= 2 else {
            throw .parse("expected a list in \(open)…\(close)", details: text)
        }
        let inner = text.dropFirst().dropLast()
        if inner.isEmpty { return [] }
        var items: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var escaping = false
        for character in inner {
            if escaping {
                current.append(character)
                escaping = false
            } else if character == "\\" && quoted {
                escaping = true
            } else if character == "\"" {
                quoted.toggle()
                wasQuoted = true
            } else if character == "," && !quoted {
                items.append(wasQuoted ? current : current.trimmingCharacters(in: .whitespaces))
                current = ""
                wasQuoted = false
            } else {
                current.append(character)
            }
        }
        guard !quoted else { throw .parse("unbalanced quotes in list", details: text) }
        items.append(wasQuoted ? current : current.trimmingCharacters(in: .whitespaces))
        if items.count > 100_000 { throw .parse("list has more than 100000 items") }
        return items
    }

    // MARK: - Logic trees

    /// `(a.eq.1,or(b.gt.2,c.is.null))` → conditions.
    static func parseLogicList(_ text: String, depth: Int) throws(RestError) -> [Condition] {
        guard depth < maxDepth else { throw .parse("logic tree nested deeper than \(maxDepth) levels") }
        guard text.hasPrefix("("), text.hasSuffix(")"), text.count >= 2 else {
            throw .parse("\"failed to parse logic tree (\(text.prefix(100)))\"", details: "expected (…)")
        }
        let parts = try splitTopLevel(String(text.dropFirst().dropLast()))
        var conditions: [Condition] = []
        for part in parts {
            var item = Substring(part)
            var negated = false
            if item.hasPrefix("not.and(") || item.hasPrefix("not.or(") {
                negated = true
                item = item.dropFirst(4)
            }
            if item.hasPrefix("and(") || item.hasPrefix("or(") {
                let isAnd = item.hasPrefix("and(")
                let children = try parseLogicList(String(item.dropFirst(isAnd ? 3 : 2)), depth: depth + 1)
                conditions.append(isAnd ? .and(children, negated: negated) : .or(children, negated: negated))
                continue
            }
            guard let dot = part.firstIndex(of: ".") else { throw .parse("\"failed to parse logic tree (\(part.prefix(100)))\"") }
            let field = try parseField(String(part[..<dot]))
            conditions.append(.filter(try parseFilter(field: field, String(part[part.index(after: dot)...]))))
        }
        guard !conditions.isEmpty else { throw .parse("empty logic tree") }
        return conditions
    }

    /// Splits on commas outside parentheses, braces and double quotes.
    static func splitTopLevel(_ text: String) throws(RestError) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        var escaping = false
        for character in text {
            if escaping {
                current.append(character)
                escaping = false
                continue
            }
            switch character {
            case "\\" where quoted:
                escaping = true
                current.append(character)
            case "\"":
                quoted.toggle()
                current.append(character)
            case "(" where !quoted, "{" where !quoted:
                depth += 1
                guard depth <= 64 else { throw .parse("nesting too deep") }
                current.append(character)
            case ")" where !quoted, "}" where !quoted:
                depth -= 1
                guard depth >= 0 else { throw .parse("unbalanced parentheses") }
                current.append(character)
            case "," where !quoted && depth == 0:
                parts.append(current)
                current = ""
            default:
                current.append(character)
            }
        }
        guard depth == 0, !quoted else { throw .parse("unbalanced parentheses or quotes") }
        parts.append(current)
        return parts
    }

    // MARK: - Select

    static func parseSelect(_ text: String, depth: Int) throws(RestError) -> [SelectItem] {
        guard depth < maxDepth else { throw .parse("select nested deeper than \(maxDepth) levels") }
        var items: [SelectItem] = []
        for raw in try splitTopLevel(text) {
            let part = raw.trimmingCharacters(in: .whitespaces)
            guard !part.isEmpty else {
                if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                throw .parse("empty item in select", details: text)
            }
            if part == "*" {
                items.append(.star)
                continue
            }
            var alias: String?
            var body = Substring(part)
            // An alias is a plain name before ':' (not the '::' of a cast).
            if let colon = body.firstIndex(of: ":"), body[body.index(after: colon)...].first != ":",
                !body[..<colon].contains("("), !body[..<colon].contains("-")
            {
                alias = unquote(String(body[..<colon]))
                body = body[body.index(after: colon)...]
                guard !(alias ?? "").isEmpty else { throw .parse("empty alias in select") }
            }
            if let open = body.firstIndex(of: "(") {
                guard body.hasSuffix(")") else { throw .parse("unbalanced parentheses in select", details: part) }
                let head = body[..<open]
                let inner = String(body[body.index(after: open)..<body.index(before: body.endIndex)])
                var names = head.split(separator: "!", omittingEmptySubsequences: false).map(String.init)
                let relation = names.removeFirst()
                guard !relation.isEmpty else { throw .parse("empty relation name in select") }
                var inner_ = false
                var hint: String?
                for modifier in names {
                    switch modifier {
                    case "inner": inner_ = true
                    case "left": inner_ = false
                    case "": throw .parse("empty embedding hint", details: part)
                    default:
                        guard hint == nil else { throw .parse("more than one embedding hint", details: part) }
                        hint = modifier
                    }
                }
                items.append(.embed(Embed(
                    relation: unquote(relation), alias: alias, hint: hint, inner: inner_,
                    select: try parseSelect(inner, depth: depth + 1))))
                continue
            }
            var cast: String?
            if let castRange = body.rangeOfBytes("::") {
                let castText = String(body[castRange.upperBound...])
                // ASCII only, checked by scalar: a type name, optionally with spaces and [].
                guard let first = castText.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
                    castText.unicodeScalars.allSatisfy({ scalar in
                        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                            || scalar == "_" || scalar == " " || scalar == "[" || scalar == "]"
                    })
                else { throw .parse("invalid cast '\(castText)'") }
                cast = castText
                body = body[..<castRange.lowerBound]
            }
            items.append(.column(try parseField(String(body)), alias: alias, cast: cast))
        }
        return items
    }

    // MARK: - Order

    static func parseOrder(_ text: String) throws(RestError) -> [OrderTerm] {
        var terms: [OrderTerm] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            var pieces = part.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let fieldText = pieces.removeFirst()
            // A JSON path may hold dots only inside quotes; keep it simple and reject those.
            let field = try parseField(fieldText)
            var term = OrderTerm(field: field, descending: false, nulls: nil)
            for modifier in pieces {
                switch modifier {
                case "asc": term.descending = false
                case "desc": term.descending = true
                case "nullsfirst": term.nulls = .first
                case "nullslast": term.nulls = .last
                default: throw .parse("unknown order modifier '\(modifier)'", details: text)
                }
            }
            terms.append(term)
        }
        guard !terms.isEmpty else { throw .parse("empty order") }
        return terms
    }
}

extension RestError {
    static func parse(_ message: String, hint: String) -> RestError {
        RestError(status: 400, code: "PGRST100", message: message, hint: hint)
    }
}

import Foundation
