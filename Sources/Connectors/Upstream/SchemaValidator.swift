import Foundation
import Runtime

/// Checks a JSON value against the JSON Schema subset API descriptions use — `type` (and
/// `nullable`), `enum`, `required`, `properties`, `additionalProperties`, `items`, lengths, bounds,
/// `allOf`/`anyOf`/`oneOf`, `$ref` inside the document — so that a request the upstream would
/// refuse is refused here, with the JSON pointer of the first problem.
public struct SchemaValidator: Sendable {
    public let document: JSONValue
    static let maxDepth = 64

    public struct Violation: Error, Sendable, Equatable, CustomStringConvertible {
        public var pointer: String
        public var message: String
        public var description: String { "\(pointer.isEmpty ? "/" : pointer): \(message)" }
    }

    public init(document: JSONValue) {
        self.document = document
    }

    public func validate(_ value: JSONValue, against schema: JSONValue, at pointer: String = "") throws(Violation) {
        try check(value, schema, pointer, depth: 0)
    }

    private func check(_ value: JSONValue, _ schema: JSONValue, _ pointer: String, depth: Int) throws(Violation) {
        guard depth < Self.maxDepth else { throw Violation(pointer: pointer, message: "nested too deeply") }
        guard let object = schema.objectValue else { return }
        if let ref = object["$ref"]?.stringValue {
            guard let target = UpstreamSpec.resolve(ref, in: document) else { throw Violation(pointer: pointer, message: "the spec's \(ref) does not resolve") }
            try check(value, target, pointer, depth: depth + 1)
        }
        for part in object["allOf"]?.arrayValue ?? [] { try check(value, part, pointer, depth: depth + 1) }
        for key in ["anyOf", "oneOf"] {
            guard let options = object[key]?.arrayValue, !options.isEmpty else { continue }
            let passing = options.filter { option in (try? check(value, option, pointer, depth: depth + 1)) != nil }.count
            if passing == 0 { throw Violation(pointer: pointer, message: "matches none of the \(key) alternatives") }
            if key == "oneOf" && passing > 1 { throw Violation(pointer: pointer, message: "matches more than one oneOf alternative") }
        }
        let types = object["type"]?.stringValue.map { [$0] } ?? object["type"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if value == .null {
            if object["nullable"]?.boolValue == true || types.contains("null") || object["type"] == nil { return }
            throw Violation(pointer: pointer, message: "must not be null")
        }
        if let allowed = object["enum"]?.arrayValue, !allowed.contains(value) {
            throw Violation(pointer: pointer, message: "must be one of \(allowed.map { $0.jsonString }.joined(separator: ", "))")
        }
        if !types.isEmpty && !types.contains(where: { Self.has(value, type: $0) }) {
            throw Violation(pointer: pointer, message: "must be \(types.joined(separator: " or ")), not \(value.typeName)")
        }
        switch value {
        case .string(let text):
            let length = text.count
            if let min = object["minLength"]?.intValue, length < min { throw Violation(pointer: pointer, message: "must be at least \(min) characters") }
            if let max = object["maxLength"]?.intValue, length > max { throw Violation(pointer: pointer, message: "must be at most \(max) characters") }
            if object["format"]?.stringValue == "date-time", ISO8601DateFormatter().date(from: text) == nil,
                (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) == nil
            {
                throw Violation(pointer: pointer, message: "must be an RFC 3339 date-time")
            }
            if object["format"]?.stringValue == "uuid", UUID(uuidString: text) == nil { throw Violation(pointer: pointer, message: "must be a UUID") }
        case .integer, .number:
            let number = value.doubleValue ?? 0
            if let min = object["minimum"]?.doubleValue, number < min { throw Violation(pointer: pointer, message: "must be ≥ \(min)") }
            if let max = object["maximum"]?.doubleValue, number > max { throw Violation(pointer: pointer, message: "must be ≤ \(max)") }
        case .array(let items):
            if let min = object["minItems"]?.intValue, items.count < min { throw Violation(pointer: pointer, message: "needs at least \(min) items") }
            if let max = object["maxItems"]?.intValue, items.count > max { throw Violation(pointer: pointer, message: "allows at most \(max) items") }
            if let itemSchema = object["items"] {
                for (index, item) in items.enumerated() { try check(item, itemSchema, "\(pointer)/\(index)", depth: depth + 1) }
            }
        case .object(let fields):
            for name in object["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where fields[name] == nil {
                throw Violation(pointer: "\(pointer)/\(JSONSchemaReader.escape(name))", message: "is required")
            }
            let properties = object["properties"]?.objectValue ?? [:]
            for (name, field) in fields {
                let fieldPointer = "\(pointer)/\(JSONSchemaReader.escape(name))"
                if let propertySchema = properties[name] {
                    try check(field, propertySchema, fieldPointer, depth: depth + 1)
                } else if object["additionalProperties"] == .bool(false) {
                    throw Violation(pointer: fieldPointer, message: "is not a known property")
                } else if let extra = object["additionalProperties"], extra.objectValue != nil {
                    try check(field, extra, fieldPointer, depth: depth + 1)
                }
            }
        default: break
        }
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("array", .array), ("object", .object), ("null", .null): true
        case ("integer", .integer): true
        case ("integer", .number(let number)): number.rounded() == number
        case ("number", .integer), ("number", .number): true
        default: false
        }
    }

    /// A path or query parameter arrives as text: read it as the schema's type.
    public static func coerce(_ text: String, schema: JSONValue) -> JSONValue {
        switch schema["type"]?.stringValue {
        case "integer": Int64(text).map(JSONValue.integer) ?? .string(text)
        case "number": Double(text).map(JSONValue.number) ?? .string(text)
        case "boolean": text == "true" ? .bool(true) : text == "false" ? .bool(false) : .string(text)
        default: .string(text)
        }
    }
}
