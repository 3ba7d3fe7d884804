import Runtime
import Tenancy

/// Renders the planner's plans for a MongoDB source, beside `SQLRenderer` and `SQLiteRenderer`:
/// a read is one aggregation (`$match` of the filters and policy, `$lookup` per embed, sort with
/// PostgreSQL's null placement, skip, limit, projection), `count=exact` one more. Field names
/// come only from the model (the planner checked them) and JSON-path keys are checked here;
/// every user value is a typed BSON value under an operator the renderer chose, never a key, an
/// operator or an expression — `$where`, `$function`, `$expr` and JavaScript cannot be produced.
/// A read the server runs as `find`.
struct MongoFind: Sendable {
    var filter: BSONDocument
    var projection: BSONDocument
    var skip: Int?
    var limit: Int?
}

struct MongoRenderer {
    /// Names this renderer gives the fields it adds (lookups, sort flags); model fields cannot
    /// start with `_mb_` and a `$`.
    private var aliases = 0

    mutating func alias(_ prefix: String) -> String {
        aliases += 1
        return "_mb_\(prefix)\(aliases)"
    }

    // MARK: - Reads

    /// The aggregation for a read: the documents come back with the plan's fields, each embed's
    /// rows under `_mb_e<index>`.
    mutating func pipeline(_ plan: ReadPlan, only ids: [BSON]? = nil) throws(RestError) -> [BSON] {
        var stages = try matchStages(plan)
        // The rows a write touched (its representation): found by `_id` first.
        if let ids { stages.insert(.document(["$match": .document(["_id": .document(["$in": .array(ids)])])]), at: 0) }
        let paginated = plan.embeds.contains { $0.inner }
        // Lookups of `!inner` embeds come before pagination (they decide which rows count);
        // others after, so only the page's rows are joined.
        if paginated {
            stages += try lookups(plan)
            stages += innerMatches(plan)
        }
        stages += try sortStages(plan)
        if let offset = plan.offset, offset > 0 { stages.append(.document(["$skip": .int32(Int32(clamping: offset))])) }
        if let limit = plan.limit { stages.append(.document(["$limit": .int32(Int32(clamping: max(limit, 0)))])) }
        if !paginated { stages += try lookups(plan) }
        stages.append(.document(["$project": .document(projection(plan))]))
        return stages
    }

    /// The same read as a `find` when it needs no pipeline: no embeds, no order (PostgreSQL's
    /// null placement needs a computed flag), no policy rule reaching across a relation.
    mutating func find(_ plan: ReadPlan) throws(RestError) -> MongoFind? {
        guard plan.embeds.isEmpty, plan.order.isEmpty else { return nil }
        let stages = try matchStages(plan)
        var filter = BSONDocument()
        switch stages.count {
        case 0: break
        case 1:
            guard case .document(let stage) = stages[0], case .document(let match)? = stage["$match"] else { return nil }
            filter = match
        default: return nil
        }
        return MongoFind(filter: filter, projection: projection(plan), skip: plan.offset, limit: plan.limit)
    }

    /// `count=exact`: the same rows, counted.
    mutating func countPipeline(_ plan: ReadPlan) throws(RestError) -> [BSON] {
        var stages = try matchStages(plan)
        if plan.embeds.contains(where: { $0.inner }) {
            stages += try lookups(plan, onlyInner: true)
            stages += innerMatches(plan)
        }
        stages.append(.document(["$count": .string("n")]))
        return stages
    }

    /// The policy's lookups, then one `$match` of the filters and the policy.
    mutating func matchStages(_ plan: ReadPlan) throws(RestError) -> [BSON] {
        var stages: [BSON] = []
        var parts: [BSON] = []
        for condition in plan.conditions { parts.append(.document(try self.condition(condition, entity: plan.entity))) }
        if let rule = plan.rowRule {
            let (prefix, match) = try self.rule(rule, entity: plan.entity)
            stages += prefix
            parts.append(.document(match))
        }
        if !parts.isEmpty { stages.append(.document(["$match": parts.count == 1 ? parts[0] : .document(["$and": .array(parts)])])) }
        return stages
    }

    private mutating func lookups(_ plan: ReadPlan, onlyInner: Bool = false) throws(RestError) -> [BSON] {
        var stages: [BSON] = []
        for (index, embed) in plan.embeds.enumerated() where !onlyInner || embed.inner {
            stages.append(try lookup(embed, as: Self.embedKey(index), countOnly: onlyInner))
        }
        return stages
    }

    private func innerMatches(_ plan: ReadPlan) -> [BSON] {
        plan.embeds.enumerated().filter { $0.element.inner }.map { index, _ in
            .document(["$match": .document([Self.embedKey(index): .document(["$ne": .array([])])])])
        }
    }

    static func embedKey(_ index: Int) -> String { "_mb_e\(index)" }

    /// `$lookup` with the relation's fields and the child's own pipeline (its filters, policy,
    /// embeds, order and page).
    private mutating func lookup(_ embed: EmbedPlan, as key: String, countOnly: Bool = false) throws(RestError) -> BSON {
        let relation = embed.relation
        guard relation.junction == nil, relation.fromColumns.count == 1, relation.toColumns.count == 1 else {
            throw RestError(status: 400, code: "MB337", message: "embedding through '\(relation.constraint)' is not available on a MongoDB source")
        }
        var inner: [BSON]
        if countOnly {
            inner = try matchStages(embed.plan) + [.document(["$limit": .int32(1)]), .document(["$project": .document(["_id": .int32(1)])])]
        } else {
            inner = try pipeline(embed.plan)
        }
        if relation.isToOne && !countOnly { inner.append(.document(["$limit": .int32(1)])) }
        return .document([
            "$lookup": .document([
                "from": .string(embed.plan.entity.name), "localField": .string(relation.fromColumns[0]),
                "foreignField": .string(relation.toColumns[0]), "as": .string(key), "pipeline": .array(inner),
            ])
        ])
    }

    /// Sort with PostgreSQL's null placement: MongoDB puts null and missing values first going
    /// up and last going down; a flag computed per term (`$ifNull`, never a user value) puts
    /// them where PostgreSQL would, or where `nullsfirst`/`nullslast` asks.
    mutating func sortStages(_ plan: ReadPlan) throws(RestError) -> [BSON] {
        guard !plan.order.isEmpty else { return [] }
        var flags = BSONDocument()
        var sort = BSONDocument()
        for term in plan.order {
            let path = try Self.path(term.field)
            let flag = alias("o")
            flags.append(flag, .document(["$eq": .array([.document(["$ifNull": .array([.string("$" + path), .null])]), .null])]))
            let nullsFirst = (term.nulls ?? (term.descending ? .first : .last)) == .first
            sort.append(flag, .int32(nullsFirst ? -1 : 1))
            sort.append(path, .int32(term.descending ? -1 : 1))
        }
        // A stable order for equal keys, as a heap scan would give.
        if sort["_id"] == nil { sort.append("_id", .int32(1)) }
        return [.document(["$addFields": .document(flags)]), .document(["$sort": .document(sort)])]
    }

    /// Only the top-level fields the answer needs, and the embeds' rows.
    private func projection(_ plan: ReadPlan) -> BSONDocument {
        var document = BSONDocument()
        var seen: Set<String> = []
        for column in plan.columns where seen.insert(column.field.name).inserted {
            document.append(column.field.name, .int32(1))
        }
        for index in plan.embeds.indices { document.append(Self.embedKey(index), .int32(1)) }
        // The relations' own fields, which embeds of the returned rows join on.
        // `_id` comes unless excluded; an empty projection is refused, so a plan selecting
        // nothing keeps `_id` alone.
        if !seen.contains("_id") { document.append("_id", .int32(document.isEmpty ? 1 : 0)) }
        return document
    }

    // MARK: - Fields

    /// A field's dotted path: the column, then its JSON keys (array indexes as numbers), each
    /// checked so it cannot become an operator or another path.
    static func path(_ field: Field) throws(RestError) -> String {
        var path = field.name
        for step in field.path {
            let key: String
            switch step {
            case .json(let name), .text(let name): key = name
            }
            guard !key.isEmpty, !key.hasPrefix("$"), !key.contains("."), !key.utf8.contains(0) else {
                throw RestError(status: 400, code: "MB337", message: "the JSON key '\(key)' cannot be used on a MongoDB source", hint: "keys may not be empty, start with '$' or hold '.'")
            }
            path += "." + key
        }
        return path
    }

    // MARK: - Filters

    mutating func condition(_ condition: Condition, entity: Entity) throws(RestError) -> BSONDocument {
        switch condition {
        case .filter(let filter):
            return try self.filter(filter, entity: entity)
        case .and(let children, let negated), .or(let children, let negated):
            var parts: [BSON] = []
            for child in children { parts.append(.document(try self.condition(child, entity: entity))) }
            let joined: BSONDocument
            if case .and = condition {
                joined = parts.isEmpty ? [:] : ["$and": .array(parts)]
            } else {
                joined = parts.isEmpty ? Self.nothing : ["$or": .array(parts)]
            }
            return negated ? ["$nor": .array([.document(joined)])] : joined
        }
    }

    /// Matches no document.
    static let nothing: BSONDocument = ["_id": .document(["$in": .array([])])]

    mutating func filter(_ filter: Filter, entity: Entity) throws(RestError) -> BSONDocument {
        let column = entity.column(named: filter.field.name)
        let path = try Self.path(filter.field)
        func operands(_ text: String) throws(RestError) -> [BSON] { try MongoValues.operands(text, field: filter.field, column: column) }
        // The items of `cs`/`cd`/`ov` are typed as the array's elements.
        func items(_ text: String) throws(RestError) -> [BSON] {
            guard filter.field.path.isEmpty, let column, column.nativeType.hasPrefix("array") else { return try operands(text) }
            let element = MongoValues.elementNative(column.nativeType)
            if element == "mixed" { return [MongoValues.generic((try? JSONValue.parse(Array(text.utf8))) ?? .string(text))] }
            return [try MongoValues.typed(text, native: element, column: column.name)]
        }
        if filter.op == .is, case .scalar(let value) = filter.value {
            // IS is never unknown: its negation keeps nulls (NOT (x IS TRUE) holds for null).
            let matched: BSON
            switch value.lowercased() {
            case "true": matched = .bool(true)
            case "false": matched = .bool(false)
            default: matched = .null
            }
            return [path: filter.negated ? .document(["$ne": matched]) : matched]
        }
        let expression: BSONDocument
        switch (filter.op, filter.value) {
        case (.in, .list(let values)):
            var items: [BSON] = []
            for value in values { items += try operands(value) }
            expression = [path: .document(["$in": .array(items)])]
        case (_, .list(let values)):
            // `op(any)` / `op(all)`: one test per operand.
            var parts: [BSON] = []
            for value in values { parts.append(.document(try scalar(filter.op, path: path, value: value, starIsWildcard: filter.starIsWildcard, operands: operands, items: items))) }
            if parts.isEmpty {
                expression = filter.quantifier == .all ? [:] : Self.nothing
            } else {
                expression = [filter.quantifier == .all ? "$and" : "$or": .array(parts)]
            }
        case (let op, .scalar(let value)):
            expression = try scalar(op, path: path, value: value, starIsWildcard: filter.starIsWildcard, operands: operands, items: items)
        }
        guard filter.negated else { return expression }
        // SQL's NOT: a null never matches, whatever the operator.
        return ["$nor": .array([.document(expression)]), path: .document(["$ne": .null])]
    }

    private func scalar(
        _ op: FilterOperator, path: String, value: String, starIsWildcard: Bool, operands: (String) throws(RestError) -> [BSON],
        items elementOperands: (String) throws(RestError) -> [BSON]
    ) throws(RestError) -> BSONDocument {
        switch op {
        case .eq:
            let items = try operands(value)
            return [path: items.count == 1 ? .document(["$eq": items[0]]) : .document(["$in": .array(items)])]
        case .neq:
            return [path: .document(["$nin": .array(try operands(value) + [.null])])]
        case .isdistinct:
            return [path: .document(["$nin": .array(try operands(value))])]
        case .gt, .gte, .lt, .lte:
            let name = "$" + op.rawValue
            let items = try operands(value)
            if items.count == 1 { return [path: .document([name: items[0]])] }
            return ["$or": .array(items.map { .document([path: .document([name: $0])]) })]
        case .like, .ilike:
            return [path: .regex(pattern: Self.regex(fromLike: value, starIsWildcard: starIsWildcard), options: op == .ilike ? "is" : "s")]
        case .match, .imatch:
            guard value.count <= MongoValues.maxPattern else {
                throw RestError(status: 400, code: "MB337", message: "regular expressions are limited to \(MongoValues.maxPattern) characters on a MongoDB source")
            }
            guard !value.utf8.contains(0) else { throw RestError(status: 400, code: "MB337", message: "a regular expression may not hold NUL") }
            return [path: .regex(pattern: value, options: op == .imatch ? "i" : "")]
        case .cs, .cd, .ov:
            let items = try arrayItems(value, operands: elementOperands)
            switch op {
            case .cs: return [path: .document(["$all": .array(items)])]
            case .ov: return [path: .document(["$in": .array(items)])]
            default: return [path: .document(["$type": .string("array"), "$not": .document(["$elemMatch": .document(["$nin": .array(items)])])])]
            }
        default:
            throw RestError(
                status: 400, code: "MB337", message: "operator '\(op.rawValue)' is not available on a MongoDB source",
                hint: "full-text and range operators need a PostgreSQL source")
        }
    }

    /// The operand of an array operator: `{a,b}` or a JSON array, each item typed like the field.
    private func arrayItems(_ value: String, operands: (String) throws(RestError) -> [BSON]) throws(RestError) -> [BSON] {
        if let items = PostgresArrayLiteral.parse(value) {
            var values: [BSON] = []
            for item in items {
                if let item { values += try operands(item) } else { values.append(.null) }
            }
            return values
        }
        if case .array(let items)? = try? JSONValue.parse(Array(value.utf8)) { return items.map(MongoValues.generic) }
        throw RestError(status: 400, code: "MB337", message: "only array containment is available on a MongoDB source", details: "operand: \(value)")
    }

    /// PostgreSQL's LIKE (`%`, `_`, `\` escapes; PostgREST's `*` for `%`) as an anchored
    /// regular expression with every other character literal: `^…(?![\s\S])`.
    static func regex(fromLike pattern: String, starIsWildcard: Bool = true) -> String {
        var out = "^"
        var escaped = false
        for character in pattern {
            if escaped {
                out += literal(character)
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "%": out += "[\\s\\S]*"
            case "*" where starIsWildcard: out += "[\\s\\S]*"
            case "_": out += "[\\s\\S]"
            default: out += literal(character)
            }
        }
        if escaped { out += "\\\\" }
        return out + "(?![\\s\\S])"
    }

    private static func literal(_ character: Character) -> String {
        if "\\^$.|?*+()[]{}/-".contains(character) { return "\\" + String(character) }
        if character == "\0" { return "\\x00" }
        return String(character)
    }

    // MARK: - Policy rules

    /// A policy rule as a `$match` document, and the `$lookup` stages its relation conditions
    /// need before it.
    mutating func rule(_ rule: RowRule, entity: Entity) throws(RestError) -> (stages: [BSON], match: BSONDocument) {
        switch rule {
        case .always(let value):
            return ([], value ? [:] : Self.nothing)
        case .and(let parts), .or(let parts):
            var stages: [BSON] = []
            var matches: [BSON] = []
            for part in parts {
                let rendered = try self.rule(part, entity: entity)
                stages += rendered.stages
                matches.append(.document(rendered.match))
            }
            if case .and = rule { return (stages, matches.isEmpty ? [:] : ["$and": .array(matches)]) }
            return (stages, matches.isEmpty ? Self.nothing : ["$or": .array(matches)])
        case .not(let inner):
            let rendered = try self.rule(inner, entity: entity)
            return (rendered.stages, ["$nor": .array([.document(rendered.match)])])
        case .related(let relation, let target, let inner):
            guard relation.junction == nil, relation.fromColumns.count == 1, relation.toColumns.count == 1 else {
                throw RestError(status: 400, code: "MB337", message: "the policy's relation '\(relation.constraint)' is not available on a MongoDB source")
            }
            let key = alias("r")
            let rendered = try self.rule(inner, entity: target)
            let pipeline = rendered.stages + [
                .document(["$match": .document(rendered.match)]), .document(["$limit": .int32(1)]), .document(["$project": .document(["_id": .int32(1)])]),
            ]
            let lookup: BSON = .document([
                "$lookup": .document([
                    "from": .string(target.name), "localField": .string(relation.fromColumns[0]), "foreignField": .string(relation.toColumns[0]),
                    "as": .string(key), "pipeline": .array(pipeline),
                ])
            ])
            return ([lookup], [key: .document(["$ne": .array([])])])
        case .compare(let column, let op, let value):
            func typed(_ value: JSONValue) throws(RestError) -> BSON {
                try MongoValues.value(value, native: column.nativeType, column: column.name, pointer: "/\(column.name)")
            }
            let name = column.name
            switch op {
            case .eq: return ([], [name: .document(["$eq": try typed(value)])])
            case .neq: return ([], [name: .document(["$nin": .array([try typed(value), .null])])])
            case .gt, .gte, .lt, .lte: return ([], [name: .document(["$" + op.rawValue: try typed(value)])])
            case .in, .nin:
                var items: [BSON] = []
                for item in value.arrayValue ?? [] where item != .null { items.append(try typed(item)) }
                return ([], [name: .document(op == .in ? ["$in": .array(items)] : ["$nin": .array(items + [.null])])])
            case .like, .ilike:
                return ([], [name: .regex(pattern: Self.regex(fromLike: value.stringValue ?? value.jsonString), options: op == .ilike ? "is" : "s")])
            case .contains:
                // An array field's items are typed as its elements.
                let native = column.nativeType.hasPrefix("array") ? MongoValues.elementNative(column.nativeType) : column.nativeType
                var items: [BSON] = []
                for item in value.arrayValue ?? [value] {
                    items.append(try MongoValues.value(item, native: native, column: column.name, pointer: "/\(column.name)"))
                }
                return ([], [name: .document(["$all": .array(items)])])
            case .isNull:
                return ([], [name: value.boolValue == false ? .document(["$ne": .null]) : .null])
            }
        }
    }
}
