/// An error of the search API, in Meilisearch's terms where the meaning is the same (its official
/// clients read `code`, `type` and `link`) and in ours (`MB88x`) otherwise; `details`/`hint` keep
/// the design's error shape.
public struct SearchError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case invalidRequest = "invalid_request"
        case auth
        case `internal`
        case system
    }

    public let status: Int
    public let code: String
    public let message: String
    public let kind: Kind
    public var hint: String?

    public init(status: Int, code: String, message: String, kind: Kind = .invalidRequest, hint: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.kind = kind
        self.hint = hint
    }

    public var description: String { "\(code): \(message)" }

    /// Where Meilisearch documents the code (ours point at the project's error list).
    public var link: String {
        code.hasPrefix("MB") ? "https://github.com/mini-baas/mini-baas/blob/main/docs/errors.md#\(code.lowercased())"
            : "https://docs.meilisearch.com/errors#\(code)"
    }

    public static func indexNotFound(_ uid: String) -> SearchError {
        SearchError(status: 404, code: "index_not_found", message: "Index `\(uid)` not found.")
    }
    public static func indexExists(_ uid: String) -> SearchError {
        SearchError(status: 409, code: "index_already_exists", message: "Index `\(uid)` already exists.")
    }
    public static func badFilter(_ message: String) -> SearchError {
        SearchError(status: 400, code: "invalid_search_filter", message: message)
    }
    public static func badSort(_ message: String) -> SearchError {
        SearchError(status: 400, code: "invalid_search_sort", message: message)
    }
    public static func badRequest(_ code: String, _ message: String) -> SearchError {
        SearchError(status: 400, code: code, message: message)
    }
    /// A column the caller's read policy hides, named in a filter, sort, facet or attribute list.
    public static func hiddenAttribute(_ name: String) -> SearchError {
        SearchError(status: 403, code: "MB884", message: "attribute `\(name)` is not readable by this role", kind: .auth,
                    hint: "the role's read policy does not include this column")
    }
}
