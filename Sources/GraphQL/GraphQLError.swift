import Runtime

/// One entry of a GraphQL answer's `errors`: pg_graphql's message where it has one, where in the
/// document, where in the answer, and our stable code (`extensions.code`, MB720–MB732, or a
/// SQLSTATE / PostgREST code from the database).
public struct GraphQLError: Error, Sendable, CustomStringConvertible {
    public enum PathComponent: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    public var message: String
    public var code: String
    public var locations: [SourceLocation]
    public var path: [PathComponent]
    /// A request error (the document, operation or variables are unusable), as opposed to an
    /// error while executing: with `application/graphql-response+json` it is answered 400.
    public var isRequestError: Bool

    public init(_ message: String, code: String, at location: SourceLocation? = nil, path: [PathComponent] = [], isRequestError: Bool = true) {
        self.message = message
        self.code = code
        self.locations = location.map { [$0] } ?? []
        self.path = path
        self.isRequestError = isRequestError
    }

    public var description: String { "\(code): \(message)" }

    public var json: JSONValue {
        var object: JSONObject = ["message": .string(message)]
        if !locations.isEmpty {
            object["locations"] = .array(locations.map { .object(["line": .integer(Int64($0.line)), "column": .integer(Int64($0.column))]) })
        }
        if !path.isEmpty {
            object["path"] = .array(path.map { component in
                switch component {
                case .key(let key): .string(key)
                case .index(let index): .integer(Int64(index))
                }
            })
        }
        object["extensions"] = .object(["code": .string(code)])
        return .object(object)
    }

    // MARK: - The codes (docs/errors.md)

    static func syntax(_ message: String, at location: SourceLocation) -> GraphQLError {
        GraphQLError("Syntax Error: \(message)", code: "MB720", at: location)
    }

    static func validation(_ message: String, at location: SourceLocation? = nil) -> GraphQLError {
        GraphQLError(message, code: "MB721", at: location)
    }

    static func operation(_ message: String) -> GraphQLError {
        GraphQLError(message, code: "MB722")
    }

    static func variables(_ message: String, at location: SourceLocation? = nil) -> GraphQLError {
        GraphQLError(message, code: "MB723", at: location)
    }

    static func cursor(_ message: String, at location: SourceLocation?) -> GraphQLError {
        GraphQLError(message, code: "MB730", at: location, isRequestError: false)
    }
}
