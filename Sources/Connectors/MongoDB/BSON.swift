import CMongoc
import Foundation

/// A BSON value as the MongoDB renderer builds it and as documents are read back. Documents keep
/// their key order (it matters to MongoDB: sort specifications, `_id` first). Built into libbson's
/// `bson_t` by `BSONDocument.withBSON` (libbson's builders), read from the bytes the server sent
/// by `BSONDocument(bytes:)`.
public indirect enum BSON: Sendable, Equatable {
    case double(Double)
    case string(String)
    case document(BSONDocument)
    case array([BSON])
    case binary(subtype: UInt8, [UInt8])
    case objectId(ObjectID)
    case bool(Bool)
    /// Milliseconds since the epoch.
    case date(Int64)
    case null
    case regex(pattern: String, options: String)
    case int32(Int32)
    case int64(Int64)
    /// The value's exact text (`bson_decimal128_to_string`).
    case decimal128(String)
    /// A type this API only shows (timestamp, JavaScript code, min/max keys, symbols…): its
    /// canonical Extended JSON, read-only.
    case other(typeName: String, extendedJSON: String)

    var typeName: String {
        switch self {
        case .double: "double"
        case .string: "string"
        case .document: "object"
        case .array: "array"
        case .binary(let subtype, _): subtype == 4 ? "uuid" : "binData"
        case .objectId: "objectId"
        case .bool: "bool"
        case .date: "date"
        case .null: "null"
        case .regex: "regex"
        case .int32: "int"
        case .int64: "long"
        case .decimal128: "decimal"
        case .other(let name, _): name
        }
    }
}

/// A 12-byte ObjectId.
public struct ObjectID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 12 else { return nil }
        self.bytes = bytes
    }

    /// From 24 hexadecimal digits (either case); nil for anything else.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 24 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        var index = 0
        while index < 24 {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    /// A new id from libbson's generator (time, process, counter).
    public static func generate() -> ObjectID {
        var oid = bson_oid_t()
        bson_oid_init(&oid, nil)
        return withUnsafeBytes(of: oid.bytes) { ObjectID(bytes: Array($0))! }
    }

    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// An ordered BSON document.
public struct BSONDocument: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public var pairs: [(key: String, value: BSON)]

    public init() { pairs = [] }
    public init(_ pairs: [(key: String, value: BSON)]) { self.pairs = pairs }
    public init(dictionaryLiteral elements: (String, BSON)...) { pairs = elements.map { (key: $0.0, value: $0.1) } }

    public static func == (lhs: BSONDocument, rhs: BSONDocument) -> Bool {
        lhs.pairs.count == rhs.pairs.count && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public subscript(key: String) -> BSON? {
        get { pairs.first { $0.key == key }?.value }
        set {
            if let index = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[index].value = newValue } else { pairs.remove(at: index) }
            } else if let newValue {
                pairs.append((key: key, value: newValue))
            }
        }
    }

    public var isEmpty: Bool { pairs.isEmpty }

    public mutating func append(_ key: String, _ value: BSON) { pairs.append((key: key, value: value)) }

    /// MongoDB's limit for one stored document.
    static let maxStoredSize = 16 * 1024 * 1024

    /// The document's size as BSON, without building it.
    var encodedSize: Int {
        5 + pairs.reduce(0) { $0 + 2 + $1.key.utf8.count + $1.value.encodedSize }
    }
}

extension BSON {
    /// The value's size in BSON (its element, without type byte and key).
    var encodedSize: Int {
        switch self {
        case .double, .date, .int64: 8
        case .int32: 4
        case .bool: 1
        case .null: 0
        case .string(let text): 5 + text.utf8.count
        case .document(let document): document.encodedSize
        case .array(let items): 5 + items.enumerated().reduce(0) { $0 + 2 + String($1.offset).utf8.count + $1.element.encodedSize }
        case .binary(_, let bytes): 5 + bytes.count
        case .objectId: 12
        case .regex(let pattern, let options): 2 + pattern.utf8.count + options.utf8.count
        case .decimal128: 16
        case .other(_, let json): json.utf8.count
        }
    }
}

// MARK: - Building with libbson

extension BSONDocument {
    /// Builds the document with libbson's builders and lends it to `body`; freed after.
    func withBSON<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        let document = try Self.build(self)
        defer { bson_destroy(document) }
        return try body(document)
    }

    /// The same for an array (keys "0", "1"…), which is how libbson takes pipelines.
    static func withBSONArray<T>(_ items: [BSON], _ body: (OpaquePointer) throws -> T) throws -> T {
        let document = try buildArray(items)
        defer { bson_destroy(document) }
        return try body(document)
    }

    private static func build(_ document: BSONDocument) throws -> OpaquePointer {
        guard let out = bson_new() else { throw BSONError.tooLarge }
        for (key, value) in document.pairs {
            guard append(value, key: key, to: out) else {
                bson_destroy(out)
                throw BSONError.tooLarge
            }
        }
        return out
    }

    private static func buildArray(_ items: [BSON]) throws -> OpaquePointer {
        guard let out = bson_new() else { throw BSONError.tooLarge }
        for (index, value) in items.enumerated() {
            guard append(value, key: String(index), to: out) else {
                bson_destroy(out)
                throw BSONError.tooLarge
            }
        }
        return out
    }

    /// One value under `key`; false when libbson refuses (the document would pass 2 GiB, a NUL
    /// in a key).
    private static func append(_ value: BSON, key: String, to out: OpaquePointer) -> Bool {
        let keyLength = Int32(key.utf8.count)
        switch value {
        case .double(let number):
            return bson_append_double(out, key, keyLength, number)
        case .string(let text):
            // Length-delimited: text with NUL inside stays whole.
            return text.utf8CString.withUnsafeBufferPointer { buffer in
                bson_append_utf8(out, key, keyLength, buffer.baseAddress, Int32(text.utf8.count))
            }
        case .document(let child):
            guard let built = try? build(child) else { return false }
            defer { bson_destroy(built) }
            return bson_append_document(out, key, keyLength, built)
        case .array(let items):
            guard let built = try? buildArray(items) else { return false }
            defer { bson_destroy(built) }
            return bson_append_array(out, key, keyLength, built)
        case .binary(let subtype, let bytes):
            return bytes.withUnsafeBufferPointer { buffer in
                bson_append_binary(out, key, keyLength, bson_subtype_t(rawValue: UInt32(subtype)), buffer.baseAddress, UInt32(bytes.count))
            }
        case .objectId(let id):
            var oid = bson_oid_t()
            id.bytes.withUnsafeBufferPointer { bson_oid_init_from_data(&oid, $0.baseAddress) }
            return bson_append_oid(out, key, keyLength, &oid)
        case .bool(let flag):
            return bson_append_bool(out, key, keyLength, flag)
        case .date(let milliseconds):
            return bson_append_date_time(out, key, keyLength, milliseconds)
        case .null:
            return bson_append_null(out, key, keyLength)
        case .regex(let pattern, let options):
            guard !pattern.utf8.contains(0) else { return false }
            return bson_append_regex(out, key, keyLength, pattern, options)
        case .int32(let number):
            return bson_append_int32(out, key, keyLength, number)
        case .int64(let number):
            return bson_append_int64(out, key, keyLength, number)
        case .decimal128(let text):
            var decimal = bson_decimal128_t()
            guard bson_decimal128_from_string(text, &decimal) else { return false }
            return bson_append_decimal128(out, key, keyLength, &decimal)
        case .other:
            // Read-only types are never written.
            return false
        }
    }
}

enum BSONError: Error, CustomStringConvertible {
    case tooLarge
    case malformed(String)

    var description: String {
        switch self {
        case .tooLarge: "the document cannot be built (too large, or a key or pattern holds NUL)"
        case .malformed(let reason): "a malformed BSON document: \(reason)"
        }
    }
}

// MARK: - Reading the server's bytes

extension BSONDocument {
    /// Reads a document libbson handed over (a cursor's current document, a command's reply).
    init(bson: OpaquePointer) throws {
        // libbson's `bson_t` is opaque to Swift (it is 128-byte aligned); its data starts with
        // the document's length.
        guard let data = bson_get_data(bson) else { throw BSONError.malformed("no data") }
        let length = Int(UInt32(data[0]) | UInt32(data[1]) << 8 | UInt32(data[2]) << 16 | UInt32(data[3]) << 24)
        try self.init(bytes: UnsafeBufferPointer(start: data, count: length))
    }

    /// Parses a BSON document from its bytes, every length checked against what is there.
    init(bytes: UnsafeBufferPointer<UInt8>) throws {
        var reader = BSONReader(bytes: bytes, position: 0)
        self = try reader.document(end: bytes.count)
    }
}

private struct BSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position: Int

    mutating func document(end limit: Int) throws -> BSONDocument {
        let start = position
        let length = Int(try int32())
        guard length >= 5, start + length <= limit else { throw BSONError.malformed("document length \(length)") }
        let end = start + length
        var document = BSONDocument()
        while position < end - 1 {
            let type = try byte()
            let key = try cString()
            document.pairs.append((key: key, value: try value(type: type, end: end)))
        }
        guard position == end - 1, bytes[position] == 0 else { throw BSONError.malformed("document end") }
        position = end
        return document
    }

    mutating func value(type: UInt8, end: Int) throws -> BSON {
        switch type {
        case 0x01: return .double(Double(bitPattern: try uint64()))
        case 0x02: return .string(try string())
        case 0x03: return .document(try document(end: end))
        case 0x04: return .array(try document(end: end).pairs.map(\.value))
        case 0x05:
            let length = Int(try int32())
            let subtype = try byte()
            guard length >= 0 else { throw BSONError.malformed("binary length") }
            var data = try take(length)
            // The old binary subtype 2 holds its own length first.
            if subtype == 2, data.count >= 4 { data.removeFirst(4) }
            return .binary(subtype: subtype, data)
        case 0x06: return .other(typeName: "undefined", extendedJSON: #"{"$undefined":true}"#)
        case 0x07: return .objectId(ObjectID(bytes: try take(12))!)
        case 0x08: return .bool(try byte() != 0)
        case 0x09: return .date(Int64(bitPattern: try uint64()))
        case 0x0A: return .null
        case 0x0B:
            let pattern = try cString()
            return .regex(pattern: pattern, options: try cString())
        case 0x0C:
            let namespace = try string()
            let id = ObjectID(bytes: try take(12))!
            return .other(typeName: "dbPointer", extendedJSON: #"{"$dbPointer":{"$ref":\#(Self.quoted(namespace)),"$id":{"$oid":"\#(id)"}}}"#)
        case 0x0D: return .other(typeName: "javascript", extendedJSON: #"{"$code":\#(Self.quoted(try string()))}"#)
        case 0x0E: return .other(typeName: "symbol", extendedJSON: #"{"$symbol":\#(Self.quoted(try string()))}"#)
        case 0x0F:
            let start = position
            let total = Int(try int32())
            let code = try string()
            let scope = try document(end: end)
            guard position == start + total else { throw BSONError.malformed("code with scope length") }
            return .other(typeName: "javascriptWithScope", extendedJSON: #"{"$code":\#(Self.quoted(code)),"$scope":\#(MongoJSON.extended(.document(scope)))}"#)
        case 0x10: return .int32(try int32())
        case 0x11:
            let increment = try uint32()
            let seconds = try uint32()
            return .other(typeName: "timestamp", extendedJSON: #"{"$timestamp":{"t":\#(seconds),"i":\#(increment)}}"#)
        case 0x12: return .int64(Int64(bitPattern: try uint64()))
        case 0x13:
            var decimal = bson_decimal128_t()
            decimal.low = try uint64()
            decimal.high = try uint64()
            var text = [CChar](repeating: 0, count: 43)
            bson_decimal128_to_string(&decimal, &text)
            return .decimal128(String(cString: text))
        case 0xFF: return .other(typeName: "minKey", extendedJSON: #"{"$minKey":1}"#)
        case 0x7F: return .other(typeName: "maxKey", extendedJSON: #"{"$maxKey":1}"#)
        default: throw BSONError.malformed("type 0x\(String(type, radix: 16))")
        }
    }

    static func quoted(_ text: String) -> String { MongoJSON.quoted(text) }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw BSONError.malformed("truncated") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws -> [UInt8] {
        guard count >= 0, position + count <= bytes.count else { throw BSONError.malformed("truncated") }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func uint32() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw BSONError.malformed("truncated") }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[position + index]) << (8 * index) }
        position += 4
        return value
    }

    mutating func int32() throws -> Int32 { Int32(bitPattern: try uint32()) }

    mutating func uint64() throws -> UInt64 {
        let low = UInt64(try uint32())
        let high = UInt64(try uint32())
        return high << 32 | low
    }

    mutating func cString() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0) else { throw BSONError.malformed("unterminated key") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    mutating func string() throws -> String {
        let length = Int(try int32())
        guard length >= 1, position + length <= bytes.count, bytes[position + length - 1] == 0 else { throw BSONError.malformed("string length") }
        defer { position += length }
        return String(decoding: bytes[position..<position + length - 1], as: UTF8.self)
    }
}
