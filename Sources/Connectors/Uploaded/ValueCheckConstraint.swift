import Foundation

/// JSON Schema's validation keywords as a column's CHECK constraint, in PostgreSQL's or SQLite's
/// words. Numbers enter as numeric literals printed here, the pattern as a checked string
/// literal: nothing of the document is copied into the DDL as text.
extension ValueChecks {
    enum Dialect { case postgres, sqlite }

    /// The condition (nil when there is none) and the keywords this dialect cannot enforce.
    func condition(for column: String, dialect: Dialect) -> (sql: String?, unenforced: [String]) {
        let name = "\"" + column.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        var parts: [String] = []
        var unenforced: [String] = []
        if let minimum { parts.append("\(name) >= \(Self.number(minimum))") }
        if let maximum { parts.append("\(name) <= \(Self.number(maximum))") }
        if let exclusiveMinimum { parts.append("\(name) > \(Self.number(exclusiveMinimum))") }
        if let exclusiveMaximum { parts.append("\(name) < \(Self.number(exclusiveMaximum))") }
        let length = dialect == .postgres ? "char_length" : "length"
        if let minLength { parts.append("\(length)(\(name)) >= \(minLength)") }
        if let maxLength { parts.append("\(length)(\(name)) <= \(maxLength)") }
        if let pattern {
            if dialect == .postgres, !pattern.contains("\u{0}") {
                parts.append("\(name) ~ '" + pattern.replacingOccurrences(of: "'", with: "''") + "'")
            } else {
                unenforced.append("pattern")
            }
        }
        return (parts.isEmpty ? nil : parts.joined(separator: " AND "), unenforced)
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
