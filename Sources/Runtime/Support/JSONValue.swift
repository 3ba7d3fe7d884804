import Foundation

/// Any JSON value; objects keep their keys in document order so that what we echo back reads like
/// what was sent. Used where the shape is open: request bodies checked field by field, policies, models.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// The value, or nil for JSON null. Write `value.nonNull` rather than `value == .null ? nil : value`:
    /// JSONValue is ExpressibleByNilLiteral, so that `nil` becomes `.null` and nothing is removed.
    public var nonNull: JSONValue? {
        if case .null = self { return Optional.none }
        return self
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var intValue: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value) where value.rounded() == value && abs(value) < 9.0e15: return Int64(value)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }

    /// The JSON type name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number, .integer: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON object that remembers key order. Equality ignores the order, as JSON does.
///
/// Keys and values sit in two arrays in order: most objects (a row, a request body) have a few
/// keys, where a linear search beats hashing and iterating needs no lookups. An object that grows
/// past `indexedFrom` keys also keeps positions by key.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.keys.count == rhs.keys.count else { return false }
        for (index, key) in lhs.keys.enumerated() where rhs[key] != lhs.storage[index] { return false }
        return true
    }

    /// Order-independent, as equality is.
    public func hash(into hasher: inout Hasher) {
        var sum: UInt = 0
        for (index, key) in keys.enumerated() {
            var pair = Hasher()
            pair.combine(key)
            pair.combine(storage[index])
            sum &+= UInt(bitPattern: pair.finalize())
        }
        hasher.combine(keys.count)
        hasher.combine(sum)
    }

    public private(set) var keys: [String] = []
    private var storage: [JSONValue] = []
    private var positions: [String: Int]?
    static let indexedFrom = 16

    public init() {}
    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        for (key, value) in pairs { self[key] = value }
    }

    private func position(of key: String) -> Int? {
        if let positions { return positions[key] }
        return keys.firstIndex(of: key)
    }

    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { storage[$0] } }
        set {
            if let newValue {
                if let index = position(of: key) {
                    storage[index] = newValue
                    return
                }
                keys.append(key)
                storage.append(newValue)
                if positions != nil {
                    positions?[key] = keys.count - 1
                } else if keys.count > Self.indexedFrom {
                    positions = Dictionary(uniqueKeysWithValues: zip(keys, keys.indices))
                }
            } else if let index = position(of: key) {
                keys.remove(at: index)
                storage.remove(at: index)
                if positions != nil { positions = Dictionary(uniqueKeysWithValues: zip(keys, keys.indices)) }
            }
        }
    }

    public typealias Key = String
    public typealias Value = JSONValue

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public struct Iterator: IteratorProtocol {
        let keys: [String]
        let values: [JSONValue]
        var index = 0

        public mutating func next() -> (key: String, value: JSONValue)? {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            return (keys[index], values[index])
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(keys: keys, values: storage)
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode(JSONObject.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONObject: Codable {
    private struct CodingName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingName.self)
        self.init()
        for key in container.allKeys {
            self[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingName.self)
        for (key, value) in self {
            try container.encode(value, forKey: CodingName(stringValue: key))
        }
    }
}

extension JSONValue {
    /// Parses bytes that must be one JSON document, strictly (see `JSONParser`).
    public static func parse(_ bytes: some Collection<UInt8>) throws(ParseError) -> JSONValue {
        try JSONParser.parse(Array(bytes))
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.write(self, into: &out)
        return out
    }

    public var jsonString: String { String(decoding: encoded(), as: UTF8.self) }

    /// Appends the value's JSON to `out` (for answers written straight into one buffer).
    public func write(into out: inout [UInt8]) {
        JSONWriter.write(self, into: &out)
    }

    /// Appends a string's JSON (quoted, escaped) to `out`.
    public static func writeString(_ string: String, into out: inout [UInt8]) {
        JSONWriter.writeString(string, into: &out)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public typealias Key = String
    public typealias Value = JSONValue

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}
