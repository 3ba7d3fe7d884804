/// An error of the REST surface, in PostgREST's terms: its code, the HTTP status that fits, and
/// what to tell the client.
public struct RestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var details: String?
    public var hint: String?

    public init(status: Int, code: String, message: String, details: String? = nil, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
    }

    public var description: String { "\(code): \(message)" }

    static func parse(_ message: String, details: String? = nil) -> RestError {
        RestError(status: 400, code: "PGRST100", message: message, details: details)
    }
    public static func unknownTable(_ name: String) -> RestError {
        RestError(status: 404, code: "PGRST205", message: "Could not find the table '\(name)' in the schema cache")
    }
    static func unknownColumn(_ column: String, in entity: String) -> RestError {
        RestError(status: 400, code: "PGRST204", message: "Could not find the '\(column)' column of '\(entity)' in the schema cache")
    }
    static func unknownFunction(_ name: String) -> RestError {
        RestError(status: 404, code: "PGRST202", message: "Could not find the function '\(name)' in the schema cache")
    }
    static func noRelation(_ from: String, _ to: String) -> RestError {
        RestError(
            status: 400, code: "PGRST200", message: "Could not find a relationship between '\(from)' and '\(to)' in the schema cache")
    }
    static func ambiguousRelation(_ from: String, _ to: String, _ candidates: [String]) -> RestError {
        RestError(
            status: 300, code: "PGRST201", message: "Could not embed because more than one relationship was found for '\(from)' and '\(to)'",
            details: candidates.joined(separator: ", "), hint: "Try changing '\(to)' to one of: " + candidates.map { "\(to)!\($0)" }.joined(separator: ", "))
    }
    public static func singular(_ count: Int) -> RestError {
        RestError(
            status: 406, code: "PGRST116", message: "JSON object requested, multiple (or no) rows returned",
            details: "The result contains \(count) rows")
    }
}
