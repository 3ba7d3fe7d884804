import Foundation
import Runtime
import Tenancy

/// What one subscriber may see of a change: the entity's read policy for its role and claims,
/// evaluated in process against the changed row, and the columns it may read.
///
/// Conditions on the row's own columns are decided here without a database round trip. A
/// condition that reaches through a relation cannot be decided from the change alone: the
/// rows it leaves open are `questions`, which the caller answers with one query per change for
/// every audience at once (`SQLRenderer.decide`); an unanswered question withholds (fail closed).
public struct ChangeAuthorizer: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Deliver with these fields (already cut down to the readable columns).
        case deliver(record: JSONObject, oldRecord: JSONObject)
        case withhold
    }

    /// Which image of the changed row a question is about.
    public enum Side: Int, Sendable, Hashable {
        case new = 0
        case old = 1
    }

    /// nil when the subscriber bypasses policies.
    let columns: Set<String>?
    public let rows: RowRule?
    let keyColumns: [String]
    /// Whether the rule reaches through a relation, so that the database may have to decide.
    let consultsDatabase: Bool
    /// The rule as text, so audiences whose rules came out the same (claims the rule does not
    /// read differ) share one question to the database.
    public let ruleKey: String

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
        self.consultsDatabase = (grant?.rows).map(Self.reachesRelation) ?? false
        self.ruleKey = consultsDatabase ? String(describing: grant?.rows) : ""
    }

    /// The columns the caller may read (nil: all of them).
    public var visibleColumns: Set<String>? { columns }

    /// Whether the caller's read policy lets it see `row`, decided in process; a condition
    /// through a relation (which only the database can decide) hides the row: fail closed.
    public func allows(_ row: JSONObject) -> Bool {
        guard let rows else { return true }
        return Self.evaluate(rows, row) == true
    }

    /// The same for a row read column by column (search indexes keep rows in their own shape).
    public func allows(_ column: (String) -> JSONValue?) -> Bool {
        guard let rows else { return true }
        return Self.evaluate(rows, column) == true
    }

    /// The images of the row that only the database can decide for this change.
    public func questions(for event: ChangeEvent) -> [Side] {
        guard consultsDatabase, let rows else { return [] }
        var sides: [Side] = []
        switch event.kind {
        case .insert:
            if Self.evaluate(rows, event.record) == nil { sides.append(.new) }
        case .update:
            if Self.evaluate(rows, event.record) == nil { sides.append(.new) }
            // A key-only old image is told as it is either way.
            if event.oldRecord.count > keyColumns.count, Self.evaluate(rows, event.oldRecord) == nil { sides.append(.old) }
        case .delete:
            if event.oldRecord.count > keyColumns.count, Self.evaluate(rows, event.oldRecord) == nil { sides.append(.old) }
        }
        return sides
    }

    /// `answers`: the database's decisions on `questions` (a missing one counts as not visible).
    public func verdict(for event: ChangeEvent, answers: [Side: Bool] = [:]) -> Verdict {
        func visible(_ row: JSONObject, _ side: Side) -> Bool {
            guard let rows else { return true }
            if let decided = Self.evaluate(rows, row) { return decided }
            return consultsDatabase && answers[side] == true
        }
        switch event.kind {
        case .insert, .update:
            if !visible(event.record, .new) { return .withhold }
            guard event.kind == .update else { return .deliver(record: project(event.record), oldRecord: [:]) }
            // The old image is told only if the old row was visible too (an update that publishes a
            // draft must not reveal the draft); otherwise only its key.
            var old = event.oldRecord
            if !visible(old, .old) {
                var key = JSONObject()
                for (name, value) in old where keyColumns.contains(name) { key[name] = value }
                old = key
            }
            return .deliver(record: project(event.record), oldRecord: project(old))
        case .delete:
            // The row is gone; with a full old image its old values decide, else only its key is
            // told (as Supabase does under RLS), and only to those who may read the entity.
            if event.oldRecord.count > keyColumns.count, !visible(event.oldRecord, .old) { return .withhold }
            return .deliver(record: [:], oldRecord: project(event.oldRecord))
        }
    }

    private func project(_ row: JSONObject) -> JSONObject {
        guard let columns else { return row }
        var result = JSONObject()
        for (name, value) in row where columns.contains(name) { result[name] = value }
        return result
    }

    static func reachesRelation(_ rule: RowRule) -> Bool {
        switch rule {
        case .related: true
        case .always, .compare: false
        case .and(let parts), .or(let parts): parts.contains(where: reachesRelation)
        case .not(let inner): reachesRelation(inner)
        }
    }

    /// SQL's three values: true, false, or nil for unknown (a null operand, values that cannot be
    /// compared, a related entity's condition). Anything but true withholds the row, as a WHERE
    /// clause would.
    static func evaluate(_ rule: RowRule, _ row: JSONObject) -> Bool? {
        evaluate(rule) { row[$0] }
    }

    /// The same, reading the row's columns through `column` (rows kept in another shape).
    static func evaluate(_ rule: RowRule, _ column: (String) -> JSONValue?) -> Bool? {
        switch rule {
        case .always(let value): return value
        case .compare(let target, let op, let value): return compare(column(target.name) ?? .null, op, value, column: target)
        case .related: return nil
        case .and(let parts):
            var unknown = false
            for part in parts {
                switch evaluate(part, column) {
                case false?: return false
                case nil: unknown = true
                default: break
                }
            }
            return unknown ? nil : true
        case .or(let parts):
            var unknown = false
            for part in parts {
                switch evaluate(part, column) {
                case true?: return true
                case nil: unknown = true
                default: break
                }
            }
            return unknown ? nil : false
        case .not(let inner): return evaluate(inner, column).map { !$0 }
        }
    }

    static func compare(_ left: JSONValue, _ op: PolicyOperator, _ right: JSONValue, column: Column) -> Bool? {
        if op == .isNull {
            let wanted = right.boolValue ?? true
            return (left == .null) == wanted
        }
        if left == .null || right == .null { return nil }
        switch op {
        case .eq: return order(left, right, column).map { $0 == .orderedSame }
        case .neq: return order(left, right, column).map { $0 != .orderedSame }
        case .gt: return order(left, right, column).map { $0 == .orderedDescending }
        case .gte: return order(left, right, column).map { $0 != .orderedAscending }
        case .lt: return order(left, right, column).map { $0 == .orderedAscending }
        case .lte: return order(left, right, column).map { $0 != .orderedDescending }
        case .in, .nin:
            guard let items = right.arrayValue else { return nil }
            var unknown = false
            for item in items {
                switch order(left, item, column) {
                case .orderedSame?: return op == .in
                case nil: unknown = true
                default: break
                }
            }
            return unknown ? nil : op == .nin
        case .like, .ilike:
            guard case .string(let text) = left, case .string(let pattern) = right,
                let regex = try? ChangeFilter.likePattern(pattern, caseInsensitive: op == .ilike)
            else { return nil }
            let range = NSRange(text.startIndex..., in: text)
            return regex.firstMatch(in: text, options: [.anchored], range: range).map { $0.range == range } ?? false
        case .contains:
            if case .array(let items) = left { return items.contains(right) }
            if case .string(let text) = left, case .string(let part) = right { return text.contains(part) }
            return nil
        case .isNull: return nil
        }
    }

    /// Compares as the column's type would: numbers by value, booleans, timestamps and dates as
    /// instants, uuids without regard to case, text by code points. Nil when the two cannot be
    /// read as that type.
    static func order(_ left: JSONValue, _ right: JSONValue, _ column: Column) -> ComparisonResult? {
        func ordered<T: Comparable>(_ a: T, _ b: T) -> ComparisonResult { a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame }
        switch column.type {
        case .integer, .bigint, .number:
            guard let a = number(left), let b = number(right) else { return nil }
            return ordered(a, b)
        case .boolean:
            guard let a = boolean(left), let b = boolean(right) else { return nil }
            return a == b ? .orderedSame : (a ? .orderedDescending : .orderedAscending)
        case .datetime, .date:
            guard let a = instant(left), let b = instant(right) else { return nil }
            return ordered(a, b)
        case .uuid:
            guard case .string(let a) = left, case .string(let b) = right else { return nil }
            return ordered(a.lowercased(), b.lowercased())
        default:
            switch (left, right) {
            case (.string(let a), .string(let b)): return ordered(a, b)
            case (.array, _), (.object, _): return left == right ? .orderedSame : nil
            default:
                if let a = number(left), let b = number(right) { return ordered(a, b) }
                return left == right ? .orderedSame : nil
            }
        }
    }

    static func number(_ value: JSONValue) -> Double? {
        if let number = value.doubleValue { return number }
        if case .string(let text) = value { return Double(text) }
        return nil
    }

    static func boolean(_ value: JSONValue) -> Bool? {
        if let flag = value.boolValue { return flag }
        if case .string(let text) = value {
            switch text.lowercased() {
            case "true", "t", "1", "yes", "on": return true
            case "false", "f", "0", "no", "off": return false
            default: return nil
            }
        }
        return nil
    }

    /// wal2json's `2025-01-01 05:00:00+00`, ISO 8601 with or without fractions and zone, or a
    /// date: as seconds since 1970 (a value without a zone is taken as UTC).
    static func instant(_ value: JSONValue) -> Double? {
        guard case .string(var text) = value else { return nil }
        text = text.replacingOccurrences(of: " ", with: "T")
        if text.count == 10 { text += "T00:00:00Z" }
        if let sign = text.lastIndex(where: { $0 == "+" || $0 == "-" }), text.distance(from: text.startIndex, to: sign) > 10 {
            let zone = text[text.index(after: sign)...]
            if zone.count == 2 { text += ":00" }
        } else if !text.hasSuffix("Z") {
            text += "Z"
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}
