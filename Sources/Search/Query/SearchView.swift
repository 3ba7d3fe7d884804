import Runtime

/// What one caller may see of an index: its read policy's columns and rows. Hidden columns are
/// neither searched, returned nor nameable; hidden rows are removed before ranking, so totals
/// and facets never count them.
public struct SearchView: Sendable {
    /// nil: every column.
    public var columns: Set<String>?
    /// nil: every row. Reads a document's top-level fields through the closure it is given;
    /// unknown answers (a condition the process cannot decide) hide the row.
    public var rows: (@Sendable ((String) -> JSONValue?) -> Bool)?

    public init(columns: Set<String>? = nil, rows: (@Sendable ((String) -> JSONValue?) -> Bool)? = nil) {
        self.columns = columns
        self.rows = rows
    }

    public static let everything = SearchView()

    /// Whether an attribute path (`author.name`) is readable: its top-level column is.
    public func allows(_ attribute: String) -> Bool {
        guard let columns else { return true }
        if columns.contains(attribute) { return true }
        guard let dot = attribute.firstIndex(of: ".") else { return false }
        return columns.contains(String(attribute[..<dot]))
    }

    /// The document cut down to the readable columns.
    public func project(_ document: JSONObject) -> JSONObject {
        guard let columns else { return document }
        var result = JSONObject()
        for (name, value) in document where columns.contains(name) { result[name] = value }
        return result
    }
}
