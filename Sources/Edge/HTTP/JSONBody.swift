import Foundation
import Hummingbird
import Runtime

/// Reads JSON request bodies strictly: bounded size, a JSON object, only known fields, each of the
/// right type — with an error that names the field.
struct JSONBody {
    let object: JSONObject

    static func read(_ request: Request, maxBytes: Int = 1 << 20) async throws -> JSONBody {
        if let type = request.headers.value(.contentType), !type.lowercased().hasPrefix("application/json") {
            throw APIError.unsupportedMediaType()
        }
        if let length = request.headers.value(.contentLength).flatMap(Int.init), length > maxBytes {
            throw APIError.bodyTooLarge(limit: maxBytes)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBytes)
        } catch {
            throw APIError.bodyTooLarge(limit: maxBytes)
        }
        guard buffer.readableBytes > 0 else { throw APIError.invalidJSON("the body is empty") }
        let value: JSONValue
        do {
            value = try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw APIError.invalidJSON("\(error)")
        }
        guard let object = value.objectValue else { throw APIError.invalidJSON("expected a JSON object, got \(value.typeName)") }
        return JSONBody(object: object)
    }

    init(object: JSONObject) { self.object = object }

    func allowOnly(_ fields: [String]) throws {
        let unknown = object.keys.filter { !fields.contains($0) }
        if !unknown.isEmpty { throw APIError.unknownFields(unknown, allowed: fields) }
    }

    func string(_ field: String) throws -> String? {
        guard let value = object[field], value != .null else { return nil }
        guard let string = value.stringValue else { throw APIError.invalidField(field, "expected a string, got \(value.typeName)") }
        return string
    }

    func requiredString(_ field: String) throws -> String {
        guard let value = try string(field) else { throw APIError.invalidField(field, "is required") }
        return value
    }

    func bool(_ field: String) throws -> Bool? {
        guard let value = object[field], value != .null else { return nil }
        guard let bool = value.boolValue else { throw APIError.invalidField(field, "expected true or false, got \(value.typeName)") }
        return bool
    }

    func int(_ field: String) throws -> Int? {
        guard let value = object[field], value != .null else { return nil }
        guard let number = value.intValue, let int = Int(exactly: number) else {
            throw APIError.invalidField(field, "expected an integer, got \(value.typeName)")
        }
        return int
    }

    func array(_ field: String) throws -> [JSONValue]? {
        guard let value = object[field], value != .null else { return nil }
        guard let array = value.arrayValue else { throw APIError.invalidField(field, "expected an array, got \(value.typeName)") }
        return array
    }

    func object(_ field: String) throws -> JSONObject? {
        guard let value = object[field], value != .null else { return nil }
        guard let object = value.objectValue else { throw APIError.invalidField(field, "expected an object, got \(value.typeName)") }
        return object
    }
}
