import Foundation
import Runtime

/// Change events for rows written through the REST API: how subscribers of a source that cannot
/// do logical decoding still hear of the changes made through mini-baas (not of writes made
/// elsewhere — nothing can tell us of those).
public enum RestWriteChanges {
    public enum Operation: Sendable {
        case insert, update, delete
    }

    /// `rows` is what the write statement answered as `changes`: each written row, every column
    /// (after the change; before it for a delete), and `_mb_inserted` for an upsert's rows.
    public static func events(rows: String, entity: Entity, operation: Operation, at time: Date = Date()) -> [ChangeEvent] {
        guard let written = try? JSONValue.parse(Array(rows.utf8)).arrayValue else { return [] }
        let stamp = timestamp(time)
        let columns = entity.columns.map { (name: $0.name, type: $0.nativeType) }
        return written.compactMap { row -> ChangeEvent? in
            guard var record = row.objectValue else { return nil }
            let inserted = record["_mb_inserted"]?.boolValue
            record["_mb_inserted"] = nil
            // As with the default replica identity: an update's old row is its key.
            var key = JSONObject()
            for column in entity.primaryKey { key[column] = record[column] }
            switch operation {
            case .insert where inserted == false, .update:
                return ChangeEvent(
                    schema: entity.schema, table: entity.name, kind: .update, commitTimestamp: stamp, record: record, oldRecord: key,
                    columns: columns)
            case .insert:
                return ChangeEvent(
                    schema: entity.schema, table: entity.name, kind: .insert, commitTimestamp: stamp, record: record, oldRecord: [:],
                    columns: columns)
            case .delete:
                return ChangeEvent(
                    schema: entity.schema, table: entity.name, kind: .delete, commitTimestamp: stamp, record: [:], oldRecord: record,
                    columns: columns)
            }
        }
    }

    static func timestamp(_ time: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: time)
    }
}
