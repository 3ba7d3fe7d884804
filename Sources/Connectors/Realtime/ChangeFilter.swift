import Foundation
import Runtime

/// A `postgres_changes` filter — `column=op.value`, several joined by commas and AND-ed, each
/// optionally negated with `not.` — evaluated in process against a change's row.
public struct ChangeFilter: Sendable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq, neq, lt, lte, gt, gte, `in`, like, ilike, `is`, match, imatch, isdistinct
    }

    public struct Condition: Sendable {
        public var column: String
        public var negated: Bool
        public var op: Operator
        /// One value, or the list of `in.(a,b)`.
        public var values: [String]
        let pattern: NSRegularExpression?
    }

    public let conditions: [Condition]

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws(Invalid) {
        var conditions: [Condition] = []
        for part in Self.split(text) {
            guard let equals = part.firstIndex(of: "=") else { throw Invalid(description: "filter '\(part)' must look like column=op.value") }
            let column = String(part[..<equals]).trimmingCharacters(in: .whitespaces)
            guard !column.isEmpty else { throw Invalid(description: "filter '\(part)' names no column") }
            var rest = Substring(part[part.index(after: equals)...])
            var negated = false
            if rest.hasPrefix("not.") {
                negated = true
                rest = rest.dropFirst(4)
            }
            guard let dot = rest.firstIndex(of: "."), let op = Operator(rawValue: String(rest[..<dot])) else {
                throw Invalid(description: "filter '\(part)': unknown operator; use one of \(Operator.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let operand = String(rest[rest.index(after: dot)...])
            var values = [operand]
            if op == .in {
                guard operand.hasPrefix("("), operand.hasSuffix(")") else { throw Invalid(description: "filter '\(part)': in takes a list like in.(1,2)") }
                values = operand.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false).map {
                    Self.unquote($0.trimmingCharacters(in: .whitespaces))
                }
            } else {
                values = [Self.unquote(operand)]
            }
            if op == .is, !["null", "true", "false", "unknown"].contains(values[0].lowercased()) {
                throw Invalid(description: "filter '\(part)': is takes null, true, false or unknown")
            }
            var pattern: NSRegularExpression?
            switch op {
            case .like, .ilike:
                pattern = try Self.likePattern(values[0], caseInsensitive: op == .ilike)
            case .match, .imatch:
                // Patterns run in the hub for every change: short ones, without nested
                // quantifiers that backtrack exponentially.
                guard values[0].count <= 200, values[0].range(of: #"\)[*+{?]"#, options: .regularExpression) == nil
                    || values[0].range(of: #"\([^)]*[*+][^)]*\)"#, options: .regularExpression) == nil
                else { throw Invalid(description: "filter '\(part)': pattern too long or with nested quantifiers") }
                do {
                    pattern = try NSRegularExpression(pattern: values[0], options: op == .imatch ? [.caseInsensitive] : [])
                } catch {
                    throw Invalid(description: "filter '\(part)': not a regular expression")
                }
            default: break
            }
            conditions.append(Condition(column: column, negated: negated, op: op, values: values, pattern: pattern))
        }
        guard !conditions.isEmpty else { throw Invalid(description: "filter is empty") }
        self.conditions = conditions
    }

    public var columns: [String] { conditions.map(\.column) }

    /// Whether `row` passes every condition. A column the row lacks fails the condition.
    public func matches(_ row: JSONObject) -> Bool {
        conditions.allSatisfy { condition in
            let result = Self.evaluate(condition, row[condition.column] ?? .null)
            return condition.negated ? !result : result
        }
    }

    static func evaluate(_ condition: Condition, _ value: JSONValue) -> Bool {
        let operand = condition.values[0]
        switch condition.op {
        case .is:
            switch operand.lowercased() {
            case "null", "unknown": return value == .null
            case "true": return value == .bool(true)
            default: return value == .bool(false)
            }
        case .isdistinct:
            if operand.lowercased() == "null" { return value != .null }
            if value == .null { return true }
            return compare(value, operand) != .orderedSame
        case .eq: return value != .null && compare(value, operand) == .orderedSame
        case .neq: return value != .null && compare(value, operand).map { $0 != .orderedSame } ?? true
        case .lt: return compare(value, operand) == .orderedAscending
        case .lte: return [.orderedAscending, .orderedSame].contains(compare(value, operand))
        case .gt: return compare(value, operand) == .orderedDescending
        case .gte: return [.orderedDescending, .orderedSame].contains(compare(value, operand))
        case .in: return value != .null && condition.values.contains { compare(value, $0) == .orderedSame }
        case .like, .ilike, .match, .imatch:
            guard let text = text(value), text.utf8.count <= 100_000, let pattern = condition.pattern else { return false }
            let range = NSRange(text.startIndex..., in: text)
            if condition.op == .like || condition.op == .ilike {
                return pattern.firstMatch(in: text, options: [.anchored], range: range).map { $0.range == range } ?? false
            }
            return pattern.firstMatch(in: text, range: range) != nil
        }
    }

    /// Compares a row value with a filter operand, as the column's type would: numbers as
    /// numbers, booleans as booleans, everything else as text. Nil when they cannot be compared.
    static func compare(_ value: JSONValue, _ operand: String) -> ComparisonResult? {
        switch value {
        case .integer, .number:
            guard let left = value.doubleValue, let right = Double(operand) else { return nil }
            return left < right ? .orderedAscending : left > right ? .orderedDescending : .orderedSame
        case .bool(let flag):
            guard let right = Bool(operand.lowercased()) else { return nil }
            return flag == right ? .orderedSame : (flag ? .orderedDescending : .orderedAscending)
        case .string(let text):
            return text < operand ? .orderedAscending : text > operand ? .orderedDescending : .orderedSame
        case .null:
            return nil
        case .array, .object:
            let text = String(decoding: value.encoded(), as: UTF8.self)
            return text == operand ? .orderedSame : nil
        }
    }

    static func text(_ value: JSONValue) -> String? {
        switch value {
        case .string(let text): text
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .bool(let flag): String(flag)
        default: nil
        }
    }

    /// SQL LIKE (`%`, `_`, and PostgREST's `*`) as an anchored regular expression.
    static func likePattern(_ like: String, caseInsensitive: Bool) throws(Invalid) -> NSRegularExpression {
        var regex = "^"
        for character in like {
            switch character {
            case "%", "*": regex += ".*"
            case "_": regex += "."
            default: regex += NSRegularExpression.escapedPattern(for: String(character))
            }
        }
        regex += "$"
        do {
            return try NSRegularExpression(pattern: regex, options: caseInsensitive ? [.caseInsensitive, .dotMatchesLineSeparators] : [.dotMatchesLineSeparators])
        } catch {
            throw Invalid(description: "bad like pattern")
        }
    }

    /// Splits on commas outside parentheses and double quotes.
    static func split(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        for character in text {
            switch character {
            case "\"": quoted.toggle()
            case "(" where !quoted: depth += 1
            case ")" where !quoted: depth = max(depth - 1, 0)
            case "," where !quoted && depth == 0:
                parts.append(current)
                current = ""
                continue
            default: break
            }
            current.append(character)
        }
        parts.append(current)
        return parts.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    static func unquote(_ text: String) -> String {
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else { return text }
        return String(text.dropFirst().dropLast())
    }
}
