import Runtime

/// Renders plans into one SQL statement each. Every statement answers one row:
/// `body` (the JSON text to send), `page_count` (rows in it) and `total` (exact count or NULL).
public struct SQLRenderer: Sendable {
    public init() {}

    // MARK: - Reads

    public func read(_ plan: ReadPlan, count: Bool) -> SQLStatement {
        var statement = SQLStatement()
        let inner = select(plan, alias: "t0", depth: 0, into: &statement)
        guard count else {
            statement.streaming = true
            statement.sql = "SELECT row_to_json(\"_row\")::text AS row FROM (\(inner)) AS \"_row\""
            return statement
        }
        var total = "NULL::bigint"
        if count {
            var where_ = conditions(plan, alias: "t0", into: &statement)
            if where_.isEmpty { where_ = "true" }
            total = "(SELECT count(*) FROM \(quote(plan.entity.qualifiedName)) AS \"t0\" WHERE \(where_))"
        }
        statement.sql = "SELECT coalesce(json_agg(\"_row\"), '[]')::text AS body, count(\"_row\") AS page_count, \(total) AS total, NULL::bigint AS violations FROM (\(inner)) AS \"_row\""
        return statement
    }

    /// Several reads as one statement (one round trip, one snapshot): `body` is a JSON array with,
    /// per read, its rows (a JSON array) and, when `count` is set, the number of rows its
    /// conditions select (else null). GraphQL's root fields run this way.
    public func readAll(_ reads: [(plan: ReadPlan, count: Bool)]) -> SQLStatement {
        var statement = SQLStatement()
        var parts: [String] = []
        for read in reads {
            let inner = select(read.plan, alias: "t0", depth: 0, into: &statement)
            parts.append("(SELECT coalesce(json_agg(\"_row\"), '[]'::json) FROM (\(inner)) AS \"_row\")")
            if read.count {
                var where_ = conditions(read.plan, alias: "t0", into: &statement)
                if where_.isEmpty { where_ = "true" }
                parts.append("(SELECT count(*) FROM \(quote(read.plan.entity.qualifiedName)) AS \"t0\" WHERE \(where_))")
            } else {
                parts.append("NULL::bigint")
            }
        }
        statement.sql = "SELECT json_build_array(\(parts.joined(separator: ", ")))::text AS body, 1::bigint AS page_count, NULL::bigint AS total, NULL::bigint AS violations"
        return statement
    }

    /// The planner's row estimate for a read, for `count=planned` and `count=estimated`.
    public func estimate(_ plan: ReadPlan) -> SQLStatement {
        var statement = SQLStatement()
        var where_ = conditions(plan, alias: "t0", into: &statement)
        if where_.isEmpty { where_ = "true" }
        statement.sql = "EXPLAIN (FORMAT JSON) SELECT 1 FROM \(quote(plan.entity.qualifiedName)) AS \"t0\" WHERE \(where_)"
        return statement
    }

    /// `SELECT <columns and embeds> FROM <entity> AS alias WHERE … ORDER BY … LIMIT … OFFSET …`
    func select(_ plan: ReadPlan, alias: String, depth: Int, into statement: inout SQLStatement, from source: String? = nil, extraWhere: [String] = []) -> String {
        var items: [String] = []
        for column in plan.columns {
            var expression = fieldExpression(column.field, alias: alias, into: &statement)
            if let cast = column.cast { expression = "CAST(\(expression) AS \(cast))" }
            items.append("\(expression) AS \(quote(column.outputName))")
        }
        for (index, embed) in plan.embeds.enumerated() {
            let childAlias = "t\(depth + 1)_\(index)"
            items.append("\(embedExpression(embed, parent: alias, child: childAlias, depth: depth + 1, into: &statement)) AS \(quote(embed.outputName))")
        }
        if items.isEmpty { items = ["NULL"] }
        var sql = "SELECT \(items.joined(separator: ", ")) FROM \(source ?? quote(plan.entity.qualifiedName)) AS \(quote(alias))"
        var wheres = extraWhere
        let own = conditions(plan, alias: alias, into: &statement)
        if !own.isEmpty { wheres.append(own) }
        if !wheres.isEmpty { sql += " WHERE " + wheres.joined(separator: " AND ") }
        sql += tail(plan, alias: alias, into: &statement)
        return sql
    }

    func tail(_ plan: ReadPlan, alias: String, into statement: inout SQLStatement) -> String {
        var sql = ""
        if !plan.order.isEmpty {
            sql += " ORDER BY " + plan.order.map { term in
                var text = fieldExpression(term.field, alias: alias, into: &statement)
                if term.descending { text += " DESC" }
                switch term.nulls {
                case .first?: text += " NULLS FIRST"
                case .last?: text += " NULLS LAST"
                case nil: break
                }
                return text
            }.joined(separator: ", ")
        }
        if let limit = plan.limit { sql += " LIMIT \(statement.bind(limit))" }
        if let offset = plan.offset, offset > 0 { sql += " OFFSET \(statement.bind(offset))" }
        return sql
    }

    /// The row filter of a plan: its own conditions and the existence of its `!inner` embeds.
    func conditions(_ plan: ReadPlan, alias: String, into statement: inout SQLStatement) -> String {
        var parts = plan.conditions.map { condition(String(describing: alias), $0, entity: plan.entity, into: &statement) }
        if let rule = plan.rowRule { parts.append(self.rule(rule, alias: alias, into: &statement)) }
        for (index, embed) in plan.embeds.enumerated() where embed.inner {
            let child = "e\(alias)_\(index)"
            var where_ = [join(embed.relation, parent: alias, child: child, junctionRule: embed.junctionRule, into: &statement)]
            let own = conditions(embed.plan, alias: child, into: &statement)
            if !own.isEmpty { where_.append(own) }
            parts.append("EXISTS (SELECT 1 FROM \(quote(embed.plan.entity.qualifiedName)) AS \(quote(child)) WHERE \(where_.joined(separator: " AND ")))")
        }
        return parts.joined(separator: " AND ")
    }

    func embedExpression(_ embed: EmbedPlan, parent: String, child: String, depth: Int, into statement: inout SQLStatement) -> String {
        let joinCondition = join(embed.relation, parent: parent, child: child, junctionRule: embed.junctionRule, into: &statement)
        let inner = select(embed.plan, alias: child, depth: depth, into: &statement, extraWhere: [joinCondition])
        let row = quote(child + "_row")
        if embed.relation.isToOne {
            return "(SELECT row_to_json(\(row)) FROM (\(inner)) AS \(row))"
        }
        return "(SELECT coalesce(json_agg(\(row)), '[]'::json) FROM (\(inner)) AS \(row))"
    }

    /// How a child row relates to its parent row.
    func join(_ relation: Relation, parent: String, child: String, junctionRule: RowRule? = nil, into statement: inout SQLStatement) -> String {
        if let junction = relation.junction {
            let alias = child + "_j"
            let j = quote(alias)
            let toParent = zip(junction.fromColumns, relation.fromColumns).map { "\(j).\(quote($0)) = \(quote(parent)).\(quote($1))" }
            let toChild = zip(junction.toColumns, relation.toColumns).map { "\(j).\(quote($0)) = \(quote(child)).\(quote($1))" }
            var conditions = toParent + toChild
            if let junctionRule { conditions.append(rule(junctionRule, alias: alias, into: &statement)) }
            return "EXISTS (SELECT 1 FROM \(quote(junction.entity)) AS \(j) WHERE \(conditions.joined(separator: " AND ")))"
        }
        return zip(relation.toColumns, relation.fromColumns)
            .map { "\(quote(child)).\(quote($0)) = \(quote(parent)).\(quote($1))" }
            .joined(separator: " AND ")
    }

    // MARK: - Policy rules

    /// One statement deciding row rules against rows that are not (or no longer) in their tables
    /// — the images of changes the realtime feed saw. Each row becomes a record of its entity's
    /// type; each check is a rule over one of them. Answers (in `body`) a JSON array of booleans,
    /// one per check, in order; unknown counts as false, as in a WHERE clause.
    public func decide(_ checks: [(rule: RowRule, row: Int)], rows: [(entity: Entity, values: JSONObject)]) -> SQLStatement {
        var statement = SQLStatement()
        statement.reusable = false
        let records = rows.indices.map { index in
            let table = quote(rows[index].entity.qualifiedName)
            return "json_populate_record(NULL::\(table), \(statement.bind(JSONValue.object(rows[index].values).jsonString))::json) AS \(quote("r\(index)"))"
        }
        let decisions = checks.map { check in
            "coalesce((\(rule(check.rule, alias: "r\(check.row)", into: &statement))), false)"
        }
        statement.sql = "SELECT to_json(ARRAY[\(decisions.joined(separator: ", "))]::boolean[])::text AS body, 1::bigint AS page_count, "
            + "NULL::bigint AS total, NULL::bigint AS violations FROM \(records.joined(separator: ", "))"
        return statement
    }

    func rule(_ rule: RowRule, alias: String, into statement: inout SQLStatement) -> String {
        switch rule {
        case .always(let value):
            return value ? "true" : "false"
        case .and(let parts):
            return parts.isEmpty ? "true" : "(" + parts.map { self.rule($0, alias: alias, into: &statement) }.joined(separator: " AND ") + ")"
        case .or(let parts):
            return parts.isEmpty ? "false" : "(" + parts.map { self.rule($0, alias: alias, into: &statement) }.joined(separator: " OR ") + ")"
        case .not(let inner):
            return "NOT (\(self.rule(inner, alias: alias, into: &statement)))"
        case .related(let relation, let target, let inner):
            let child = statement.alias("p")
            let joined = join(relation, parent: alias, child: child, into: &statement)
            let condition = self.rule(inner, alias: child, into: &statement)
            return "EXISTS (SELECT 1 FROM \(quote(target.qualifiedName)) AS \(quote(child)) WHERE \(joined) AND \(condition))"
        case .compare(let column, let op, let value):
            let lhs = "\(quote(alias)).\(quote(column.name))"
            let type = column.nativeType
            func cast(_ value: JSONValue) -> String {
                guard let text = Self.argumentText(value, arrayType: type.hasSuffix("[]")) else { return "CAST(NULL AS \(type))" }
                return "CAST(\(statement.bind(text)) AS \(type))"
            }
            switch op {
            case .eq: return "\(lhs) = \(cast(value))"
            case .neq: return "\(lhs) <> \(cast(value))"
            case .gt: return "\(lhs) > \(cast(value))"
            case .gte: return "\(lhs) >= \(cast(value))"
            case .lt: return "\(lhs) < \(cast(value))"
            case .lte: return "\(lhs) <= \(cast(value))"
            case .in, .nin:
                let items = (value.arrayValue ?? []).compactMap { Self.argumentText($0, arrayType: false) }
                let list = "CAST(\(statement.bind(items)) AS \(type)[])"
                return op == .in ? "\(lhs) = ANY(\(list))" : "\(lhs) <> ALL(\(list))"
            case .like: return "(\(lhs))::text LIKE \(statement.bind(value.stringValue ?? value.jsonString))"
            case .ilike: return "(\(lhs))::text ILIKE \(statement.bind(value.stringValue ?? value.jsonString))"
            case .contains: return "\(lhs) @> \(cast(value))"
            case .isNull: return value.boolValue == false ? "\(lhs) IS NOT NULL" : "\(lhs) IS NULL"
            }
        }
    }

    // MARK: - Fields and conditions

    func fieldExpression(_ field: Field, alias: String, into statement: inout SQLStatement) -> String {
        var expression = "\(quote(alias)).\(quote(field.name))"
        for step in field.path {
            switch step {
            case .json(let key): expression = "(\(expression) -> \(jsonKey(key, into: &statement)))"
            case .text(let key): expression = "(\(expression) ->> \(jsonKey(key, into: &statement)))"
            }
        }
        return expression
    }

    func jsonKey(_ key: String, into statement: inout SQLStatement) -> String {
        if let index = Int(key) { return "\(statement.bind(index))::int" }
        return "\(statement.bind(key))::text"
    }

    func condition(_ alias: String, _ condition: Condition, entity: Entity, into statement: inout SQLStatement) -> String {
        switch condition {
        case .filter(let filter):
            return self.filter(filter, alias: alias, entity: entity, into: &statement)
        case .and(let children, let negated), .or(let children, let negated):
            let joiner: String
            if case .and = condition { joiner = " AND " } else { joiner = " OR " }
            let body = "(" + children.map { self.condition(alias, $0, entity: entity, into: &statement) }.joined(separator: joiner) + ")"
            return negated ? "NOT \(body)" : body
        }
    }

    func filter(_ filter: Filter, alias: String, entity: Entity, into statement: inout SQLStatement) -> String {
        let column = entity.column(named: filter.field.name)
        var lhs = fieldExpression(filter.field, alias: alias, into: &statement)
        // The type a value is read as: the column's own, text after ->>, jsonb after ->.
        let valueType: String
        if filter.field.path.isEmpty {
            valueType = column?.nativeType ?? "text"
        } else if filter.field.yieldsText {
            valueType = "text"
        } else {
            lhs = "(\(lhs))::jsonb"
            valueType = "jsonb"
        }
        let sql: String
        switch (filter.op, filter.value) {
        case (.is, .scalar(let value)):
            switch value {
            case "null": sql = "\(lhs) IS NULL"
            case "not_null": sql = "\(lhs) IS NOT NULL"
            case "true": sql = "\(lhs) IS TRUE"
            case "false": sql = "\(lhs) IS FALSE"
            default: sql = "\(lhs) IS UNKNOWN"
            }
        case (.in, .list(let values)):
            sql = values.isEmpty ? "false" : "\(lhs) = ANY(CAST(\(statement.bind(values)) AS \(valueType)[]))"
        case (_, .list(let values)):
            let quantifier = filter.quantifier == .all ? "ALL" : "ANY"
            switch filter.op {
            case .like, .ilike:
                let op = filter.op == .like ? "LIKE" : "ILIKE"
                sql = "(\(lhs))::text \(op) \(quantifier)(\(statement.bind(values.map { Self.likePattern($0, starIsWildcard: filter.starIsWildcard) })))"
            case .match, .imatch:
                sql = "(\(lhs))::text \(filter.op == .match ? "~" : "~*") \(quantifier)(\(statement.bind(values)))"
            default:
                sql = "\(lhs) \(Self.comparison(filter.op)) \(quantifier)(CAST(\(statement.bind(values)) AS \(valueType)[]))"
            }
        case (let op, .scalar(let value)):
            switch op {
            case .eq, .neq, .gt, .gte, .lt, .lte:
                sql = "\(lhs) \(Self.comparison(op)) CAST(\(statement.bind(value)) AS \(valueType))"
            case .like: sql = "(\(lhs))::text LIKE \(statement.bind(Self.likePattern(value, starIsWildcard: filter.starIsWildcard)))"
            case .ilike: sql = "(\(lhs))::text ILIKE \(statement.bind(Self.likePattern(value, starIsWildcard: filter.starIsWildcard)))"
            case .match: sql = "(\(lhs))::text ~ \(statement.bind(value))"
            case .imatch: sql = "(\(lhs))::text ~* \(statement.bind(value))"
            case .isdistinct: sql = "\(lhs) IS DISTINCT FROM CAST(\(statement.bind(value)) AS \(valueType))"
            case .fts, .plfts, .phfts, .wfts:
                let function = ["fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery", "wfts": "websearch_to_tsquery"][op.rawValue]!
                let vector = column?.nativeType == "tsvector" ? lhs : "to_tsvector(\(filter.language.map { "\(statement.bind($0))::regconfig, " } ?? "")(\(lhs))::text)"
                let language = filter.language.map { "\(statement.bind($0))::regconfig, " } ?? ""
                sql = "\(vector) @@ \(function)(\(language)\(statement.bind(value)))"
            case .cs: sql = "\(lhs) @> CAST(\(statement.bind(value)) AS \(valueType))"
            case .cd: sql = "\(lhs) <@ CAST(\(statement.bind(value)) AS \(valueType))"
            case .ov: sql = "\(lhs) && CAST(\(statement.bind(value)) AS \(valueType))"
            case .sl: sql = "\(lhs) << CAST(\(statement.bind(value)) AS \(valueType))"
            case .sr: sql = "\(lhs) >> CAST(\(statement.bind(value)) AS \(valueType))"
            case .nxr: sql = "\(lhs) &< CAST(\(statement.bind(value)) AS \(valueType))"
            case .nxl: sql = "\(lhs) &> CAST(\(statement.bind(value)) AS \(valueType))"
            case .adj: sql = "\(lhs) -|- CAST(\(statement.bind(value)) AS \(valueType))"
            case .in, .is: sql = "false"
            }
        }
        return filter.negated ? "NOT (\(sql))" : sql
    }

    static func comparison(_ op: FilterOperator) -> String {
        switch op {
        case .eq: "="
        case .neq: "<>"
        case .gt: ">"
        case .gte: ">="
        case .lt: "<"
        case .lte: "<="
        default: "="
        }
    }

    /// PostgREST lets `*` stand for `%` in like patterns, so URLs need no percent signs.
    static func likePattern(_ value: String, starIsWildcard: Bool = true) -> String {
        starIsWildcard ? value.replacingOccurrences(of: "*", with: "%") : value
    }

    // MARK: - Writes

    /// `publishRows` adds the written rows, every column, as `changes` (with `_mb_inserted` telling
    /// an upsert's inserts from its updates).
    public func write(_ plan: WritePlan, returnRows: Bool, publishRows: Bool = false) -> SQLStatement {
        var statement = SQLStatement()
        statement.publishes = publishRows
        let table = quote(plan.target.entity.qualifiedName)
        let written: String
        switch plan.kind {
        case .insert(let rows, let columns, let onConflict, let missingDefault):
            if columns.isEmpty {
                written = "INSERT INTO \(table) AS \"t0\" DEFAULT VALUES RETURNING \"t0\".*"
            } else {
                let list = columns.map(quote).joined(separator: ", ")
                var sql: String
                if missingDefault {
                    // One VALUES row per object, with DEFAULT where the object has no such key.
                    statement.reusable = false
                    let types = columns.map { name in plan.target.entity.column(named: name)?.nativeType ?? "text" }
                    let values = rows.map { row in
                        "(" + zip(columns, types).map { name, type -> String in
                            guard let value = row[name] else { return "DEFAULT" }
                            guard let text = Self.argumentText(value, arrayType: type.hasSuffix("[]")) else { return "NULL" }
                            return "CAST(\(statement.bind(text)) AS \(type))"
                        }.joined(separator: ", ") + ")"
                    }
                    sql = "INSERT INTO \(table) AS \"t0\" (\(list)) VALUES \(values.joined(separator: ", "))"
                } else {
                    let payload = statement.bind(JSONValue.array(rows.map(JSONValue.object)).jsonString)
                    sql = "INSERT INTO \(table) AS \"t0\" (\(list)) SELECT \(list) FROM json_populate_recordset(NULL::\(table), \(payload)::json)"
                }
                switch onConflict {
                case .merge(let target)?:
                    sql += " ON CONFLICT (\(target.map(quote).joined(separator: ", "))) DO "
                    if let update = plan.conflictUpdate {
                        var sets = update.columns.filter { name in !update.presets.contains { $0.0 == name } }
                            .map { "\(quote($0)) = EXCLUDED.\(quote($0))" }
                        for (name, value) in update.presets {
                            let type = plan.target.entity.column(named: name)?.nativeType ?? "text"
                            let text = Self.argumentText(value, arrayType: type.hasSuffix("[]"))
                            sets.append("\(quote(name)) = " + (text.map { "CAST(\(statement.bind($0)) AS \(type))" } ?? "NULL"))
                        }
                        if sets.isEmpty {
                            sql += "NOTHING"
                        } else {
                            sql += "UPDATE SET " + sets.joined(separator: ", ")
                            if let rows = update.rows { sql += " WHERE " + rule(rows, alias: "t0", into: &statement) }
                        }
                    } else {
                        let updates = columns.filter { !target.contains($0) }
                        sql += updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.map { "\(quote($0)) = EXCLUDED.\(quote($0))" }.joined(separator: ", ")
                    }
                case .ignore(let target)?:
                    sql += " ON CONFLICT (\(target.map(quote).joined(separator: ", "))) DO NOTHING"
                case nil:
                    break
                }
                // xmax = 0 tells an inserted row from an updated one, so each meets its own check
                // (and is published as what it was).
                let upsert = plan.conflictUpdate != nil || (publishRows && onConflict != nil && plan.target.entity.kind == .table)
                written = sql + " RETURNING \"t0\".*" + (upsert ? ", (\"t0\".xmax = 0) AS \"_mb_inserted\"" : "")
            }
        case .update(let values, let columns):
            let list = columns.map(quote).joined(separator: ", ")
            let payload = statement.bind(JSONValue.object(values).jsonString)
            var where_ = conditions(plan.target, alias: "t0", into: &statement)
            if where_.isEmpty { where_ = "true" }
            written = "UPDATE \(table) AS \"t0\" SET (\(list)) = (SELECT \(list) FROM json_populate_record(NULL::\(table), \(payload)::json)) WHERE \(where_) RETURNING \"t0\".*"
        case .delete:
            var where_ = conditions(plan.target, alias: "t0", into: &statement)
            if where_.isEmpty { where_ = "true" }
            written = "DELETE FROM \(table) AS \"t0\" WHERE \(where_) RETURNING \"t0\".*"
        }
        let body: String
        if returnRows {
            let inner = select(plan.returning, alias: "t0", depth: 0, into: &statement, from: "\"_written\"")
            body = "(SELECT coalesce(json_agg(\"_row\"), '[]')::text FROM (\(inner)) AS \"_row\")"
        } else {
            body = "NULL::text"
        }
        var violations = "NULL::bigint"
        if let update = plan.conflictUpdate, plan.check != nil || update.check != nil {
            statement.checked = true
            let inserted = rule(plan.check ?? .always(true), alias: "t0", into: &statement)
            let updated = rule(update.check ?? .always(true), alias: "t0", into: &statement)
            violations = "(SELECT count(*) FROM \"_written\" AS \"t0\" WHERE (CASE WHEN \"t0\".\"_mb_inserted\" THEN (\(inserted)) ELSE (\(updated)) END) IS NOT TRUE)"
        } else if let check = plan.check {
            statement.checked = true
            violations = "(SELECT count(*) FROM \"_written\" AS \"t0\" WHERE (\(rule(check, alias: "t0", into: &statement))) IS NOT TRUE)"
        }
        let changes = publishRows ? "(SELECT json_agg(\"t0\")::text FROM \"_written\" AS \"t0\")" : "NULL::text"
        statement.sql = "WITH \"_written\" AS (\(written)) SELECT \(body) AS body, (SELECT count(*) FROM \"_written\") AS page_count, NULL::bigint AS total, \(violations) AS violations, \(changes) AS changes"
        return statement
    }

    // MARK: - Functions

    public func call(_ plan: CallPlan, count: Bool) -> SQLStatement {
        var statement = SQLStatement()
        let operation = plan.operation
        let arguments = plan.arguments.map { argument -> String in
            let type = operation.arguments.first { $0.name == argument.name }?.nativeType ?? "text"
            let text = Self.argumentText(argument.value, arrayType: type.hasSuffix("[]"))
            let value = text.map { "CAST(\(statement.bind($0)) AS \(type))" } ?? "NULL::\(type)"
            return "\(quote(argument.name)) := \(value)"
        }.joined(separator: ", ")
        let call = "\(quote(operation.schema)).\(quote(operation.name))(\(arguments))"
        if var read = plan.read {
            if !operation.returnsSet { read.limit = read.limit ?? 1 }
            let inner = select(read, alias: "t0", depth: 0, into: &statement, from: call)
            let body = operation.returnsSet ? "coalesce(json_agg(\"_row\"), '[]')::text" : "(json_agg(\"_row\") -> 0)::text"
            var total = "NULL::bigint"
            if count && operation.returnsSet {
                // The call appears twice with the same parameters: the page, and every row its
                // conditions select (the policy's included, as in `conditions`).
                var where_ = conditions(read, alias: "t0", into: &statement)
                if where_.isEmpty { where_ = "true" }
                total = "(SELECT count(*) FROM \(call) AS \"t0\" WHERE \(where_))"
            }
            statement.sql = "SELECT \(body) AS body, count(\"_row\") AS page_count, \(total) AS total, NULL::bigint AS violations FROM (\(inner)) AS \"_row\""
        } else if operation.returnsVoid {
            statement.sql = "SELECT NULL::text AS body, 0::bigint AS page_count, NULL::bigint AS total, NULL::bigint AS violations FROM \(call) AS \"_call\""
        } else if operation.returnsSet {
            statement.sql = "SELECT coalesce(json_agg(\"_value\"), '[]')::text AS body, count(*) AS page_count, NULL::bigint AS total, NULL::bigint AS violations FROM \(call) AS \"_value\""
        } else {
            statement.sql = "SELECT to_json(\(call))::text AS body, 1::bigint AS page_count, NULL::bigint AS total, NULL::bigint AS violations"
        }
        return statement
    }

    /// An argument as PostgreSQL input text: strings as they are, other JSON as JSON text, and JSON
    /// arrays as array literals where the parameter is an array.
    static func argumentText(_ value: JSONValue, arrayType: Bool) -> String? {
        switch value {
        case .null: return nil
        case .string(let text): return text
        case .array(let items) where arrayType:
            return PostgresArrayLiteral.render(items.map { argumentText($0, arrayType: false) })
        default: return value.jsonString
        }
    }
}

import Foundation
