import Foundation
import NIOCore
import Runtime
import SQLiteNIO

/// How a model column's values are stored in SQLite and read back as PostgREST writes them.
/// SQLite keeps few types, so every value is checked and normalised here, in Swift, before it is
/// bound: a wrong value is refused with PostgreSQL's own code (22P02, 22007) instead of being
/// stored as whatever SQLite makes of it, and stored values compare and sort as PostgreSQL's do
/// (timestamps in one canonical UTC text form, booleans as 0/1, JSON and arrays as JSON text).
public enum SQLiteValueCoder {
    // MARK: - Input

    /// A value from a URL (a filter operand, an RPC argument) for `column`.
    public static func bind(text: String, for column: Column?) throws(RestError) -> SQLiteData {
        guard let column else { return .text(text) }
        return try bind(text: text, type: column.type, column: column)
    }

    static func bind(text: String, type: PortableType, column: Column) throws(RestError) -> SQLiteData {
        switch type {
        case .integer, .bigint:
            // Foundation's trimming costs more than the rest of a key's bind: only when needed.
            guard let value = Int(text) ?? Int(text.trimmingCharacters(in: .whitespaces)) else { throw invalid(text, "integer") }
            return .integer(value)
        case .number:
            if let value = Int(text) { return .integer(value) }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if let value = Int(trimmed) { return .integer(value) }
            guard let value = Double(trimmed), value.isFinite else { throw invalid(text, "numeric") }
            return .float(value)
        case .boolean:
            guard let value = boolean(text) else { throw invalid(text, "boolean") }
            return .integer(value ? 1 : 0)
        case .json:
            do {
                return .text(try JSONValue.parse(Array(text.utf8)).jsonString)
            } catch {
                throw RestError(status: 400, code: "22P02", message: "invalid input syntax for type json", details: "Token \"\(text.prefix(40))\" is invalid.")
            }
        case .array:
            guard let items = PostgresArrayLiteral.parse(text) else { throw RestError(status: 400, code: "22P02", message: "malformed array literal: \"\(text)\"") }
            return .text(try JSONValue.array(items.map { item throws(RestError) in try element(item, of: column) }).jsonString)
        case .uuid:
            guard UUID(uuidString: text) != nil else { throw invalid(text, "uuid") }
            return .text(text.lowercased())
        case .enumeration:
            if let values = column.enumValues, !values.contains(text) {
                throw RestError(status: 400, code: "22P02", message: "invalid input value for enum \(column.nativeType): \"\(text)\"")
            }
            return .text(text)
        case .date:
            guard let date = SQLiteTimestamp.date(text) else { throw invalidDate(text, "date") }
            return .text(date)
        case .time:
            guard let time = SQLiteTimestamp.time(text) else { throw invalidDate(text, "time") }
            return .text(time)
        case .datetime:
            guard let stamp = SQLiteTimestamp.timestamp(text, withZone: hasTimeZone(column)) else {
                throw invalidDate(text, hasTimeZone(column) ? "timestamp with time zone" : "timestamp")
            }
            return .text(stamp)
        case .binary:
            if text.hasPrefix("\\x"), let bytes = hexBytes(text.dropFirst(2)) { return .blob(ByteBuffer(bytes: bytes)) }
            return .blob(ByteBuffer(string: text))
        case .string, .other:
            if let limit = characterLimit(column.nativeType), text.count > limit {
                throw RestError(status: 400, code: "22001", message: "value too long for type \(column.nativeType)")
            }
            return .text(text)
        }
    }

    /// `character varying(n)`, `varchar(n)`, `character(n)`: PostgreSQL refuses longer text.
    static func characterLimit(_ native: String) -> Int? {
        let lower = native.lowercased()
        guard lower.hasPrefix("character") || lower.hasPrefix("varchar") || lower.hasPrefix("char"),
            let open = lower.firstIndex(of: "("), let close = lower.firstIndex(of: ")"), open < close
        else { return nil }
        return Int(lower[lower.index(after: open)..<close])
    }

    /// A value from a JSON body for `column`, as PostgreSQL's `json_populate_record` reads it:
    /// strings are parsed as the column's input text, numbers and booleans taken as they are where
    /// the type allows, anything else refused.
    public static func bind(json value: JSONValue, for column: Column?) throws(RestError) -> SQLiteData {
        guard let column else { return value == .null ? .null : .text(value.stringValue ?? value.jsonString) }
        if value == .null { return .null }
        switch column.type {
        case .json:
            return .text(value.jsonString)
        case .array:
            guard case .array(let items) = value else {
                if case .string(let text) = value { return try bind(text: text, type: .array, column: column) }
                throw RestError(status: 400, code: "22P02", message: "malformed array literal: \"\(value.jsonString)\"")
            }
            return .text(try JSONValue.array(items.map { item throws(RestError) in try element(item, of: column) }).jsonString)
        case .integer, .bigint:
            if case .integer(let number) = value { return .integer(Int(number)) }
            if case .number = value, let number = value.intValue { return .integer(Int(number)) }
        case .number:
            if case .integer(let number) = value { return .integer(Int(number)) }
            if case .number(let number) = value { return .float(number) }
        case .boolean:
            if case .bool(let flag) = value { return .integer(flag ? 1 : 0) }
        case .string, .other:
            return try bind(text: value.stringValue ?? value.jsonString, type: column.type, column: column)
        default:
            break
        }
        return try bind(text: value.stringValue ?? value.jsonString, type: column.type, column: column)
    }

    /// One element of an array column, as JSON.
    static func element(_ item: JSONValue, of column: Column) throws(RestError) -> JSONValue {
        guard item != .null else { return .null }
        let type = column.elementType ?? .string
        var elementColumn = column
        elementColumn.type = type
        elementColumn.nativeType = String(column.nativeType.dropLast(2))
        let stored = try bind(json: item, for: elementColumn)
        switch (stored, type) {
        case (.integer(let number), .boolean): return .bool(number != 0)
        case (.integer(let number), _): return .integer(Int64(number))
        case (.float(let number), _): return .number(number)
        case (.text(let text), .json): return (try? JSONValue.parse(Array(text.utf8))) ?? .string(text)
        case (.text(let text), _): return .string(text)
        default: return item
        }
    }

    static func element(_ text: String?, of column: Column) throws(RestError) -> JSONValue {
        guard let text else { return .null }
        return try element(.string(text), of: column)
    }

    // MARK: - Output

    /// The SQL expression that turns a stored value into the JSON PostgREST answers with.
    public static func output(_ expression: String, type: PortableType?) -> String {
        switch type {
        case .boolean?: "json(CASE WHEN \(expression) IS NULL THEN NULL WHEN \(expression) THEN 'true' ELSE 'false' END)"
        case .json?, .array?: "json(\(expression))"
        case .binary?: "CASE WHEN \(expression) IS NULL THEN NULL ELSE '\\x' || lower(hex(\(expression))) END"
        default: expression
        }
    }

    /// The stored value as PostgreSQL's text form (for `::text`, `like` and `->>`).
    public static func text(_ expression: String, type: PortableType?) -> String {
        switch type {
        case .boolean?: "CASE WHEN \(expression) IS NULL THEN NULL WHEN \(expression) THEN 'true' ELSE 'false' END"
        case .binary?: "CASE WHEN \(expression) IS NULL THEN NULL ELSE '\\x' || lower(hex(\(expression))) END"
        default: "CAST(\(expression) AS TEXT)"
        }
    }

    // MARK: - Helpers

    public static func hasTimeZone(_ column: Column) -> Bool {
        let native = column.nativeType.lowercased()
        return native.contains("with time zone") || native.hasPrefix("timestamptz")
    }

    /// PostgreSQL's boolean input: t/true/y/yes/on/1 and their opposites, any case.
    static func boolean(_ text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "t", "true", "y", "yes", "on", "1": true
        case "f", "false", "n", "no", "off", "0": false
        default: nil
        }
    }

    static func hexBytes(_ digits: Substring) -> [UInt8]? {
        let utf8 = Array(digits.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = hexDigit(utf8[index]), let low = hexDigit(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func invalid(_ text: String, _ type: String) -> RestError {
        RestError(status: 400, code: "22P02", message: "invalid input syntax for type \(type): \"\(text)\"")
    }

    static func invalidDate(_ text: String, _ type: String) -> RestError {
        RestError(status: 400, code: "22007", message: "invalid input syntax for type \(type): \"\(text)\"")
    }

    /// A value as a checked SQL literal: for names that must appear in the SQL text (JSON keys of
    /// `json_object`, DDL), never for values a request sends.
    public static func literal(_ text: String) -> String {
        "'" + escaping(text, "'", as: "''") + "'"
    }
}

/// PostgreSQL's array input syntax, `{a,"b c",NULL}`, as PostgREST filters write arrays.
public enum PostgresArrayLiteral {
    /// Items as an array literal, every one quoted (so commas, braces, spaces and the word NULL
    /// inside an item stay text); nil items are NULL.
    public static func render(_ items: [String?]) -> String {
        var out = "{"
        for (index, item) in items.enumerated() {
            if index > 0 { out += "," }
            guard let item else {
                out += "NULL"
                continue
            }
            out += "\""
            for character in item {
                if character == "\"" || character == "\\" { out += "\\" }
                out.append(character)
            }
            out += "\""
        }
        return out + "}"
    }

    /// The elements (nil for NULL), or nil when the text is not a one-dimensional array literal.
    public static func parse(_ text: String) -> [String?]? {
        let scalars = Array(text.trimmingCharacters(in: .whitespaces).unicodeScalars)
        guard scalars.first == "{", scalars.last == "}" else { return nil }
        var items: [String?] = []
        var index = 1
        let end = scalars.count - 1
        if index == end { return [] }
        while index <= end {
            while index < end, scalars[index] == " " { index += 1 }
            var item = ""
            var quoted = false
            if index < end, scalars[index] == "\"" {
                quoted = true
                index += 1
                while index < end, scalars[index] != "\"" {
                    if scalars[index] == "\\", index + 1 < end { index += 1 }
                    item.unicodeScalars.append(scalars[index])
                    index += 1
                }
                guard index < end else { return nil }
                index += 1
            } else {
                while index < end, scalars[index] != "," {
                    if scalars[index] == "{" || scalars[index] == "\"" { return nil }
                    if scalars[index] == "\\", index + 1 < end { index += 1 }
                    item.unicodeScalars.append(scalars[index])
                    index += 1
                }
                item = item.trimmingCharacters(in: .whitespaces)
            }
            items.append(!quoted && item.uppercased() == "NULL" ? nil : item)
            guard index == end || scalars[index] == "," else { return nil }
            index += 1
        }
        return items
    }
}
