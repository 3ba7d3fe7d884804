import Runtime

/// Pinecone's metadata filter: `{"genre": {"$eq": "drama"}, "year": {"$gte": 2020}}`, a bare
/// value meaning `$eq`, `$and`/`$or` over lists of filters; operators `$eq $ne $gt $gte $lt $lte
/// $in $nin $exists`. Array metadata matches `$eq`/`$in` when any element does, as Pinecone's.
public indirect enum MetadataFilter: Sendable, Equatable {
    case condition(field: String, op: String, value: JSONValue)
    case and([MetadataFilter])
    case or([MetadataFilter])

    static let operators: Set<String> = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]

    public static func parse(_ value: JSONValue?, depth: Int = 0) throws(SearchError) -> MetadataFilter? {
        guard let value, value != .null else { return nil }
        guard depth < 32 else { throw failure("the filter is nested too deeply") }
        guard let object = value.objectValue else { throw failure("a filter is an object, not \(value.typeName)") }
        var parts: [MetadataFilter] = []
        for (key, inner) in object {
            switch key {
            case "$and", "$or":
                guard let items = inner.arrayValue, !items.isEmpty else { throw failure("`\(key)` takes a non-empty array of filters") }
                var list: [MetadataFilter] = []
                for item in items {
                    if let parsed = try parse(item, depth: depth + 1) { list.append(parsed) }
                }
                parts.append(key == "$and" ? .and(list) : .or(list))
            default:
                guard !key.hasPrefix("$") else { throw failure("unknown operator `\(key)` at the top of a filter") }
                if let conditions = inner.objectValue {
                    guard !conditions.isEmpty else { throw failure("`\(key)` has no condition") }
                    for (op, operand) in conditions {
                        guard operators.contains(op) else { throw failure("unknown operator `\(op)` on `\(key)`") }
                        try check(op, operand, field: key)
                        parts.append(.condition(field: key, op: op, value: operand))
                    }
                } else {
                    try check("$eq", inner, field: key)
                    parts.append(.condition(field: key, op: "$eq", value: inner))
                }
            }
        }
        guard !parts.isEmpty else { return nil }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    private static func check(_ op: String, _ operand: JSONValue, field: String) throws(SearchError) {
        switch op {
        case "$in", "$nin":
            guard let items = operand.arrayValue, items.allSatisfy(scalar) else { throw failure("`\(op)` on `\(field)` takes an array of strings, numbers or booleans") }
        case "$exists":
            guard operand.boolValue != nil else { throw failure("`$exists` on `\(field)` takes true or false") }
        case "$gt", "$gte", "$lt", "$lte":
            guard operand.doubleValue != nil else { throw failure("`\(op)` on `\(field)` takes a number") }
        default:
            guard scalar(operand) else { throw failure("`\(op)` on `\(field)` takes a string, number or boolean") }
        }
    }

    private static func scalar(_ value: JSONValue) -> Bool {
        switch value {
        case .string, .integer, .number, .bool: true
        default: false
        }
    }

    static func failure(_ message: String) -> SearchError {
        SearchError(status: 400, code: "MB897", message: "invalid filter: \(message)")
    }

    public func matches(_ metadata: JSONObject?) -> Bool {
        switch self {
        case .and(let parts): return parts.allSatisfy { $0.matches(metadata) }
        case .or(let parts): return parts.contains { $0.matches(metadata) }
        case .condition(let field, let op, let operand):
            let value = metadata?[field]
            if op == "$exists" { return (value != nil) == (operand.boolValue ?? true) }
            guard let value else { return op == "$ne" || op == "$nin" }
            let values = value.arrayValue ?? [value]
            switch op {
            case "$eq": return values.contains { Self.equal($0, operand) }
            case "$ne": return !values.contains { Self.equal($0, operand) }
            case "$in": return values.contains { item in operand.arrayValue?.contains { Self.equal(item, $0) } ?? false }
            case "$nin": return !values.contains { item in operand.arrayValue?.contains { Self.equal(item, $0) } ?? false }
            default:
                guard let number = value.doubleValue, let bound = operand.doubleValue else { return false }
                switch op {
                case "$gt": return number > bound
                case "$gte": return number >= bound
                case "$lt": return number < bound
                default: return number <= bound
                }
            }
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }
}
