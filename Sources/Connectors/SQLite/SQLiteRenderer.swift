import Runtime
import SQLiteNIO
import Tenancy

/// One SQLite statement with its numbered binds (`?1`, `?2`…). Identifiers enter only through
/// `quote`, JSON keys through checked literals, values only as binds.
public struct SQLiteQuery: Sendable {
    public var sql = ""
    public private(set) var binds: [SQLiteData] = []
    private var aliases = 0

    public init(sql: String = "", binds: [SQLiteData] = []) {
        self.sql = sql
        self.binds = binds
    }

    public mutating func bind(_ value: SQLiteData) -> String {
        binds.append(value)
        return "?\(binds.count)"
    }

    mutating func alias(_ prefix: String) -> String {
        aliases += 1
        return "\(prefix)\(aliases)"
    }
}

/// Renders the planner's plans for a SQLite-hosted source, beside `SQLRenderer` for PostgreSQL:
/// the same plans, the same answers. A read is one statement answering one row — `body` (the
/// JSON array, built by `json_object` per row and joined in order), `page_count` and `total`.
/// Writes are rendered in pieces that `SQLiteWriter` runs in one transaction, since SQLite has no
/// data-modifying CTEs. What SQLite cannot express (full-text and range operators, regular
/// expressions, JSON containment of objects) is refused with MB350 naming the operator.
public struct SQLiteRenderer: Sendable {
    public init() {}

    // MARK: - Reads

    public func read(_ plan: ReadPlan, count: Bool) throws(RestError) -> SQLiteQuery {
        var query = SQLiteQuery()
        let inner = try select(plan, alias: "t0", into: &query)
        var total = "NULL"
        if count { total = try countExpression(plan, into: &query) }
        query.sql = "SELECT '[' || coalesce(group_concat(\"j\", ','), '') || ']' AS body, count(*) AS page_count, \(total) AS total FROM (\(inner)) AS \"_rows\""
        return query
    }

    /// `count(*)` of the rows a plan's conditions select (for `count=exact`, and for planned and
    /// estimated counts: SQLite keeps no row estimates, so they are exact too).
    public func count(_ plan: ReadPlan) throws(RestError) -> SQLiteQuery {
        var query = SQLiteQuery()
        query.sql = "SELECT " + (try countExpression(plan, into: &query)) + " AS total"
        return query
    }

    private func countExpression(_ plan: ReadPlan, into query: inout SQLiteQuery) throws(RestError) -> String {
        var where_ = try conditions(plan, alias: "c0", into: &query)
        if where_.isEmpty { where_ = "1" }
        return "(SELECT count(*) FROM \(quote(plan.entity.name)) AS \"c0\" WHERE \(where_))"
    }

    /// `SELECT json_object(…) AS j FROM <entity> AS alias WHERE … ORDER BY … LIMIT … OFFSET …`
    func select(_ plan: ReadPlan, alias: String, into query: inout SQLiteQuery, extraWhere: [String] = []) throws(RestError) -> String {
        var pairs: [String] = []
        for column in plan.columns {
            var expression = try outputExpression(column.field, alias: alias, entity: plan.entity, into: &query)
            if let cast = column.cast { expression = try self.cast(column.field, alias: alias, entity: plan.entity, to: cast, into: &query) }
            pairs.append("\(SQLiteValueCoder.literal(column.outputName)), \(expression)")
        }
        for (index, embed) in plan.embeds.enumerated() {
            let child = "\(alias)_\(index)"
            pairs.append("\(SQLiteValueCoder.literal(embed.outputName)), \(try embedExpression(embed, parent: alias, child: child, into: &query))")
        }
        var sql = "SELECT json_object(\(pairs.joined(separator: ", "))) AS \"j\" FROM \(quote(plan.entity.name)) AS \(quote(alias))"
        var wheres = extraWhere
        let own = try conditions(plan, alias: alias, into: &query)
        if !own.isEmpty { wheres.append(own) }
        if !wheres.isEmpty { sql += " WHERE " + wheres.joined(separator: " AND ") }
        sql += try tail(plan, alias: alias, into: &query)
        return sql
    }

    func tail(_ plan: ReadPlan, alias: String, into query: inout SQLiteQuery) throws(RestError) -> String {
        var sql = ""
        if !plan.order.isEmpty {
            var terms: [String] = []
            for term in plan.order {
                var text = try fieldExpression(term.field, alias: alias, entity: plan.entity, into: &query)
                if term.descending { text += " DESC" }
                // PostgreSQL's defaults: NULLs sort as larger than any value.
                switch term.nulls ?? (term.descending ? .first : .last) {
                case .first: text += " NULLS FIRST"
                case .last: text += " NULLS LAST"
                }
                terms.append(text)
            }
            sql += " ORDER BY " + terms.joined(separator: ", ")
        }
        if let limit = plan.limit {
            sql += " LIMIT \(query.bind(.integer(limit)))"
        } else if let offset = plan.offset, offset > 0 {
            sql += " LIMIT -1"
        }
        if let offset = plan.offset, offset > 0 { sql += " OFFSET \(query.bind(.integer(offset)))" }
        return sql
    }

    /// The row filter of a plan: its own conditions, its policy rule and its `!inner` embeds.
    func conditions(_ plan: ReadPlan, alias: String, into query: inout SQLiteQuery) throws(RestError) -> String {
        var parts: [String] = []
        for condition in plan.conditions { parts.append(try self.condition(alias, condition, entity: plan.entity, into: &query)) }
        if let rule = plan.rowRule { parts.append(try self.rule(rule, alias: alias, into: &query)) }
        for (index, embed) in plan.embeds.enumerated() where embed.inner {
            let child = "e\(alias)_\(index)"
            var where_ = [try join(embed.relation, parent: alias, child: child, junctionRule: embed.junctionRule, into: &query)]
            let own = try conditions(embed.plan, alias: child, into: &query)
            if !own.isEmpty { where_.append(own) }
            parts.append("EXISTS (SELECT 1 FROM \(quote(embed.plan.entity.name)) AS \(quote(child)) WHERE \(where_.joined(separator: " AND ")))")
        }
        return parts.joined(separator: " AND ")
    }

    func embedExpression(_ embed: EmbedPlan, parent: String, child: String, into query: inout SQLiteQuery) throws(RestError) -> String {
        let joinCondition = try join(embed.relation, parent: parent, child: child, junctionRule: embed.junctionRule, into: &query)
        let inner = try select(embed.plan, alias: child, into: &query, extraWhere: [joinCondition])
        let rows = quote(child + "_rows")
        if embed.relation.isToOne {
            return "json((SELECT \(rows).\"j\" FROM (\(inner)) AS \(rows)))"
        }
        return "json((SELECT '[' || coalesce(group_concat(\(rows).\"j\", ','), '') || ']' FROM (\(inner)) AS \(rows)))"
    }

    /// How a child row relates to its parent row.
    func join(_ relation: Relation, parent: String, child: String, junctionRule: RowRule? = nil, into query: inout SQLiteQuery) throws(RestError) -> String {
        guard let junction = relation.junction else {
            return zip(relation.toColumns, relation.fromColumns)
                .map { "\(quote(child)).\(quote($0)) = \(quote(parent)).\(quote($1))" }
                .joined(separator: " AND ")
        }
        let alias = child + "_j"
        let j = quote(alias)
        let toParent = zip(junction.fromColumns, relation.fromColumns).map { "\(j).\(quote($0)) = \(quote(parent)).\(quote($1))" }
        let toChild = zip(junction.toColumns, relation.toColumns).map { "\(j).\(quote($0)) = \(quote(child)).\(quote($1))" }
        var conditions = toParent + toChild
        if let junctionRule { conditions.append(try rule(junctionRule, alias: alias, into: &query)) }
        return "EXISTS (SELECT 1 FROM \(quote(junction.entity.name)) AS \(j) WHERE \(conditions.joined(separator: " AND ")))"
    }

    // MARK: - Fields

    /// A field as stored, for comparing and sorting: the column, or the JSON value at its path
    /// (JSON text after `->`, PostgreSQL's text form after `->>`).
    func fieldExpression(_ field: Field, alias: String, entity: Entity, into query: inout SQLiteQuery) throws(RestError) -> String {
        var expression = "\(quote(alias)).\(quote(field.name))"
        for step in field.path {
            switch step {
            case .json(let key):
                expression = "(\(expression) -> \(query.bind(.text(try Self.jsonPath(key)))))"
            case .text(let key):
                let path = query.bind(.text(try Self.jsonPath(key)))
                // `->>` gives SQL values; PostgreSQL's gives text, and `true`, not 1.
                expression = "(CASE json_type(\(expression), \(path)) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(\(expression) ->> \(path) AS TEXT) END)"
            }
        }
        return expression
    }

    /// A field as the JSON answer shows it.
    func outputExpression(_ field: Field, alias: String, entity: Entity, into query: inout SQLiteQuery) throws(RestError) -> String {
        let expression = try fieldExpression(field, alias: alias, entity: entity, into: &query)
        if field.path.isEmpty { return SQLiteValueCoder.output(expression, type: entity.column(named: field.name)?.type) }
        return field.yieldsText ? expression : "json(\(expression))"
    }

    /// `column::type` in `select`, for the casts PostgREST users write.
    func cast(_ field: Field, alias: String, entity: Entity, to type: String, into query: inout SQLiteQuery) throws(RestError) -> String {
        let expression = try fieldExpression(field, alias: alias, entity: entity, into: &query)
        let columnType = field.path.isEmpty ? entity.column(named: field.name)?.type : (field.yieldsText ? .string : .json)
        switch type.lowercased() {
        case "text", "varchar", "character varying": return SQLiteValueCoder.text(expression, type: columnType)
        case "int", "integer", "int4", "bigint", "int8", "smallint", "int2": return "CAST(\(expression) AS INTEGER)"
        case "numeric", "real", "float", "float4", "float8", "double precision", "decimal": return "CAST(\(expression) AS REAL)"
        case "json", "jsonb": return columnType == .json || columnType == .array ? "json(\(expression))" : "json_quote(\(expression))"
        case "boolean", "bool": return SQLiteValueCoder.output(expression, type: .boolean)
        default:
            throw RestError(status: 400, code: "MB350", message: "the cast '::\(type)' is not available on a SQLite-hosted source")
        }
    }

    /// A JSON path for one key: `$."key"` for names, `$[n]` for indexes.
    static func jsonPath(_ key: String) throws(RestError) -> String {
        if let index = Int(key), index >= 0 { return "$[\(index)]" }
        guard !key.unicodeScalars.contains(where: { $0 == "\"" || $0 == "\\" }) else {
            throw RestError(status: 400, code: "MB350", message: "JSON keys with quotes or backslashes are not available on a SQLite-hosted source")
        }
        return "$.\"\(key)\""
    }

    // MARK: - Conditions

    func condition(_ alias: String, _ condition: Condition, entity: Entity, into query: inout SQLiteQuery) throws(RestError) -> String {
        switch condition {
        case .filter(let filter):
            return try self.filter(filter, alias: alias, entity: entity, into: &query)
        case .and(let children, let negated), .or(let children, let negated):
            let joiner: String
            if case .and = condition { joiner = " AND " } else { joiner = " OR " }
            var parts: [String] = []
            for child in children { parts.append(try self.condition(alias, child, entity: entity, into: &query)) }
            let body = "(" + parts.joined(separator: joiner) + ")"
            return negated ? "NOT \(body)" : body
        }
    }

    func filter(_ filter: Filter, alias: String, entity: Entity, into query: inout SQLiteQuery) throws(RestError) -> String {
        let column = entity.column(named: filter.field.name)
        let lhs = try fieldExpression(filter.field, alias: alias, entity: entity, into: &query)
        // What an operand is read as: the column's type, text after ->>, JSON after ->.
        let type: PortableType = filter.field.path.isEmpty ? (column?.type ?? .string) : (filter.field.yieldsText ? .string : .json)
        let path = filter.field.path
        let operand = { (text: String) throws(RestError) -> SQLiteData in
            guard path.isEmpty, let column else {
                return type == .json ? try SQLiteValueCoder.bind(text: text, type: .json, column: Self.anyColumn) : .text(text)
            }
            return try SQLiteValueCoder.bind(text: text, for: column)
        }
        let compared = type == .json ? "json(\(lhs))" : lhs
        let textForm = filter.field.path.isEmpty ? SQLiteValueCoder.text(lhs, type: type) : lhs
        let sql: String
        switch (filter.op, filter.value) {
        case (.is, .scalar(let value)):
            switch value {
            case "null": sql = "\(lhs) IS NULL"
            case "not_null": sql = "\(lhs) IS NOT NULL"
            case "true": sql = "\(lhs) IS TRUE"
            case "false": sql = "\(lhs) IS FALSE"
            default: sql = "\(lhs) IS NULL"
            }
        case (.in, .list(let values)):
            var items: [String] = []
            for value in values {
                let placeholder = query.bind(try operand(value))
                items.append(type == .json ? "json(\(placeholder))" : placeholder)
            }
            sql = items.isEmpty ? "0" : "\(compared) IN (\(items.joined(separator: ", ")))"
        case (_, .list(let values)):
            let all = filter.quantifier == .all
            var parts: [String] = []
            for value in values {
                parts.append(try scalarFilter(filter.op, lhs: compared, textForm: textForm, value: value, type: type, starIsWildcard: filter.starIsWildcard, operand: operand, into: &query))
            }
            sql = parts.isEmpty ? (all ? "1" : "0") : "(" + parts.joined(separator: all ? " AND " : " OR ") + ")"
        case (let op, .scalar(let value)):
            sql = try scalarFilter(op, lhs: compared, textForm: textForm, value: value, type: type, starIsWildcard: filter.starIsWildcard, operand: operand, into: &query)
        }
        return filter.negated ? "NOT (\(sql))" : sql
    }

    /// Stands for an untyped JSON operand.
    static let anyColumn = Column(name: "", type: .json, nativeType: "jsonb")

    private func scalarFilter(
        _ op: FilterOperator, lhs: String, textForm: String, value: String, type: PortableType, starIsWildcard: Bool,
        operand stored: (String) throws(RestError) -> SQLiteData, into query: inout SQLiteQuery
    ) throws(RestError) -> String {
        func operand(_ text: String) throws(RestError) -> String {
            let placeholder = query.bind(try stored(text))
            return type == .json ? "json(\(placeholder))" : placeholder
        }
        switch op {
        case .eq, .neq, .gt, .gte, .lt, .lte: return "\(lhs) \(SQLRenderer.comparison(op)) \(try operand(value))"
        case .isdistinct: return "\(lhs) IS NOT \(try operand(value))"
        case .like:
            return "\(textForm) GLOB \(query.bind(.text(Self.glob(fromLike: SQLRenderer.likePattern(value, starIsWildcard: starIsWildcard)))))"
        case .ilike:
            return "\(textForm) LIKE \(query.bind(.text(SQLRenderer.likePattern(value, starIsWildcard: starIsWildcard)))) ESCAPE '\\'"
        case .cs, .cd, .ov:
            guard type == .array || type == .json else { break }
            let items = try arrayOperand(value)
            let list = query.bind(.text(items))
            let stored = "json_each(\(lhs))"
            switch op {
            case .cs: return "(\(lhs) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each(\(list)) AS \"v\" WHERE \"v\".value NOT IN (SELECT value FROM \(stored))))"
            case .cd: return "(\(lhs) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM \(stored) AS \"v\" WHERE \"v\".value NOT IN (SELECT value FROM json_each(\(list)))))"
            default: return "EXISTS (SELECT 1 FROM \(stored) AS \"v\" WHERE \"v\".value IN (SELECT value FROM json_each(\(list))))"
            }
        default:
            break
        }
        throw RestError(
            status: 400, code: "MB350", message: "operator '\(op.rawValue)' is not available on a SQLite-hosted source",
            hint: "full-text, range and regular-expression operators need a PostgreSQL source")
    }

    /// The operand of an array operator as a JSON array: `{a,b}` or a JSON array.
    private func arrayOperand(_ value: String) throws(RestError) -> String {
        if let items = PostgresArrayLiteral.parse(value) {
            return JSONValue.array(items.map { item -> JSONValue in
                guard let item else { return .null }
                if let number = Int64(item) { return .integer(number) }
                return .string(item)
            }).jsonString
        }
        if let parsed = try? JSONValue.parse(Array(value.utf8)), case .array = parsed { return parsed.jsonString }
        throw RestError(status: 400, code: "MB350", message: "only array containment is available on a SQLite-hosted source", details: "operand: \(value)")
    }

    /// PostgreSQL's LIKE pattern (`%`, `_`, `\` escapes; case-sensitive) as a GLOB pattern, since
    /// SQLite's LIKE ignores ASCII case.
    static func glob(fromLike pattern: String) -> String {
        var out = ""
        var escaped = false
        for character in pattern {
            if escaped {
                out += literalGlob(character)
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "%": out += "*"
            case "_": out += "?"
            default: out += literalGlob(character)
            }
        }
        if escaped { out += literalGlob("\\") }
        return out
    }

    private static func literalGlob(_ character: Character) -> String {
        switch character {
        case "*", "?", "[": "[\(character)]"
        default: String(character)
        }
    }

    // MARK: - Policy rules

    func rule(_ rule: RowRule, alias: String, into query: inout SQLiteQuery) throws(RestError) -> String {
        switch rule {
        case .always(let value):
            return value ? "1" : "0"
        case .and(let parts):
            guard !parts.isEmpty else { return "1" }
            var rendered: [String] = []
            for part in parts { rendered.append(try self.rule(part, alias: alias, into: &query)) }
            return "(" + rendered.joined(separator: " AND ") + ")"
        case .or(let parts):
            guard !parts.isEmpty else { return "0" }
            var rendered: [String] = []
            for part in parts { rendered.append(try self.rule(part, alias: alias, into: &query)) }
            return "(" + rendered.joined(separator: " OR ") + ")"
        case .not(let inner):
            return "NOT (\(try self.rule(inner, alias: alias, into: &query)))"
        case .related(let relation, let target, let inner):
            let child = query.alias("p")
            let joined = try join(relation, parent: alias, child: child, into: &query)
            let condition = try self.rule(inner, alias: child, into: &query)
            return "EXISTS (SELECT 1 FROM \(quote(target.name)) AS \(quote(child)) WHERE \(joined) AND \(condition))"
        case .compare(let column, let op, let value):
            let lhs = "\(quote(alias)).\(quote(column.name))"
            func operand(_ value: JSONValue) throws(RestError) -> String {
                query.bind(try SQLiteValueCoder.bind(json: value, for: column))
            }
            switch op {
            case .eq: return "\(lhs) = \(try operand(value))"
            case .neq: return "\(lhs) <> \(try operand(value))"
            case .gt: return "\(lhs) > \(try operand(value))"
            case .gte: return "\(lhs) >= \(try operand(value))"
            case .lt: return "\(lhs) < \(try operand(value))"
            case .lte: return "\(lhs) <= \(try operand(value))"
            case .in, .nin:
                var items: [String] = []
                for item in value.arrayValue ?? [] where item != .null { items.append(try operand(item)) }
                if items.isEmpty { return op == .in ? "0" : "1" }
                return "\(lhs) \(op == .in ? "IN" : "NOT IN") (\(items.joined(separator: ", ")))"
            case .like:
                return "\(SQLiteValueCoder.text(lhs, type: column.type)) GLOB \(query.bind(.text(Self.glob(fromLike: value.stringValue ?? value.jsonString))))"
            case .ilike:
                return "\(SQLiteValueCoder.text(lhs, type: column.type)) LIKE \(query.bind(.text(value.stringValue ?? value.jsonString))) ESCAPE '\\'"
            case .contains:
                let items = value.arrayValue.map { JSONValue.array($0).jsonString } ?? JSONValue.array([value]).jsonString
                return "(\(lhs) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each(\(query.bind(.text(items)))) AS \"v\" WHERE \"v\".value NOT IN (SELECT value FROM json_each(\(lhs)))))"
            case .isNull:
                return value.boolValue == false ? "\(lhs) IS NOT NULL" : "\(lhs) IS NULL"
            }
        }
    }

    /// Decides row rules against rows that are not (or no longer) in their tables — the images of
    /// writes published to realtime subscribers. Each row is bound as its JSON and read back
    /// column by column; answers one row with a JSON array of 0/1, one per check, in order.
    public func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) throws(RestError) -> SQLiteQuery {
        var query = SQLiteQuery()
        var records: [String] = []
        for (index, row) in rows.enumerated() {
            let document = query.bind(.text(JSONValue.object(row.values).jsonString))
            let columns = row.entity.columns.compactMap { column -> String? in
                guard let path = try? Self.jsonPath(column.name) else { return nil }
                return "json_extract(\(document), \(SQLiteValueCoder.literal(path))) AS \(quote(column.name))"
            }
            records.append("(SELECT \(columns.isEmpty ? "NULL" : columns.joined(separator: ", "))) AS \(quote("r\(index)"))")
        }
        var decisions: [String] = []
        for check in checks { decisions.append("coalesce((\(try rule(check.rule, alias: "r\(check.row)", into: &query))), 0)") }
        query.sql = "SELECT json_array(\(decisions.joined(separator: ", "))) AS body FROM \(records.isEmpty ? "(SELECT 1)" : records.joined(separator: ", "))"
        return query
    }
}
