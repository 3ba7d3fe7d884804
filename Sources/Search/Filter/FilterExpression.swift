import Foundation
import Runtime

/// A parsed Meilisearch filter: conditions on attributes joined by AND, OR and NOT.
public indirect enum FilterExpression: Sendable, Equatable {
    public enum Comparison: String, Sendable { case eq = "=", ne = "!=", gt = ">", gte = ">=", lt = "<", lte = "<=" }

    case compare(attribute: String, Comparison, FilterValue)
    case range(attribute: String, FilterValue, FilterValue)
    case oneOf(attribute: String, [FilterValue])
    case exists(attribute: String)
    case isNull(attribute: String)
    case isEmpty(attribute: String)
    case not(FilterExpression)
    case and([FilterExpression])
    case or([FilterExpression])

    /// Every attribute the filter reads (checked against the filterable and readable ones).
    public var attributes: [String] {
        switch self {
        case .compare(let attribute, _, _), .range(let attribute, _, _), .oneOf(let attribute, _), .exists(let attribute),
            .isNull(let attribute), .isEmpty(let attribute):
            return [attribute]
        case .not(let inner): return inner.attributes
        case .and(let parts), .or(let parts): return parts.flatMap(\.attributes)
        }
    }

    /// Whether `document` passes.
    public func matches(_ document: JSONObject) -> Bool { matches { document[$0] } }

    /// Whether the document whose top-level fields `field` reads passes. Array values pass when
    /// any element does; `!=` and `NOT` pass documents without the attribute, as Meilisearch's do.
    public func matches(_ field: (String) -> JSONValue?) -> Bool {
        switch self {
        case .compare(let attribute, let comparison, let value):
            let found = FilterExpression.values(at: attribute, field)
            if comparison == .ne { return !found.contains { value.equals($0) } }
            return found.contains { candidate in
                switch comparison {
                case .eq: return value.equals(candidate)
                case .ne: return false
                case .gt: return value.compare(candidate).map { $0 > 0 } ?? false
                case .gte: return value.compare(candidate).map { $0 >= 0 } ?? false
                case .lt: return value.compare(candidate).map { $0 < 0 } ?? false
                case .lte: return value.compare(candidate).map { $0 <= 0 } ?? false
                }
            }
        case .range(let attribute, let low, let high):
            return FilterExpression.values(at: attribute, field).contains { candidate in
                (low.compare(candidate).map { $0 >= 0 } ?? false) && (high.compare(candidate).map { $0 <= 0 } ?? false)
            }
        case .oneOf(let attribute, let options):
            let found = FilterExpression.values(at: attribute, field)
            return found.contains { candidate in options.contains { $0.equals(candidate) } }
        case .exists(let attribute):
            return FilterExpression.lookup(attribute, field) != nil
        case .isNull(let attribute):
            return FilterExpression.lookup(attribute, field) == .null
        case .isEmpty(let attribute):
            switch FilterExpression.lookup(attribute, field) {
            case .string(let text)?: return text.isEmpty
            case .array(let items)?: return items.isEmpty
            case .object(let object)?: return object.isEmpty
            default: return false
            }
        case .not(let inner): return !inner.matches(field)
        case .and(let parts): return parts.allSatisfy { $0.matches(field) }
        case .or(let parts): return parts.contains { $0.matches(field) }
        }
    }

    /// The value at a dotted path (`author.name`), whole keys first: a key may contain a dot.
    public static func lookup(_ path: String, in document: JSONObject) -> JSONValue? { lookup(path) { document[$0] } }

    /// The same over a document read field by field.
    public static func lookup(_ path: String, _ field: (String) -> JSONValue?) -> JSONValue? {
        if let direct = field(path) { return direct }
        guard let dot = path.firstIndex(of: ".") else { return nil }
        var prefix = String(path[..<dot])
        var rest = String(path[path.index(after: dot)...])
        while true {
            if case .object(let inner)? = field(prefix), let found = lookup(rest, in: inner) { return found }
            guard let next = rest.firstIndex(of: ".") else { return nil }
            prefix += "." + rest[..<next]
            rest = String(rest[rest.index(after: next)...])
        }
    }

    /// The scalar values at a path; arrays give their elements.
    static func values(at path: String, _ field: (String) -> JSONValue?) -> [JSONValue] {
        guard let value = lookup(path, field) else { return [] }
        if case .array(let items) = value { return items }
        return [value]
    }
}

/// A value written in a filter: its text, and its number when it reads as one.
public struct FilterValue: Sendable, Equatable {
    public let text: String
    public let number: Double?
    let folded: String

    public init(_ text: String) {
        self.text = text
        self.number = Double(text.trimmingCharacters(in: .whitespaces)).flatMap { $0.isFinite ? $0 : nil }
        self.folded = TextNormalizer.fold(text)
    }

    /// Numbers by value, everything else as case- and accent-insensitive text.
    func equals(_ candidate: JSONValue) -> Bool {
        switch candidate {
        case .integer, .number:
            guard let number, let other = candidate.doubleValue else { return false }
            return number == other
        case .string(let text): return TextNormalizer.fold(text) == folded
        case .bool(let flag): return folded == (flag ? "true" : "false")
        default: return false
        }
    }

    /// The candidate's order relative to this value (negative: smaller): numbers with numbers,
    /// text with text; nil when the two cannot be compared.
    func compare(_ candidate: JSONValue) -> Int? {
        switch candidate {
        case .integer, .number:
            guard let number, let other = candidate.doubleValue else { return nil }
            return other < number ? -1 : other > number ? 1 : 0
        case .string(let text):
            if let number, let other = Double(text) { return other < number ? -1 : other > number ? 1 : 0 }
            guard number == nil else { return nil }
            let other = TextNormalizer.fold(text)
            return other < folded ? -1 : other > folded ? 1 : 0
        default: return nil
        }
    }
}
