import Runtime

/// Resolves a parsed `RestQuery` against the schema model: every column, relation and function
/// named by the client must exist, or the client hears which one does not.
public struct RestPlanner: Sendable {
    public let model: SchemaModel
    public let access: Access

    public init(model: SchemaModel, access: Access = .service) {
        self.model = model
        self.access = access
    }

    var compiler: PolicyCompiler { PolicyCompiler(model: model, access: access) }

    public func entity(_ name: String) throws(RestError) -> Entity {
        guard let entity = model.entity(named: name) else { throw .unknownTable(name) }
        return entity
    }

    // MARK: - Reads

    public func read(_ entityName: String, _ query: RestQuery) throws(RestError) -> ReadPlan {
        let plan = try read(try entity(entityName), select: query.select, query: query, path: [])
        let known = Set(Self.paths(of: plan, prefix: []))
        for path in Array(query.conditions.keys) + Array(query.order.keys) + Array(query.limit.keys) + Array(query.offset.keys)
        where !path.isEmpty && !known.contains(path) {
            throw RestError(
                status: 400, code: "PGRST108", message: "'\(path.joined(separator: "."))' is not an embedded resource in this request",
                hint: "add it to select to filter, order or limit it")
        }
        return plan
    }

    static func paths(of plan: ReadPlan, prefix: [String]) -> [[String]] {
        plan.embeds.flatMap { embed -> [[String]] in
            let path = prefix + [embed.outputName]
            return [path] + paths(of: embed.plan, prefix: path)
        }
    }

    func read(_ entity: Entity, select: [SelectItem]?, query: RestQuery, path: [String]) throws(RestError) -> ReadPlan {
        let grant = try compiler.grant(entity, .read)
        let allowed = grant?.columns
        func permit(_ field: Field) throws(RestError) {
            if let allowed, !allowed.contains(field.name) { throw access.deniedColumn(field.name, entity.name, .read) }
        }
        var columns: [SelectedColumn] = []
        var embeds: [EmbedPlan] = []
        for item in select ?? [.star] {
            switch item {
            case .star:
                columns += entity.columns.filter { allowed?.contains($0.name) ?? true }
                    .map { SelectedColumn(field: Field(name: $0.name, path: []), outputName: $0.name, cast: nil) }
            case .column(let field, let alias, let cast):
                try check(field, in: entity)
                try permit(field)
                columns.append(SelectedColumn(field: field, outputName: alias ?? field.defaultAlias, cast: cast))
            case .embed(let embed):
                let relation = try resolve(embed, from: entity)
                guard let target = model.entities.first(where: { $0.qualifiedName == relation.to }) else {
                    throw .noRelation(entity.name, embed.relation)
                }
                let name = embed.alias ?? embed.relation
                let plan = try read(target, select: embed.select.isEmpty ? [.star] : embed.select, query: query, path: path + [name])
                // The join reads the key columns on both sides, and a junction table in between:
                // all of them must be readable, as PostgreSQL's column privileges would demand.
                for column in relation.fromColumns { try permit(Field(name: column, path: []) ) }
                var junctionRule: RowRule?
                if !access.bypass {
                    for column in relation.toColumns where !(plan.readableColumns?.contains(column) ?? true) {
                        throw access.deniedColumn(column, target.name, .read)
                    }
                    if let junction = relation.junction,
                        let junctionEntity = model.entities.first(where: { $0.qualifiedName == junction.entity })
                    {
                        let junctionGrant = try compiler.grant(junctionEntity, .read)
                        for column in junction.fromColumns + junction.toColumns where !(junctionGrant?.columns?.contains(column) ?? true) {
                            throw access.deniedColumn(column, junctionEntity.name, .read)
                        }
                        junctionRule = junctionGrant?.rows
                    }
                }
                embeds.append(EmbedPlan(relation: relation, outputName: name, inner: embed.inner, plan: plan, junctionRule: junctionRule))
            }
        }
        let conditions = query.conditions[path] ?? []
        for condition in conditions {
            try check(condition, in: entity)
            for field in Self.fields(of: condition) { try permit(field) }
        }
        let order = query.order[path] ?? []
        for term in order {
            try check(term.field, in: entity)
            try permit(term.field)
        }
        return ReadPlan(
            entity: entity, columns: columns, embeds: embeds, conditions: conditions, order: order,
            limit: query.limit[path], offset: query.offset[path], rowRule: grant?.rows, readableColumns: allowed)
    }

    func check(_ field: Field, in entity: Entity) throws(RestError) {
        guard let column = entity.column(named: field.name) else { throw .unknownColumn(field.name, in: entity.name) }
        if !field.path.isEmpty && column.type != .json {
            throw RestError(status: 400, code: "PGRST100", message: "'\(field.name)' is not a JSON column; -> and ->> apply to json and jsonb")
        }
    }

    static func fields(of condition: Condition) -> [Field] {
        switch condition {
        case .filter(let filter): [filter.field]
        case .and(let children, _), .or(let children, _): children.flatMap(fields(of:))
        }
    }

    func check(_ condition: Condition, in entity: Entity) throws(RestError) {
        switch condition {
        case .filter(let filter): try check(filter.field, in: entity)
        case .and(let children, _), .or(let children, _):
            for child in children { try check(child, in: entity) }
        }
    }

    /// Finds the relation an embed names: by target table, narrowed by a hint (constraint name,
    /// FK column or junction table), or by a foreign-key column of a many-to-one.
    func resolve(_ embed: Embed, from entity: Entity) throws(RestError) -> Relation {
        if let resolved = embed.resolved, resolved.from == entity.qualifiedName { return resolved }
        let outgoing = model.relations(from: entity.qualifiedName)
        var candidates = outgoing.filter { $0.to.name == embed.relation }
        if candidates.isEmpty {
            candidates = outgoing.filter { $0.kind != .manyToMany && $0.isToOne && $0.fromColumns == [embed.relation] }
        }
        if let hint = embed.hint {
            candidates = candidates.filter { relation in
                relation.constraint == hint || relation.fromColumns == [hint] || relation.toColumns == [hint]
                    || relation.junction?.entity.name == hint || relation.junction?.fromConstraint == hint
            }
        }
        switch candidates.count {
        case 0: throw .noRelation(entity.name, embed.relation)
        case 1: return candidates[0]
        default:
            throw .ambiguousRelation(entity.name, embed.relation, candidates.map { $0.junction?.entity.name ?? $0.constraint })
        }
    }

    // MARK: - Writes

    public func insert(
        _ entityName: String, rows: [JSONObject], query: RestQuery, onConflict: OnConflict?, missingDefault: Bool = false,
        returnsRows: Bool = true
    ) throws(RestError) -> WritePlan {
        let entity = try entity(entityName)
        guard entity.insertable else {
            throw RestError(status: 405, code: "PGRST105", message: "'\(entity.name)' does not accept inserts")
        }
        let grant = try compiler.grant(entity, .create)
        var rows = rows
        var columns: [String] = query.columns ?? []
        if query.columns == nil {
            var seen = Set<String>()
            for row in rows { for key in row.keys where seen.insert(key).inserted { columns.append(key) } }
        }
        for column in columns where entity.column(named: column) == nil { throw .unknownColumn(column, in: entity.name) }
        if let allowed = grant?.columns {
            for column in columns where !allowed.contains(column) { throw access.deniedColumn(column, entity.name, .create) }
        }
        // Presets win over whatever the caller sent: `owner_id = auth.uid` cannot be forged.
        for (column, value) in grant?.presets ?? [] {
            for index in rows.indices { rows[index][column] = value }
            if !columns.contains(column) { columns.append(column) }
        }
        var conflictUpdate: ConflictUpdate?
        if let onConflict, !access.bypass, case .merge(let conflictTarget) = onConflict {
            // The update half runs under the update policy: only rows it lets the caller update,
            // only its columns, its presets, and its check on the result.
            // Telling inserted from updated rows (for their two checks) needs a table's xmax.
            guard entity.kind == .table else {
                throw RestError(
                    status: 405, code: "PGRST105", message: "upserts under policies are supported on tables; '\(entity.name)' is a \(entity.kind.rawValue)",
                    hint: "insert, or update with PATCH")
            }
            let updateGrant = try compiler.grant(entity, .update)
            let createPresets = Set((grant?.presets ?? []).map(\.0))
            // Create presets say who a new row belongs to; they do not rewrite an existing row.
            let updated = columns.filter { !conflictTarget.contains($0) && !createPresets.contains($0) }
            if let allowed = updateGrant?.columns {
                for column in updated where !allowed.contains(column) { throw access.deniedColumn(column, entity.name, .update) }
            }
            conflictUpdate = ConflictUpdate(
                rows: updateGrant?.rows, columns: updated, presets: updateGrant?.presets ?? [], check: updateGrant?.check)
        }
        let target = ReadPlan(entity: entity, columns: [], embeds: [], conditions: [], order: [], limit: nil, offset: nil)
        return WritePlan(
            kind: .insert(rows: rows, columns: columns, onConflict: onConflict, missingDefault: missingDefault), target: target,
            returning: try returning(entity, query: query, needed: returnsRows), check: grant?.check, conflictUpdate: conflictUpdate)
    }

    static func both(_ first: RowRule?, _ second: RowRule?) -> RowRule? {
        switch (first, second) {
        case (nil, nil): nil
        case (let rule?, nil), (nil, let rule?): rule
        case (let a?, let b?): .and([a, b])
        }
    }

    /// What a write returns, seen through the caller's read policy when rows are sent back.
    func returning(_ entity: Entity, query: RestQuery, needed: Bool) throws(RestError) -> ReadPlan {
        if needed || access.bypass {
            return try read(entity, select: query.select, query: RestQuery(select: query.select), path: [])
        }
        return ReadPlan(entity: entity, columns: [], embeds: [], conditions: [], order: [], limit: nil, offset: nil)
    }

    public func update(_ entityName: String, values: JSONObject, query: RestQuery, returnsRows: Bool = true) throws(RestError) -> WritePlan {
        let entity = try entity(entityName)
        guard entity.updatable else {
            throw RestError(status: 405, code: "PGRST105", message: "'\(entity.name)' does not accept updates")
        }
        let grant = try compiler.grant(entity, .update)
        var values = values
        for column in values.keys where entity.column(named: column) == nil { throw .unknownColumn(column, in: entity.name) }
        if let allowed = grant?.columns {
            for column in values.keys where !allowed.contains(column) { throw access.deniedColumn(column, entity.name, .update) }
        }
        for (column, value) in grant?.presets ?? [] { values[column] = value }
        guard !values.isEmpty else {
            throw RestError(status: 400, code: "PGRST100", message: "PATCH needs at least one column to set")
        }
        var target = try filterPlan(entity, query: query)
        target.rowRule = Self.both(target.rowRule, grant?.rows)
        return WritePlan(
            kind: .update(values: values, columns: values.keys), target: target,
            returning: try returning(entity, query: query, needed: returnsRows), check: grant?.check)
    }

    /// The rows a write targets: the request's top-level filters, which must name existing
    /// columns (readability is not required to target rows, as in PostgreSQL's UPDATE … WHERE).
    func filterPlan(_ entity: Entity, query: RestQuery) throws(RestError) -> ReadPlan {
        // Refused rather than ignored: dropping them would write to more rows than asked.
        if !query.order.isEmpty || !query.limit.isEmpty || !query.offset.isEmpty || query.conditions.keys.contains(where: { !$0.isEmpty }) {
            throw RestError(
                status: 400, code: "PGRST100", message: "order, limit, offset and embedded filters are not supported on PATCH and DELETE",
                hint: "filter the rows to change with top-level filters")
        }
        let conditions = query.conditions[[]] ?? []
        for condition in conditions { try check(condition, in: entity) }
        var plan = ReadPlan(entity: entity, columns: [], embeds: [], conditions: conditions, order: [], limit: nil, offset: nil)
        // Filtering reveals values, so as in PostgreSQL, the filtered columns and rows must be readable.
        if !conditions.isEmpty, let grant = try compiler.grant(entity, .read) {
            for condition in conditions {
                for field in Self.fields(of: condition) where !(grant.columns?.contains(field.name) ?? true) {
                    throw access.deniedColumn(field.name, entity.name, .read)
                }
            }
            plan.rowRule = grant.rows
        }
        return plan
    }

    public func delete(_ entityName: String, query: RestQuery, returnsRows: Bool = true) throws(RestError) -> WritePlan {
        let entity = try entity(entityName)
        guard entity.deletable else {
            throw RestError(status: 405, code: "PGRST105", message: "'\(entity.name)' does not accept deletes")
        }
        let grant = try compiler.grant(entity, .delete)
        var target = try filterPlan(entity, query: query)
        target.rowRule = Self.both(target.rowRule, grant?.rows)
        return WritePlan(kind: .delete, target: target, returning: try returning(entity, query: query, needed: returnsRows))
    }

    // MARK: - Functions

    public func call(_ name: String, arguments: [(String, JSONValue)], query: RestQuery) throws(RestError) -> CallPlan {
        // A function runs with the source's own database rights, so calling one is granted
        // explicitly; rows of an entity it returns still pass through that entity's read policy.
        if !access.bypass && access.policies(for: name, .execute).isEmpty {
            throw access.denied(.execute, name)
        }
        let candidates = model.operations.filter { $0.name == name }
        let given = Set(arguments.map(\.0))
        guard let operation = candidates.first(where: { operation in
            let names = Set(operation.arguments.map(\.name))
            let required = Set(operation.arguments.filter { !$0.hasDefault }.map(\.name))
            return given.isSubset(of: names) && required.isSubset(of: given)
        }) else {
            if candidates.isEmpty { throw .unknownFunction(name) }
            throw RestError(
                status: 404, code: "PGRST202",
                message: "Could not find the function '\(name)(\(given.sorted().joined(separator: ", ")))' in the schema cache",
                hint: "its parameters: " + candidates.map { "(" + $0.arguments.map(\.name).joined(separator: ", ") + ")" }.joined(separator: " or "))
        }
        var read: ReadPlan?
        if let entityName = operation.returnsEntity, let entity = model.entities.first(where: { $0.qualifiedName == entityName }) {
            read = try self.read(entity, select: query.select, query: query, path: [])
        }
        return CallPlan(operation: operation, arguments: arguments.map { (name: $0.0, value: $0.1) }, read: read)
    }
}

extension RestQuery {
    init(select: [SelectItem]? = nil, conditions: [[String]: [Condition]] = [:]) {
        self.init()
        self.select = select
        self.conditions = conditions
    }
}
