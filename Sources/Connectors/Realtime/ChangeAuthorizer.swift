import Foundation
import Runtime
import Tenancy

/// What one subscriber may see of a change: the entity's read policy for its role and claims,
/// evaluated in process against the changed row, and the columns it may read.
///
/// Conditions on the row's own columns are decided here without a database round trip. A
/// condition that reaches through a relation cannot be decided from the change alone; such
/// changes are withheld (fail closed) rather than queried per subscriber.
public struct ChangeAuthorizer: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Deliver with these fields (already cut down to the readable columns).
        case deliver(record: JSONObject, oldRecord: JSONObject)
        case withhold
    }

    /// nil when the subscriber bypasses policies.
    let columns: Set<String>?
    let rows: RowRule?
    let keyColumns: [String]

    /// Fails with the permission error the REST API would give when the role may not read the
    /// entity at all, or may not read a column it selected or filters on.
    public init(model: SchemaModel, entity: Entity, access: Access, select: [String]?, filterColumns: [String]) throws(RestError) {
        let compiler = PolicyCompiler(model: model, access: access)
        let grant = try compiler.grant(entity, .read)
        for name in (select ?? []) + filterColumns {
            guard entity.column(named: name) != nil else {
                throw RestError(status: 400, code: "PGRST204", message: "column '\(name)' of '\(entity.name)' does not exist")
            }
            if let allowed = grant?.columns, !allowed.contains(name) { throw access.deniedColumn(name, entity.name, .read) }
        }
        var visible = grant?.columns
        if let select { visible = visible.map { $0.intersection(select) } ?? Set(select) }
        self.columns = visible
        self.rows = grant?.rows
        self.keyColumns = entity.primaryKey
    }

    public func verdict(for event: ChangeEvent) -> Verdict {
        switch event.kind {
        case .insert, .update:
            if let rows, Self.evaluate(rows, event.record) != true { return .withhold }
            return .deliver(record: project(event.record), oldRecord: event.kind == .update ? project(oldRow(event)) : [:])
        case .delete:
            // The row is gone; with a full old image its old values decide, else only its key is
            // told (as Supabase does under RLS), and only to those who may read the entity.
            if let rows, event.oldRecord.count > keyColumns.count, Self.evaluate(rows, event.oldRecord) != true { return .withhold }
            return .deliver(record: [:], oldRecord: project(oldRow(event)))
        }
    }

    /// Without REPLICA IDENTITY FULL only key columns are known of the old row.
    private func oldRow(_ event: ChangeEvent) -> JSONObject {
        event.oldRecord
    }

    private func project(_ row: JSONObject) -> JSONObject {
        guard let columns else { return row }
        var result = JSONObject()
        for (name, value) in row where columns.contains(name) { result[name] = value }
        return result
    }

    /// true/false when the row decides it; nil when it cannot (a related entity's condition).
    static func evaluate(_ rule: RowRule, _ row: JSONObject) -> Bool? {
        switch rule {
        case .always(let value): return value
        case .compare(let column, let op, let value): return compare(row[column.name] ?? .null, op, value)
        case .related: return nil
        case .and(let parts):
            var unknown = false
            for part in parts {
                switch evaluate(part, row) {
                case false?: return false
                case nil: unknown = true
                default: break
                }
            }
            return unknown ? nil : true
        case .or(let parts):
            var unknown = false
            for part in parts {
                switch evaluate(part, row) {
                case true?: return true
                case nil: unknown = true
                default: break
                }
            }
            return unknown ? nil : false
        case .not(let inner): return evaluate(inner, row).map { !$0 }
        }
    }

    /// SQL semantics: a comparison with null is not true.
    static func compare(_ left: JSONValue, _ op: PolicyOperator, _ right: JSONValue) -> Bool {
        if op == .isNull {
            let wanted = right.boolValue ?? true
            return (left == .null) == wanted
        }
        if left == .null || right == .null { return false }
        switch op {
        case .eq: return order(left, right) == .orderedSame
        case .neq: return order(left, right).map { $0 != .orderedSame } ?? true
        case .gt: return order(left, right) == .orderedDescending
        case .gte: return [.orderedDescending, .orderedSame].contains(order(left, right))
        case .lt: return order(left, right) == .orderedAscending
        case .lte: return [.orderedAscending, .orderedSame].contains(order(left, right))
        case .in: return (right.arrayValue ?? []).contains { order(left, $0) == .orderedSame }
        case .nin: return !(right.arrayValue ?? []).contains { order(left, $0) == .orderedSame }
        case .like, .ilike:
            guard case .string(let text) = left, case .string(let pattern) = right,
                let regex = try? ChangeFilter.likePattern(pattern, caseInsensitive: op == .ilike)
            else { return false }
            let range = NSRange(text.startIndex..., in: text)
            return regex.firstMatch(in: text, options: [.anchored], range: range).map { $0.range == range } ?? false
        case .contains:
            if case .array(let items) = left { return items.contains(right) }
            if case .string(let text) = left, case .string(let part) = right { return text.contains(part) }
            return false
        case .isNull: return false
        }
    }

    /// Numbers by value (a uuid or text key compared with a claim is text), everything else
    /// by equality.
    static func order(_ left: JSONValue, _ right: JSONValue) -> ComparisonResult? {
        if let a = left.doubleValue, let b = right.doubleValue {
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        }
        if case .string(let a) = left, case .string(let b) = right {
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        }
        if let a = left.doubleValue, case .string(let text) = right, let b = Double(text) {
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        }
        if case .string(let text) = left, let a = Double(text), let b = right.doubleValue {
            return a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        }
        return left == right ? .orderedSame : nil
    }
}
