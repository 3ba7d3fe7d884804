import Runtime
import Tenancy

/// The fields of a registration request that are read as registration goes, not up front: each is
/// checked at the point it always was, so a request with several mistakes is refused for the same
/// one as before. Type errors read exactly as the admin API's own field errors (Edge's `JSONBody`).
struct RegistrationFields {
    let values: JSONObject

    init(_ values: JSONObject) { self.values = values }

    func string(_ field: String) throws -> String? {
        guard let value = values[field], value != .null else { return nil }
        guard let string = value.stringValue else { throw RegistrationError.invalidField(field, "expected a string, got \(value.typeName)") }
        return string
    }

    func requiredString(_ field: String) throws -> String {
        guard let value = try string(field) else { throw RegistrationError.invalidField(field, "is required") }
        return value
    }

    func bool(_ field: String) throws -> Bool? {
        guard let value = values[field], value != .null else { return nil }
        guard let bool = value.boolValue else { throw RegistrationError.invalidField(field, "expected true or false, got \(value.typeName)") }
        return bool
    }

    func object(_ field: String) throws -> JSONObject? {
        guard let value = values[field], value != .null else { return nil }
        guard let object = value.objectValue else { throw RegistrationError.invalidField(field, "expected an object, got \(value.typeName)") }
        return object
    }

    /// Upstream credentials (`headers`): header names and one-line values, nothing that could
    /// split a request.
    func headers() throws -> JSONObject {
        var headers = JSONObject()
        for (header, value) in try object("headers") ?? [:] {
            guard let text = value.stringValue, !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }),
                !header.isEmpty, header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x3A })
            else { throw RegistrationError.invalidField("headers.\(header)", "expected a header name with a one-line string value") }
            headers[header] = .string(text)
        }
        return headers
    }

    /// A PostgreSQL-backed source from its URL (`text`, given in `urlField`) and its pool settings:
    /// `schemas`, `maxConnections` (1–100), `acquireTimeoutMs` (10–60000), `preparedStatements`.
    func postgres(name: String, kind: SourceKind, url text: String, urlField: String) throws -> SourceCatalog.PostgresRegistration {
        let url: PostgresURL
        do { url = try PostgresURL(text) } catch { throw RegistrationError.invalidField(urlField, "\(error)") }
        var schemas = ["public"]
        if let value = values["schemas"] {
            guard let list = value.arrayValue, !list.isEmpty, list.count <= 50,
                let names = Optional(list.compactMap(\.stringValue)), names.count == list.count, names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 })
            else { throw RegistrationError.invalidField("schemas", "must be a non-empty list of schema names") }
            schemas = names
        }
        var maxConnections = 10
        if let value = values["maxConnections"] {
            guard let number = value.intValue, (1...100).contains(number) else {
                throw RegistrationError.invalidField("maxConnections", "must be a whole number from 1 to 100")
            }
            maxConnections = Int(number)
        }
        var registration = SourceCatalog.PostgresRegistration(name: name, kind: kind.rawValue, url: url, schemas: schemas, maxConnections: maxConnections)
        if let value = values["acquireTimeoutMs"] {
            guard let number = value.intValue, (10...60_000).contains(number) else {
                throw RegistrationError.invalidField("acquireTimeoutMs", "must be a whole number from 10 to 60000")
            }
            registration.extra["acquireTimeoutMs"] = .integer(number)
        }
        registration.extra["preparedStatements"] = try preparedStatements()
        return registration
    }

    /// `preparedStatements`, when given: a boolean.
    func preparedStatements() throws -> JSONValue? {
        guard let value = values["preparedStatements"] else { return nil }
        guard case .bool = value else {
            throw RegistrationError.invalidField("preparedStatements", "must be true or false (false for a pooler in transaction mode)")
        }
        return value
    }
}
