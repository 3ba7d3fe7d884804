import Runtime

/// One committed row change, as every realtime subscriber and cache sees it, whatever captured it.
public struct ChangeEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case insert = "INSERT"
        case update = "UPDATE"
        case delete = "DELETE"
    }

    public var schema: String
    public var table: String
    public var kind: Kind
    /// ISO 8601, the transaction's commit time.
    public var commitTimestamp: String
    /// The row after the change (empty for a delete).
    public var record: JSONObject
    /// The row before it: every column with REPLICA IDENTITY FULL, else the key columns (updates
    /// and deletes only).
    public var oldRecord: JSONObject
    public var columns: [(name: String, type: String)]
    /// Where the change is in the source's write-ahead log (captured changes only): stable when
    /// the same changes are read again, so what is derived from it (webhook message ids) is too.
    public var position: UInt64?

    public init(
        schema: String, table: String, kind: Kind, commitTimestamp: String, record: JSONObject, oldRecord: JSONObject,
        columns: [(name: String, type: String)]
    ) {
        self.schema = schema
        self.table = table
        self.kind = kind
        self.commitTimestamp = commitTimestamp
        self.record = record
        self.oldRecord = oldRecord
        self.columns = columns
    }

    public static func == (lhs: ChangeEvent, rhs: ChangeEvent) -> Bool {
        lhs.schema == rhs.schema && lhs.table == rhs.table && lhs.kind == rhs.kind && lhs.commitTimestamp == rhs.commitTimestamp
            && lhs.record == rhs.record && lhs.oldRecord == rhs.oldRecord && lhs.columns.map(\.name) == rhs.columns.map(\.name)
            && lhs.columns.map(\.type) == rhs.columns.map(\.type)
    }
}

/// Reads wal2json's format-version 2 (one JSON object per change, with `B`/`C` around each
/// transaction) into change events.
public enum Wal2JSONDecoder {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The change in one output row, or nil for transaction markers and messages.
    public static func decode(_ text: String, commitTimestamp: String?) throws(Failure) -> ChangeEvent? {
        let value: JSONValue
        do { value = try JSONValue.parse(Array(text.utf8)) } catch { throw Failure(description: "wal2json output is not JSON: \(error)") }
        guard let action = value["action"]?.stringValue else { throw Failure(description: "wal2json output has no action") }
        let kind: ChangeEvent.Kind
        switch action {
        case "I": kind = .insert
        case "U": kind = .update
        case "D": kind = .delete
        default: return nil
        }
        guard let schema = value["schema"]?.stringValue, let table = value["table"]?.stringValue else {
            throw Failure(description: "wal2json change has no schema or table")
        }
        var columns: [(name: String, type: String)] = []
        let record = row(value["columns"], types: &columns)
        var oldTypes: [(name: String, type: String)] = []
        let old = row(value["identity"], types: &oldTypes)
        if kind == .delete { columns = oldTypes }
        let stamp = value["timestamp"]?.stringValue ?? commitTimestamp ?? ""
        return ChangeEvent(
            schema: schema, table: table, kind: kind, commitTimestamp: isoTimestamp(stamp), record: record, oldRecord: old,
            columns: columns)
    }

    /// wal2json's `[{name, type, value}]` as an object. json/jsonb arrive as text: they are parsed,
    /// so subscribers get the document, as from the REST API.
    static func row(_ value: JSONValue?, types: inout [(name: String, type: String)]) -> JSONObject {
        var object = JSONObject()
        for column in value?.arrayValue ?? [] {
            guard let name = column["name"]?.stringValue else { continue }
            let type = column["type"]?.stringValue ?? "text"
            types.append((name, type))
            var field = column["value"] ?? .null
            if type == "json" || type == "jsonb", case .string(let text) = field, let parsed = try? JSONValue.parse(Array(text.utf8)) {
                field = parsed
            }
            object[name] = field
        }
        return object
    }

    /// `2026-11-28 21:47:51.007303+00` → `2026-11-28T21:47:51.007303+00:00`.
    static func isoTimestamp(_ text: String) -> String {
        var result = text.replacingOccurrences(of: " ", with: "T")
        if let sign = result.lastIndex(where: { $0 == "+" || $0 == "-" }), result.distance(from: sign, to: result.endIndex) == 3 {
            result += ":00"
        }
        return result
    }
}
