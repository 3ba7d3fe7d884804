import Foundation
import Runtime

/// BSON as the REST API answers it (contract table): ObjectIds as 24 lowercase hex digits,
/// numbers as numbers (Decimal128 with its exact digits; NaN and the infinities as strings),
/// dates as `2020-01-02T03:04:05.123Z`, UUID binaries as UUID text, other binaries as base64,
/// documents and arrays as JSON, and the read-only types as canonical Extended JSON. Written
/// straight to bytes: a page of rows is never built as a tree of JSON values first.
enum MongoJSON {
    static func write(_ value: BSON, into out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let flag): out += Array((flag ? "true" : "false").utf8)
        case .int32(let number): out += Array(String(number).utf8)
        case .int64(let number): out += Array(String(number).utf8)
        case .double(let number): writeDouble(number, into: &out)
        case .decimal128(let text):
            if text.contains("N") || text.contains("n") || text.contains("I") || text.contains("i") {
                writeString(text, into: &out)
            } else {
                out += Array(text.utf8)
            }
        case .string(let text): writeString(text, into: &out)
        case .objectId(let id): writeString(id.description, into: &out)
        case .date(let milliseconds): writeString(isoDate(milliseconds), into: &out)
        case .binary(let subtype, let bytes):
            if subtype == 4 || subtype == 3, bytes.count == 16 {
                writeString(uuidText(bytes), into: &out)
            } else {
                writeString(Data(bytes).base64EncodedString(), into: &out)
            }
        case .document(let document):
            out.append(UInt8(ascii: "{"))
            for (index, pair) in document.pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(pair.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(pair.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .regex(let pattern, let options):
            out += Array(#"{"$regularExpression":{"pattern":"#.utf8)
            writeString(pattern, into: &out)
            out += Array(#","options":"#.utf8)
            writeString(options, into: &out)
            out += Array("}}".utf8)
        case .other(_, let extended):
            out += Array(extended.utf8)
        }
    }

    static func extended(_ value: BSON) -> String {
        var out: [UInt8] = []
        write(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same value as a `JSONValue` (policy checks, realtime images, `decide`).
    static func json(_ value: BSON) -> JSONValue {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .int32(let number): .integer(Int64(number))
        case .int64(let number): .integer(number)
        case .double(let number): number.isFinite ? .number(number) : .string(number.isNaN ? "NaN" : number < 0 ? "-Infinity" : "Infinity")
        case .decimal128(let text): Double(text).map { $0.isFinite ? JSONValue.number($0) : .string(text) } ?? .string(text)
        case .string(let text): .string(text)
        case .objectId(let id): .string(id.description)
        case .date(let milliseconds): .string(isoDate(milliseconds))
        case .binary(let subtype, let bytes): (subtype == 4 || subtype == 3) && bytes.count == 16 ? .string(uuidText(bytes)) : .string(Data(bytes).base64EncodedString())
        case .document(let document):
            {
                var object = JSONObject()
                for (key, value) in document.pairs { object[key] = json(value) }
                return .object(object)
            }()
        case .array(let items): .array(items.map(json))
        case .regex, .other: (try? JSONValue.parse(Array(extended(value).utf8))) ?? .null
        }
    }

    /// What `->>` gives: text for scalars (`true`, `5`), JSON text for documents and arrays.
    static func text(_ value: BSON) -> String? {
        switch value {
        case .null: return nil
        case .string(let text): return text
        default:
            if case .string(let text) = json(value) { return text }
            return extended(value)
        }
    }

    static func writeDouble(_ number: Double, into out: inout [UInt8]) {
        if number.isNaN {
            writeString("NaN", into: &out)
        } else if number.isInfinite {
            writeString(number < 0 ? "-Infinity" : "Infinity", into: &out)
        } else if number == number.rounded(), abs(number) < 1e15 {
            // PostgreSQL's float8 output: 5, not 5.0.
            out += Array(String(Int64(number)).utf8)
        } else {
            out += Array("\(number)".utf8)
        }
    }

    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        writeString(text, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Dates and UUIDs

    /// `2020-01-02T03:04:05.123Z`, always with milliseconds (a BSON date's precision).
    static func isoDate(_ milliseconds: Int64) -> String {
        let (seconds, millis) = Int64(milliseconds).quotientAndRemainder(dividingBy: 1000)
        var days = Int(seconds / 86_400)
        var secondOfDay = Int(seconds % 86_400)
        var ms = Int(millis)
        if ms < 0 {
            ms += 1000
            secondOfDay -= 1
        }
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = SQLiteTimestamp.civilFromDays(days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(ms, 3))Z"
    }

    /// An ISO-8601 instant (PostgreSQL's common forms; no zone means UTC) in milliseconds.
    static func milliseconds(_ text: String) -> Int64? {
        guard let normalized = SQLiteTimestamp.timestamp(text, withZone: true) else { return nil }
        // `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`
        let scalars = Array(normalized.utf8)
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: scalars[range], as: UTF8.self)) }
        guard scalars.count >= 25, let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var millis = 0
        if scalars[19] == UInt8(ascii: ".") {
            let digits = scalars[20...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            let first3 = Array(digits.prefix(3)) + Array(repeating: UInt8(ascii: "0"), count: max(0, 3 - digits.count))
            millis = Int(String(decoding: first3, as: UTF8.self)) ?? 0
        }
        let days = SQLiteTimestamp.daysFromCivil(year, month, day)
        return (Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)) * 1000 + Int64(millis)
    }

    static func uuidText(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { byte -> String in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
        let characters = Array(hex)
        return String(characters[0..<8]) + "-" + String(characters[8..<12]) + "-" + String(characters[12..<16]) + "-"
            + String(characters[16..<20]) + "-" + String(characters[20..<32])
    }

    static func uuidBytes(_ text: String) -> [UInt8]? {
        let hex = text.filter { $0 != "-" }
        guard hex.count == 32, text.count == 36 || text.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
