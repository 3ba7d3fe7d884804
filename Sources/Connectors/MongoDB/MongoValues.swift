import Foundation
import Runtime

/// Values entering MongoDB, typed by the field's sampled type (the model's `nativeType`), never by
/// a value's shape: `"5f…"` is an ObjectId only in a field sampled as ObjectIds, and `"$where"` is
/// always a string. Mixed fields (`mixed(string,int)`) take every reading their seen types allow.
enum MongoValues {
    /// `match`/`imatch` patterns longer than this are refused (a regular expression is work the
    /// server does for every document it scans).
    static let maxPattern = 512

    // MARK: - Filter operands (URL text)

    /// The BSON values a filter operand may equal: one for a typed field, one per reading for a
    /// mixed field or a JSON path.
    static func operands(_ text: String, field: Field, column: Column?) throws(RestError) -> [BSON] {
        if !field.path.isEmpty {
            // `->>` yields text, which a stored number or boolean equals in PostgreSQL's terms;
            // `->` yields JSON.
            if field.yieldsText { return readings(text, types: ["string", "int", "long", "double", "bool"]) }
            if let parsed = try? JSONValue.parse(Array(text.utf8)) { return [generic(parsed)] }
            return [.string(text)]
        }
        guard let column else { return [.string(text)] }
        let native = column.nativeType
        if let seen = mixedTypes(native) { return readings(text, types: seen) }
        if native.hasPrefix("array") {
            if let items = PostgresArrayLiteral.parse(text) {
                let element = elementNative(native)
                var values: [BSON] = []
                for item in items {
                    guard let item else {
                        values.append(.null)
                        continue
                    }
                    values.append(element == "mixed" ? readings(item, types: ["int", "double", "string"])[0] : try typed(item, native: element, column: column.name))
                }
                return [.array(values)]
            }
            if let parsed = try? JSONValue.parse(Array(text.utf8)) { return [generic(parsed)] }
        }
        return [try typed(text, native: native, column: column.name)]
    }

    /// One operand as the field's type reads it; 400 MB336 when it cannot.
    static func typed(_ text: String, native: String, column: String) throws(RestError) -> BSON {
        func refuse() -> RestError { notOfType(text, native: native, column: column) }
        switch native {
        case "objectId":
            guard let id = ObjectID(hex: text) else { throw refuse() }
            return .objectId(id)
        case "string": return .string(text)
        case "int", "long":
            guard let number = Int64(text.trimmingCharacters(in: .whitespaces)) else { throw refuse() }
            return native == "int" && Int32(exactly: number) != nil ? .int32(Int32(number)) : .int64(number)
        case "double":
            guard let number = Double(text.trimmingCharacters(in: .whitespaces)) else { throw refuse() }
            return .double(number)
        case "decimal":
            guard Double(text.trimmingCharacters(in: .whitespaces)) != nil else { throw refuse() }
            return .decimal128(text.trimmingCharacters(in: .whitespaces))
        case "bool":
            switch text.lowercased() {
            case "true", "t", "yes", "on", "1": return .bool(true)
            case "false", "f", "no", "off", "0": return .bool(false)
            default: throw refuse()
            }
        case "date":
            guard let milliseconds = MongoJSON.milliseconds(text) else { throw refuse() }
            return .date(milliseconds)
        case "uuid":
            guard let bytes = MongoJSON.uuidBytes(text) else { throw refuse() }
            return .binary(subtype: 4, bytes)
        case "binData":
            guard let data = Data(base64Encoded: text) else { throw refuse() }
            return .binary(subtype: 0, Array(data))
        case "object", "null":
            if let parsed = try? JSONValue.parse(Array(text.utf8)) { return generic(parsed) }
            return .string(text)
        default:
            throw RestError(
                status: 400, code: "MB336", message: "field '\(column)' holds \(native) values, which can only be read, not compared",
                details: "operand: \(text)")
        }
    }

    /// Every reading of `text` the given types allow (the string first).
    private static func readings(_ text: String, types: [String]) -> [BSON] {
        var values: [BSON] = []
        func add(_ value: BSON) { if !values.contains(value) { values.append(value) } }
        for type in types {
            switch type {
            case "string": add(.string(text))
            case "int", "long", "double", "decimal":
                if let number = Int64(text) {
                    add(Int32(exactly: number).map(BSON.int32) ?? .int64(number))
                } else if let number = Double(text), text.contains(where: { $0.isNumber }) {
                    add(.double(number))
                }
            case "bool":
                if text == "true" { add(.bool(true)) } else if text == "false" { add(.bool(false)) }
            case "objectId":
                if let id = ObjectID(hex: text) { add(.objectId(id)) }
            case "date":
                if let milliseconds = MongoJSON.milliseconds(text) { add(.date(milliseconds)) }
            default: continue
            }
        }
        if values.isEmpty { values.append(.string(text)) }
        return values
    }

    /// `mixed(string,int)` → ["string", "int"].
    static func mixedTypes(_ native: String) -> [String]? {
        guard native.hasPrefix("mixed(") && native.hasSuffix(")") else { return nil }
        return native.dropFirst(6).dropLast().split(separator: ",").map(String.init)
    }

    /// `array<objectId>` → "objectId"; plain `array` → "mixed".
    static func elementNative(_ native: String) -> String {
        guard let open = native.firstIndex(of: "<"), native.hasSuffix(">") else { return "mixed" }
        return String(native[native.index(after: open)..<native.index(before: native.endIndex)])
    }

    static func notOfType(_ text: String, native: String, column: String) -> RestError {
        RestError(status: 400, code: "MB336", message: "value is not of field '\(column)''s type (\(native))", details: "value: \(text.prefix(200))")
    }

    // MARK: - Body values (JSON)

    /// A body value as stored, typed by its field; `pointer` names it in errors (`/0/address/zip`).
    static func value(_ json: JSONValue, native: String, column: String, pointer: String) throws(RestError) -> BSON {
        if case .null = json { return .null }
        func refuse() -> RestError { notOfType(json.jsonString, native: native, column: column) }
        if let seen = mixedTypes(native) ?? (native == "mixed" ? [] : nil) {
            // A mixed field takes any of the types it was seen with, as the value's JSON says.
            let value = try generic(json, pointer: pointer)
            if case .string(let text) = json, seen.contains("objectId"), !seen.contains("string"), let id = ObjectID(hex: text) { return .objectId(id) }
            return value
        }
        if native.hasPrefix("array") {
            guard case .array(let items) = json else { throw refuse() }
            let element = elementNative(native)
            var values: [BSON] = []
            for (index, item) in items.enumerated() {
                values.append(try value(item, native: element, column: column, pointer: "\(pointer)/\(index)"))
            }
            return .array(values)
        }
        switch (native, json) {
        case ("objectId", .string(let text)):
            guard let id = ObjectID(hex: text) else { throw refuse() }
            return .objectId(id)
        case ("string", .string(let text)): return .string(text)
        case ("int", .integer(let number)), ("long", .integer(let number)):
            return native == "int" && Int32(exactly: number) != nil ? .int32(Int32(number)) : .int64(number)
        case ("int", .number(let number)), ("long", .number(let number)):
            guard let integer = Int64(exactly: number) else { throw refuse() }
            return native == "int" && Int32(exactly: integer) != nil ? .int32(Int32(integer)) : .int64(integer)
        case ("int", .string(let text)), ("long", .string(let text)), ("double", .string(let text)), ("decimal", .string(let text)),
            ("bool", .string(let text)):
            if native == "double", ["NaN", "Infinity", "-Infinity"].contains(text) { return .double(Double(text) ?? .nan) }
            return try typed(text, native: native, column: column)
        case ("double", .integer(let number)): return .double(Double(number))
        case ("double", .number(let number)): return .double(number)
        case ("decimal", .integer(let number)): return .decimal128(String(number))
        case ("decimal", .number(let number)): return .decimal128("\(number)")
        case ("bool", .bool(let flag)): return .bool(flag)
        case ("date", .string(let text)), ("uuid", .string(let text)), ("binData", .string(let text)):
            return try typed(text, native: native, column: column)
        case ("object", .object), ("null", _):
            return try generic(json, pointer: pointer)
        default:
            throw refuse()
        }
    }

    /// Any JSON as BSON by its own shape (documents, mixed fields): integers as int32 when they
    /// fit, else int64; other numbers as doubles. Object keys are checked.
    static func generic(_ json: JSONValue, pointer: String) throws(RestError) -> BSON {
        switch json {
        case .null: return .null
        case .bool(let flag): return .bool(flag)
        case .integer(let number): return Int32(exactly: number).map(BSON.int32) ?? .int64(number)
        case .number(let number): return .double(number)
        case .string(let text): return .string(text)
        case .array(let items):
            var values: [BSON] = []
            for (index, item) in items.enumerated() { values.append(try generic(item, pointer: "\(pointer)/\(index)")) }
            return .array(values)
        case .object(let object):
            var document = BSONDocument()
            for (key, value) in object {
                let at = pointer + "/" + escapePointer(key)
                try checkKey(key, pointer: at)
                document.append(key, try generic(value, pointer: at))
            }
            return .document(document)
        }
    }

    /// The same without key checks, for operands that never become stored keys (they are values
    /// under `$eq`/`$in`, never field names).
    static func generic(_ json: JSONValue) -> BSON {
        switch json {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .integer(let number): Int32(exactly: number).map(BSON.int32) ?? .int64(number)
        case .number(let number): .double(number)
        case .string(let text): .string(text)
        case .array(let items): .array(items.map(generic))
        case .object(let object): .document(BSONDocument(object.map { (key: $0.key, value: generic($0.value)) }))
        }
    }

    /// Keys MongoDB would read as operators or paths are refused in bodies: `$`-led, dotted,
    /// holding NUL, or empty (400 MB335, with the key's JSON pointer).
    static func checkKey(_ key: String, pointer: String) throws(RestError) {
        if key.isEmpty || key.hasPrefix("$") || key.contains(".") || key.utf8.contains(0) {
            throw RestError(
                status: 400, code: "MB335", message: "a document key may not be empty, start with '$', or hold '.' or NUL",
                details: "at \(pointer)")
        }
    }

    static func escapePointer(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
