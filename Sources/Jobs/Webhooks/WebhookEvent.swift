import Connectors
import Crypto
import Foundation
import Runtime

/// A database change as a webhook sends it: Supabase's database-webhook body (`type`, `table`,
/// `schema`, `record`, `old_record`), and the message id every attempt of it carries.
public enum WebhookEvent {
    public static func body(_ change: ChangeEvent) -> JSONObject {
        [
            "type": .string(change.kind.rawValue), "table": .string(change.table), "schema": .string(change.schema),
            "record": change.kind == .delete ? .null : .object(change.record),
            "old_record": change.kind == .insert ? .null : .object(change.oldRecord),
        ]
    }

    /// What `POST …/webhooks/{id}/test` sends.
    public static func testBody(schema: String, table: String) -> JSONObject {
        ["type": "TEST", "table": .string(table), "schema": .string(schema), "record": .object([:]), "old_record": .null]
    }

    /// `msg_…`, the `webhook-id` receivers dedupe by. A captured change has one from its place in
    /// the write-ahead log, so a feed that reads the same changes again (a node died before
    /// confirming them) makes the same ids and the store keeps one job each. A change published
    /// from a REST write has no such place: it gets a fresh id.
    /// The webhook, the table and the row's key values: a delete's from its old row, others'
    /// from the new one. Without key columns, the table (its changes then go one at a time).
    public static func orderingKey(webhook: String, change: ChangeEvent, keyColumns: [String]) -> String {
        let row = change.kind == .delete ? change.oldRecord : change.record
        // A JSON array: unambiguous, and storable in jsonb (which refuses NUL separators).
        let parts: [JSONValue] = [.string(webhook), .string("\(change.schema).\(change.table)")] + keyColumns.map { row[$0] ?? .null }
        return String(decoding: JSONValue.array(parts).encoded(), as: UTF8.self)
    }

    public static func messageID(webhook: String, change: ChangeEvent, index: Int) -> String {
        guard let position = change.position else {
            return "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        }
        let identity = "\(webhook)\u{0}\(position)\u{0}\(index)\u{0}\(change.schema).\(change.table)\u{0}\(change.kind.rawValue)"
        let digest = SHA256.hash(data: Array(identity.utf8))
        return "msg_" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }
}
