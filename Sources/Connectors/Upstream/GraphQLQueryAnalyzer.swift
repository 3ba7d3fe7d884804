/// Reads a GraphQL request document far enough to bound what it asks of an upstream: the selected
/// operation's root fields, its depth (fragments expanded) and its cost (fields selected, lists
/// multiplied by their `first`/`limit`/`last` argument or 10). Nothing is forwarded that is too deep,
/// too costly, or not valid GraphQL at the lexical and bracket level.
public struct GraphQLQueryAnalyzer: Sendable {
    public struct Limits: Sendable {
        public var maxDepth = 10
        public var maxCost = 1_000
        public var maxBytes = 64 * 1024
        public init() {}
    }

    public struct Analysis: Sendable, Equatable {
        public var operation: String  // query | mutation | subscription
        public var rootFields: [String]
        public var depth: Int
        public var cost: Int
    }

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    enum Token: Equatable {
        case name(String), punctuator(String), value
    }

    private struct Selection {
        var field: String?
        var fragment: String?
        var multiplier: Int
        var children: [Selection]
    }

    public static func analyze(_ document: String, operationName: String?, limits: Limits = Limits()) throws(Refusal) -> Analysis {
        guard document.utf8.count <= limits.maxBytes else { throw Refusal(message: "the query is larger than \(limits.maxBytes) bytes") }
        var tokens = try tokenize(document)
        var index = 0
        var operations: [(kind: String, name: String?, selections: [Selection])] = []
        var fragments: [String: [Selection]] = [:]
        // End markers: lookahead of a few tokens never runs off the array.
        tokens += Array(repeating: .punctuator("<end>"), count: 4)

        func expect(_ punctuator: String) throws(Refusal) {
            guard tokens[index] == .punctuator(punctuator) else { throw Refusal(message: "expected '\(punctuator)' in the query") }
            index += 1
        }
        // Skips `( … )` or `[ … ]` groups (arguments, variable definitions) and reads a limit argument.
        func skipGroup(_ open: String, _ close: String) throws(Refusal) -> Int? {
            var depth = 0
            var limit: Int?
            repeat {
                switch tokens[index] {
                case .punctuator(open): depth += 1
                case .punctuator(close): depth -= 1
                case .punctuator("<end>"): throw Refusal(message: "unbalanced '\(open)' in the query")
                case .name(let name) where ["first", "last", "limit"].contains(name):
                    if index + 2 < tokens.count, tokens[index + 1] == .punctuator(":"), case .name(let digits) = tokens[index + 2], let number = Int(digits) {
                        limit = number
                    }
                default: break
                }
                index += 1
            } while depth > 0
            return limit
        }
        func skipDirectives() throws(Refusal) {
            while tokens[index] == .punctuator("@") {
                index += 2
                if tokens[index] == .punctuator("(") { _ = try skipGroup("(", ")") }
            }
        }
        func selectionSet(depth: Int) throws(Refusal) -> [Selection] {
            guard depth <= 64 else { throw Refusal(message: "the query nests deeper than 64 levels") }
            try expect("{")
            var selections: [Selection] = []
            while tokens[index] != .punctuator("}") {
                if tokens[index] == .punctuator("...") {
                    index += 1
                    if case .name(let name) = tokens[index], name != "on" {
                        index += 1
                        try skipDirectives()
                        selections.append(Selection(field: nil, fragment: name, multiplier: 1, children: []))
                    } else {
                        if tokens[index] == .name("on") { index += 2 }
                        try skipDirectives()
                        selections.append(Selection(field: nil, fragment: nil, multiplier: 1, children: try selectionSet(depth: depth + 1)))
                    }
                    continue
                }
                guard case .name(var field) = tokens[index] else { throw Refusal(message: "expected a field name in the query") }
                index += 1
                if tokens[index] == .punctuator(":") {
                    index += 1
                    guard case .name(let real) = tokens[index] else { throw Refusal(message: "expected a field name after an alias") }
                    field = real
                    index += 1
                }
                var multiplier = 1
                if tokens[index] == .punctuator("(") { multiplier = try skipGroup("(", ")") ?? 1 }
                try skipDirectives()
                var children: [Selection] = []
                if tokens[index] == .punctuator("{") {
                    children = try selectionSet(depth: depth + 1)
                }
                selections.append(Selection(field: field, fragment: nil, multiplier: max(1, min(multiplier, 1_000)), children: children))
            }
            index += 1
            return selections
        }

        while tokens[index] != .punctuator("<end>") {
            switch tokens[index] {
            case .punctuator("{"):
                operations.append(("query", nil, try selectionSet(depth: 1)))
            case .name(let keyword) where ["query", "mutation", "subscription"].contains(keyword):
                index += 1
                var name: String?
                if case .name(let given) = tokens[index] {
                    name = given
                    index += 1
                }
                if tokens[index] == .punctuator("(") { _ = try skipGroup("(", ")") }
                try skipDirectives()
                operations.append((keyword, name, try selectionSet(depth: 1)))
            case .name("fragment"):
                index += 1
                guard case .name(let name) = tokens[index], tokens[index + 1] == .name("on") else { throw Refusal(message: "a fragment needs a name and a type condition") }
                index += 3
                try skipDirectives()
                fragments[name] = try selectionSet(depth: 1)
            default:
                throw Refusal(message: "expected an operation or a fragment in the query")
            }
        }
        let chosen: (kind: String, name: String?, selections: [Selection])
        if let operationName {
            guard let found = operations.first(where: { $0.name == operationName }) else { throw Refusal(message: "no operation named \(operationName)") }
            chosen = found
        } else {
            guard operations.count == 1 else { throw Refusal(message: "the query has \(operations.count) operations; name one with operationName") }
            chosen = operations[0]
        }

        // Depth and cost with fragments expanded; a fragment that reaches itself is refused.
        func measure(_ selections: [Selection], depth: Int, visiting: Set<String>) throws(Refusal) -> (depth: Int, cost: Int) {
            var deepest = depth
            var cost = 0
            for selection in selections {
                if let name = selection.fragment {
                    guard !visiting.contains(name) else { throw Refusal(message: "fragment \(name) spreads itself") }
                    guard let body = fragments[name] else { throw Refusal(message: "unknown fragment \(name)") }
                    let inner = try measure(body, depth: depth, visiting: visiting.union([name]))
                    deepest = max(deepest, inner.depth)
                    cost += inner.cost
                } else if selection.field == nil {
                    let inner = try measure(selection.children, depth: depth, visiting: visiting)
                    deepest = max(deepest, inner.depth)
                    cost += inner.cost
                } else {
                    let inner = try measure(selection.children, depth: depth + 1, visiting: visiting)
                    deepest = max(deepest, selection.children.isEmpty ? depth : inner.depth)
                    cost += 1 + selection.multiplier * inner.cost
                }
                guard cost <= limits.maxCost * 1_000 else { throw Refusal(message: "the query costs more than \(limits.maxCost)") }
            }
            return (deepest, cost)
        }
        let (depth, cost) = try measure(chosen.selections, depth: 1, visiting: [])
        guard depth <= limits.maxDepth else { throw Refusal(message: "the query is \(depth) levels deep; the limit is \(limits.maxDepth)") }
        guard cost <= limits.maxCost else { throw Refusal(message: "the query costs \(cost); the limit is \(limits.maxCost)") }
        let roots = chosen.selections.compactMap(\.field)
        return Analysis(operation: chosen.kind, rootFields: roots, depth: depth, cost: cost)
    }

    /// GraphQL's lexical tokens; values (strings, block strings) collapse to `.value`, numbers are names.
    static func tokenize(_ text: String) throws(Refusal) -> [Token] {
        let bytes = Array(text.utf8)
        var tokens: [Token] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D, 0x2C, 0xEF, 0xBB, 0xBF: index += 1
            case 0x23: while index < bytes.count && bytes[index] != 0x0A { index += 1 }
            case 0x22:
                if index + 2 < bytes.count, bytes[index + 1] == 0x22, bytes[index + 2] == 0x22 {
                    var i = index + 3
                    while i + 2 < bytes.count && !(bytes[i] == 0x22 && bytes[i + 1] == 0x22 && bytes[i + 2] == 0x22) { i += 1 }
                    guard i + 2 < bytes.count else { throw Refusal(message: "unterminated block string in the query") }
                    index = i + 3
                } else {
                    var i = index + 1
                    while i < bytes.count && bytes[i] != 0x22 && bytes[i] != 0x0A { i += bytes[i] == 0x5C ? 2 : 1 }
                    guard i < bytes.count, bytes[i] == 0x22 else { throw Refusal(message: "unterminated string in the query") }
                    index = i + 1
                }
                tokens.append(.value)
            case 0x2E:
                guard index + 2 < bytes.count, bytes[index + 1] == 0x2E, bytes[index + 2] == 0x2E else { throw Refusal(message: "unexpected '.' in the query") }
                tokens.append(.punctuator("..."))
                index += 3
            default:
                if (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D {
                    var i = index + 1
                    while i < bytes.count, (bytes[i] >= 0x61 && bytes[i] <= 0x7A) || (bytes[i] >= 0x41 && bytes[i] <= 0x5A) || bytes[i] == 0x5F
                        || (bytes[i] >= 0x30 && bytes[i] <= 0x39) || bytes[i] == 0x2E || bytes[i] == 0x2B || bytes[i] == 0x2D
                    {
                        i += 1
                    }
                    tokens.append(.name(String(decoding: bytes[index..<i], as: UTF8.self)))
                    index = i
                } else if "!$&()[]{}:=@|".utf8.contains(byte) {
                    tokens.append(.punctuator(String(UnicodeScalar(byte))))
                    index += 1
                } else {
                    throw Refusal(message: "unexpected character in the query")
                }
            }
            guard tokens.count <= 100_000 else { throw Refusal(message: "the query has too many tokens") }
        }
        return tokens
    }
}
