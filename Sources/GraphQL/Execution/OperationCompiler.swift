import Connectors
import Foundation
import Runtime

/// Checks an operation's fields against the role's schema while lowering them: each collection,
/// to-one and to-many field becomes part of a `RestQuery` (select tree, conditions, order and
/// limits by embedding path), which the REST planner turns into one statement with the role's
/// policies. Depth and cost are counted on the way.
struct OperationCompiler {
    let schema: RoleSchema
    let options: GraphQLOptions
    let collector: FieldCollector
    private var aliasCount = 0
    private var cost = 0

    init(schema: RoleSchema, options: GraphQLOptions, collector: FieldCollector) {
        self.schema = schema
        self.options = options
        self.collector = collector
    }

    private mutating func alias(_ prefix: String) -> String {
        aliasCount += 1
        return "\(prefix)\(aliasCount)"
    }

    var inputs: InputCoercion { collector.inputs }

    mutating func compile(_ operation: OperationDefinition) throws(GraphQLError) -> OperationPlan {
        let rootType: SchemaType
        switch operation.kind {
        case .query: rootType = schema.types["Query"]!
        case .mutation:
            guard let name = schema.mutationType, let type = schema.types[name] else {
                throw .validation("Schema is not configured for mutations.", at: operation.location)
            }
            rootType = type
        case .subscription:
            throw GraphQLError("Subscriptions are not supported", code: "MB727", at: operation.location)
        }
        let fields = try collector.collect(operation.selections) { $0 == rootType.name }
        var roots: [OperationPlan.Root] = []
        for field in fields {
            let key = field.responseKey
            if field.name == "__typename" {
                roots.append(.constant(key: key, .string(rootType.name)))
                continue
            }
            if operation.kind == .query && (field.name == "__schema" || field.name == "__type") {
                guard options.introspection || schema.role == "service_role" || schema.introspectionByComment else {
                    throw GraphQLError("Introspection is disabled for this role", code: "MB726", at: field.location)
                }
                let introspection = Introspection(schema: schema, collector: collector)
                roots.append(.constant(key: key, try introspection.root(field)))
                continue
            }
            guard let definition = rootType.field(field.name) else {
                throw .validation("Unknown field \"\(field.name)\" on type \(rootType.name)", at: field.location)
            }
            let arguments = try self.arguments(field, definition)
            switch definition.resolver {
            case .collection(let typeName):
                let entity = schema.entities[typeName]!
                var query = RestQuery(select: nil)
                let (select, shape) = try connection(field, definition, entity, arguments: arguments, path: [], query: &query, depth: 1, multiplier: 1)
                query.select = select
                var countQuery: RestQuery?
                if shape.items.contains(where: { if case .totalCount = $0 { true } else { false } }) {
                    var count = RestQuery(select: [.column(Field(column: entity.entity.primaryKey[0]), alias: "n", cast: nil)])
                    count.conditions[[]] = try filterConditions(arguments["filter"], entity, location: field.location)
                    count.limit[[]] = 0
                    countQuery = count
                }
                roots.append(.collection(key: key, entity: entity.entity.name, query: query, shape: shape, countQuery: countQuery))
            case .byPk(let typeName):
                let entity = schema.entities[typeName]!
                var query = RestQuery(select: nil)
                query.conditions[[]] = entity.primaryKey.map { column in
                    .filter(Filter(column: column.name, op: .eq, value: .scalar(Self.text(arguments[definition.arguments.first { $0.column?.name == column.name }!.name] ?? .null))))
                }
                query.limit[[]] = 1
                let shape = try node(field, entity, path: [], query: &query, depth: 1, multiplier: 1)
                query.select = shape.select
                roots.append(.single(key: key, entity: entity.entity.name, query: query, node: shape.items))
            case .node:
                let (entity, conditions) = try nodeID(arguments["nodeId"] ?? .null, location: field.location)
                guard let entity else {
                    roots.append(.constant(key: key, .null))
                    continue
                }
                var query = RestQuery(select: nil)
                query.conditions[[]] = conditions
                query.limit[[]] = 1
                let shape = try node(field, entity, path: [], query: &query, depth: 1, multiplier: 1, fromInterface: true)
                query.select = shape.select
                roots.append(.single(key: key, entity: entity.entity.name, query: query, node: shape.items))
            case .function(let operation):
                let callArguments: [(String, JSONValue)] = definition.arguments.compactMap { declared in
                    guard let column = declared.column, let value = arguments[declared.name] else { return nil }
                    return (column.name, value)
                }
                if let entityName = operation.returnsEntity, let target = schema.entitiesBySQLName[entityName] {
                    var query = RestQuery(select: nil)
                    if operation.returnsSet {
                        let (select, shape) = try connection(field, definition, target, arguments: arguments, path: [], query: &query, depth: 1, multiplier: 1)
                        query.select = select
                        roots.append(.call(key: key, operation: operation, arguments: callArguments, query: query, answer: .connection(shape)))
                    } else {
                        let shape = try node(field, target, path: [], query: &query, depth: 1, multiplier: 1)
                        query.select = shape.select
                        roots.append(.call(key: key, operation: operation, arguments: callArguments, query: query, answer: .node(shape.items)))
                    }
                } else {
                    try leaf(field, definition)
                    roots.append(.call(key: key, operation: operation, arguments: callArguments, query: RestQuery(select: nil), answer: .value(format(definition.type))))
                }
            case .insert(let typeName), .update(let typeName), .delete(let typeName):
                roots.append(.write(key: key, try mutation(field, definition, schema.entities[typeName]!, arguments: arguments)))
            default:
                throw .validation("Unknown field \"\(field.name)\" on type \(rootType.name)", at: field.location)
            }
        }
        return OperationPlan(roots: roots, isMutation: operation.kind == .mutation)
    }

    // MARK: - Arguments

    /// A field's arguments coerced to their declared types; unknown ones and missing required ones
    /// are refused.
    func arguments(_ field: FieldSelection, _ definition: SchemaField) throws(GraphQLError) -> JSONObject {
        var values = JSONObject()
        for argument in field.arguments {
            guard let declared = definition.argument(argument.name) else {
                throw .validation("Unknown argument \"\(argument.name)\" on field \"\(definition.name)\".", at: argument.location)
            }
            if let value = try inputs.literal(argument.value, as: declared.type, location: argument.location) { values[argument.name] = value }
        }
        for declared in definition.arguments where values[declared.name] == nil {
            if let defaultValue = declared.defaultValue, let number = Int64(defaultValue) {
                values[declared.name] = .integer(number)
            } else if declared.type.isNonNull {
                throw .validation("Field \"\(definition.name)\" argument \"\(declared.name)\" of type \"\(declared.type)\" is required, but it was not provided.", at: field.location)
            }
        }
        return values
    }

    // MARK: - Rows of an entity

    struct NodeCompilation {
        var select: [SelectItem] = []
        var items: [NodeItem] = []
        /// Column → alias, so a column asked for twice (or by nodeId and a cursor) is read once.
        var columns: [String: String] = [:]
    }

    /// The fields selected on rows of `entity`.
    mutating func node(
        _ parent: FieldSelection, _ entity: EntityType, path: [String], query: inout RestQuery, depth: Int, multiplier: Int, fromInterface: Bool = false,
        extraColumns: [String] = []
    ) throws(GraphQLError) -> NodeCompilation {
        guard !parent.selections.isEmpty else {
            throw .validation("Field \"\(parent.name)\" of type \"\(entity.typeName)\" must have a selection of subfields.", at: parent.location)
        }
        guard let type = schema.types[entity.typeName] else { throw .validation("Unknown type \"\(entity.typeName)\".") }
        var compiled = NodeCompilation()
        func column(_ name: String, compiled: inout NodeCompilation, aliases: inout Int) -> String {
            if let existing = compiled.columns[name] { return existing }
            aliases += 1
            let alias = "c\(aliases)"
            compiled.columns[name] = alias
            compiled.select.append(.column(Field(column: name), alias: alias, cast: nil))
            return alias
        }
        var columnCount = 0
        for name in extraColumns { _ = column(name, compiled: &compiled, aliases: &columnCount) }
        let typeName = entity.typeName
        let fields = try collector.collect(parent.selections) { $0 == typeName || $0 == "Node" }
        for field in fields {
            let key = field.responseKey
            if field.name == "__typename" {
                compiled.items.append(.typename(key: key, value: typeName))
                continue
            }
            guard let definition = type.field(field.name) else {
                throw .validation("Unknown field \"\(field.name)\" on type \(fromInterface ? "Node" : typeName)", at: field.location)
            }
            try checkDepth(depth + 1, field)
            let arguments = try self.arguments(field, definition)
            switch definition.resolver {
            case .nodeID:
                try leaf(field, definition)
                let aliases = entity.entity.primaryKey.map { column($0, compiled: &compiled, aliases: &columnCount) }
                compiled.items.append(.nodeID(key: key, entity: EntityNameParts(schema: entity.entity.schema, name: entity.entity.name), aliases: aliases))
            case .column(let columnModel):
                try leaf(field, definition)
                let alias = column(columnModel.name, compiled: &compiled, aliases: &columnCount)
                compiled.items.append(.column(key: key, alias: alias, format: format(definition.type)))
            case .toOne(let relation, let targetName):
                let target = schema.entities[targetName]!
                let embedAlias = alias("o")
                cost += multiplier
                try checkCost(field)
                let inner = try node(field, target, path: path + [embedAlias], query: &query, depth: depth + 1, multiplier: multiplier)
                compiled.select.append(.embed(Embed(relation: relation, target: target.entity.name, alias: embedAlias, select: inner.select)))
                compiled.items.append(.toOne(key: key, alias: embedAlias, node: inner.items))
            case .toMany(let relation, let targetName):
                let target = schema.entities[targetName]!
                let embedAlias = alias("m")
                let (select, compiledShape) = try connection(
                    field, definition, target, arguments: arguments, path: path + [embedAlias], query: &query, depth: depth + 1, multiplier: multiplier)
                compiled.select.append(.embed(Embed(relation: relation, target: target.entity.name, alias: embedAlias, select: select)))
                var shape = compiledShape
                if shape.items.contains(where: { if case .totalCount = $0 { true } else { false } }) {
                    // Counted by a second embed of the same rows, filtered but not paged.
                    let countAlias = alias("n")
                    let key = target.entity.primaryKey[0]
                    compiled.select.append(.embed(Embed(relation: relation, target: target.entity.name, alias: countAlias, select: [.column(Field(column: key), alias: "k", cast: nil)])))
                    query.conditions[path + [countAlias]] = try filterConditions(arguments["filter"], target, location: field.location)
                    shape.countAlias = countAlias
                }
                compiled.items.append(.connection(key: key, alias: embedAlias, shape: shape))
            default:
                throw .validation("Unknown field \"\(field.name)\" on type \(typeName)", at: field.location)
            }
        }
        return compiled
    }

    func leaf(_ field: FieldSelection, _ definition: SchemaField) throws(GraphQLError) {
        guard field.selections.isEmpty else {
            throw .validation("Field \"\(field.name)\" must not have a selection since type \"\(definition.type)\" has no subfields.", at: field.location)
        }
    }

    func checkDepth(_ depth: Int, _ field: FieldSelection) throws(GraphQLError) {
        guard depth <= options.maxDepth else {
            throw GraphQLError("Query depth exceeds the limit of \(options.maxDepth)", code: "MB724", at: field.location)
        }
    }

    func checkCost(_ field: FieldSelection) throws(GraphQLError) {
        guard cost <= options.maxCost else {
            throw GraphQLError("Query cost exceeds the limit of \(options.maxCost) rows", code: "MB725", at: field.location)
        }
    }

    func format(_ type: TypeReference) -> ValueFormat {
        switch type {
        case .nonNull(let inner): format(inner)
        case .list(let inner): .list(format(inner))
        case .named("BigInt"), .named("BigFloat"): .text
        case .named("JSON"): .json
        case .named(let name):
            if let renamed = schema.types[name]?.enumSQLValues, !renamed.isEmpty {
                .enumeration(Dictionary(renamed.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first }))
            } else {
                .plain
            }
        }
    }

    // MARK: - Connections

    /// A collection field: its page, order, cursors and filter at `path`, and the shape of its
    /// answer. Returns the select list of its rows.
    mutating func connection(
        _ field: FieldSelection, _ definition: SchemaField, _ entity: EntityType, arguments: JSONObject, path: [String], query: inout RestQuery,
        depth: Int, multiplier: Int
    ) throws(GraphQLError) -> ([SelectItem], ConnectionShape) {
        let location = field.location
        let maxRows = min(entity.maxRows ?? options.maxRows, options.maxRows)
        let first = arguments["first"]?.intValue.map(Int.init)
        let last = arguments["last"]?.intValue.map(Int.init)
        let offset = arguments["offset"]?.intValue.map(Int.init)
        let after = arguments["after"]?.stringValue
        let before = arguments["before"]?.stringValue
        if first != nil && last != nil { throw .validation("\"first\" and \"last\" may not be used together", at: location) }
        if after != nil && before != nil { throw .validation("\"before\" and \"after\" may not be used together", at: location) }
        if last != nil && offset != nil { throw .validation("\"offset\" may not be used with \"last\"", at: location) }
        if let bad = [first, last, offset].compactMap({ $0 }).first(where: { $0 < 0 }) {
            throw .validation("pagination arguments may not be negative (\(bad))", at: location)
        }
        let reversed = last != nil || before != nil
        let pageSize = min(first ?? last ?? maxRows, maxRows)
        cost += multiplier * pageSize
        try checkCost(field)

        // Order: the requested terms, then the key, so that cursors are exact.
        var terms: [OrderTerm] = []
        for item in arguments["orderBy"]?.arrayValue ?? [] {
            for (fieldName, direction) in item.objectValue ?? [:] {
                guard let column = schema.types[entity.orderByType]?.inputField(fieldName)?.column, let direction = direction.stringValue else { continue }
                terms.append(OrderTerm(
                    column: column.name, descending: direction.hasPrefix("Desc"), nulls: direction.hasSuffix("NullsFirst") ? .first : .last))
            }
        }
        for key in entity.entity.primaryKey where !terms.contains(where: { $0.field.name == key }) {
            terms.append(OrderTerm(column: key, descending: false, nulls: .last))
        }
        let effective = reversed ? terms.map { OrderTerm(column: $0.field.name, descending: !$0.descending, nulls: $0.nulls == .first ? .last : .first) } : terms

        var conditions = try filterConditions(arguments["filter"], entity, location: location)
        if let cursor = reversed ? before : after {
            let values = try decodeCursor(cursor, count: terms.count, location: location)
            conditions.append(Self.keyset(effective, values: values))
        }
        query.conditions[path] = conditions
        query.order[path] = effective
        query.limit[path] = pageSize + 1
        if let offset, offset > 0 { query.offset[path] = offset }

        // The connection's own fields.
        var items: [ConnectionShape.Item] = []
        var select: [SelectItem] = []
        let cursorColumns = terms.map(\.field.name)
        var cursorAliases: [String] = []
        var nodeCompiled: NodeCompilation?
        let connectionType = entity.connectionType
        guard !field.selections.isEmpty else {
            throw .validation("Field \"\(field.name)\" of type \"\(connectionType)\" must have a selection of subfields.", at: location)
        }
        for part in try collector.collect(field.selections, applies: { $0 == connectionType }) {
            let key = part.responseKey
            try checkDepth(depth + 1, part)
            guard part.arguments.isEmpty else {
                throw .validation("Unknown argument \"\(part.arguments[0].name)\" on field \"\(part.name)\".", at: part.arguments[0].location)
            }
            switch part.name {
            case "__typename": items.append(.typename(key: key, value: connectionType))
            case "totalCount":
                guard part.selections.isEmpty else { throw .validation("Field \"totalCount\" must not have a selection since type \"Int!\" has no subfields.", at: part.location) }
                items.append(.totalCount(key: key))
            case "pageInfo":
                var pageItems: [ConnectionShape.PageInfoItem] = []
                guard !part.selections.isEmpty else { throw .validation("Field \"pageInfo\" of type \"PageInfo!\" must have a selection of subfields.", at: part.location) }
                for info in try collector.collect(part.selections, applies: { $0 == "PageInfo" }) {
                    let infoKey = info.responseKey
                    switch info.name {
                    case "__typename": pageItems.append(.typename(key: infoKey, value: "PageInfo"))
                    case "hasNextPage": pageItems.append(.hasNextPage(key: infoKey))
                    case "hasPreviousPage": pageItems.append(.hasPreviousPage(key: infoKey))
                    case "startCursor": pageItems.append(.startCursor(key: infoKey))
                    case "endCursor": pageItems.append(.endCursor(key: infoKey))
                    default: throw .validation("Unknown field \"\(info.name)\" on type PageInfo", at: info.location)
                    }
                }
                items.append(.pageInfo(key: key, pageItems))
            case "edges":
                var edgeItems: [ConnectionShape.EdgeItem] = []
                guard !part.selections.isEmpty else { throw .validation("Field \"edges\" of type \"[\(entity.edgeType)!]!\" must have a selection of subfields.", at: part.location) }
                for edgeField in try collector.collect(part.selections, applies: { $0 == entity.edgeType }) {
                    let edgeKey = edgeField.responseKey
                    try checkDepth(depth + 2, edgeField)
                    switch edgeField.name {
                    case "__typename": edgeItems.append(.typename(key: edgeKey, value: entity.edgeType))
                    case "cursor": edgeItems.append(.cursor(key: edgeKey))
                    case "node":
                        let compiled = try node(edgeField, entity, path: path, query: &query, depth: depth + 2, multiplier: multiplier * max(pageSize, 1), extraColumns: cursorColumns)
                        nodeCompiled = Self.merge(nodeCompiled, compiled)
                        edgeItems.append(.node(key: edgeKey, compiled.items))
                    default: throw .validation("Unknown field \"\(edgeField.name)\" on type \(entity.edgeType)", at: edgeField.location)
                    }
                }
                items.append(.edges(key: key, edgeItems))
            default:
                throw .validation("Unknown field \"\(part.name)\" on type \(connectionType)", at: part.location)
            }
        }
        if let nodeCompiled {
            select = nodeCompiled.select
            cursorAliases = cursorColumns.map { nodeCompiled.columns[$0]! }
        } else {
            for (index, name) in cursorColumns.enumerated() {
                select.append(.column(Field(column: name), alias: "c\(index + 1)", cast: nil))
                cursorAliases.append("c\(index + 1)")
            }
        }
        let shape = ConnectionShape(
            items: items, pageSize: pageSize, reversed: reversed, hasPrevious: after != nil || (offset ?? 0) > 0, hasNextWhenReversed: before != nil,
            cursorAliases: cursorAliases, countAlias: nil)
        return (select, shape)
    }

    /// Two `node` selections under one connection (aliases) share one row; their aliases differ.
    static func merge(_ existing: NodeCompilation?, _ next: NodeCompilation) -> NodeCompilation {
        guard var merged = existing else { return next }
        let known = Set(merged.select.map(Self.alias))
        merged.select += next.select.filter { !known.contains(Self.alias($0)) }
        for (column, alias) in next.columns where merged.columns[column] == nil { merged.columns[column] = alias }
        return merged
    }

    static func alias(_ item: SelectItem) -> String {
        switch item {
        case .column(let field, let alias, _): alias ?? field.name
        case .embed(let embed): embed.alias ?? embed.relation
        case .star: "*"
        }
    }

    // MARK: - Filters

    /// `{col: {op: value}, and: [...], or: [...], not: {...}, nodeId: {eq}}` as REST conditions.
    func filterConditions(_ filter: JSONValue?, _ entity: EntityType, location: SourceLocation) throws(GraphQLError) -> [Condition] {
        guard let object = filter?.objectValue else { return [] }
        let filterType = schema.types[entity.filterType]
        var conditions: [Condition] = []
        for (key, value) in object where value != .null {
            switch key {
            case "and":
                for item in value.arrayValue ?? [] { conditions += try filterConditions(item, entity, location: location) }
            case "or":
                let branches = try (value.arrayValue ?? []).map { item throws(GraphQLError) -> Condition in
                    let inner = try filterConditions(item, entity, location: location)
                    return inner.isEmpty ? Self.always(entity) : .and(inner, negated: false)
                }
                conditions.append(branches.isEmpty ? Self.never(entity) : .or(branches, negated: false))
            case "not":
                let inner = try filterConditions(value, entity, location: location)
                if !inner.isEmpty { conditions.append(.and(inner, negated: true)) }
            case "nodeId":
                guard let id = value["eq"], id != .null else { continue }
                let (target, keyConditions) = try nodeID(id, location: location)
                conditions += target === entity ? keyConditions : [Self.never(entity)]
            default:
                guard let column = filterType?.inputField(key)?.column, let ops = value.objectValue else { continue }
                for (op, operand) in ops where operand != .null {
                    conditions.append(Self.filter(column.name, op, operand))
                }
            }
        }
        return conditions
    }

    static func filter(_ column: String, _ op: String, _ operand: JSONValue) -> Condition {
        if let items = operand.arrayValue, op != "in" {
            // An array column's filter: the items as one array literal.
            let literal = PostgresArrayLiteral.render(items.map(text))
            let arrayOp: FilterOperator
            switch op {
            case "contains": arrayOp = .cs
            case "containedBy": arrayOp = .cd
            case "overlaps": arrayOp = .ov
            default: arrayOp = .eq
            }
            return .filter(Filter(column: column, op: arrayOp, value: .scalar(literal)))
        }
        switch op {
        case "regex": return .filter(Filter(column: column, op: .match, value: .scalar(text(operand))))
        case "iregex": return .filter(Filter(column: column, op: .imatch, value: .scalar(text(operand))))
        case "in": return .filter(Filter(column: column, op: .in, value: .list((operand.arrayValue ?? []).map(text))))
        case "is": return .filter(Filter(column: column, op: .is, value: .scalar(operand.stringValue == "NOT_NULL" ? "not_null" : "null")))
        case "startsWith":
            var pattern = ""
            for character in operand.stringValue ?? "" {
                if character == "%" || character == "_" || character == "\\" { pattern.append("\\") }
                pattern.append(character)
            }
            var filter = Filter(column: column, op: .like, value: .scalar(pattern + "%"))
            // The text is the character string to start with: a `*` in it is a `*`.
            filter.starIsWildcard = false
            return .filter(filter)
        default:
            return .filter(Filter(column: column, op: FilterOperator(rawValue: op) ?? .eq, value: .scalar(text(operand))))
        }
    }

    /// A value as the REST grammar's filter text.
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): text
        case .integer(let number): String(number)
        case .number(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        default: value.jsonString
        }
    }

    /// A condition no row meets / every row meets (the key is never null).
    static func never(_ entity: EntityType) -> Condition {
        .filter(Filter(column: entity.entity.primaryKey[0], op: .is, value: .scalar("null")))
    }

    static func always(_ entity: EntityType) -> Condition {
        .filter(Filter(column: entity.entity.primaryKey[0], op: .is, value: .scalar("not_null")))
    }

    // MARK: - Cursors and node ids

    func decodeCursor(_ cursor: String, count: Int, location: SourceLocation) throws(GraphQLError) -> [JSONValue] {
        guard let data = Data(base64Encoded: cursor), let values = try? JSONValue.parse(Array(data)).arrayValue, values.count == count else {
            throw .cursor("Invalid cursor", at: location)
        }
        return values
    }

    /// Rows after `values` in `terms`' order: for each term, the earlier terms equal and this one past.
    static func keyset(_ terms: [OrderTerm], values: [JSONValue]) -> Condition {
        var branches: [Condition] = []
        for (index, term) in terms.enumerated() {
            var parts: [Condition] = []
            for (earlier, value) in zip(terms.prefix(index), values) {
                parts.append(value == .null
                    ? .filter(Filter(column: earlier.field.name, op: .is, value: .scalar("null")))
                    : .filter(Filter(column: earlier.field.name, op: .eq, value: .scalar(text(value)))))
            }
            let column = term.field.name
            let nullsFirst = term.nulls == .first
            let value = values[index]
            let past: Condition?
            if value == .null {
                // Nulls come first: every non-null value is past them; nulls last: nothing is.
                past = nullsFirst ? .filter(Filter(column: column, op: .is, value: .scalar("null"), negated: true)) : nil
            } else {
                let beyond = Condition.filter(Filter(column: column, op: term.descending ? .lt : .gt, value: .scalar(text(value))))
                past = nullsFirst ? beyond : .or([beyond, .filter(Filter(column: column, op: .is, value: .scalar("null")))], negated: false)
            }
            guard let past else { continue }
            branches.append(parts.isEmpty ? past : .and(parts + [past], negated: false))
        }
        // Nothing is past the cursor: the last term is a key column, never null.
        if branches.isEmpty { return .filter(Filter(column: terms[terms.count - 1].field.name, op: .is, value: .scalar("null"))) }
        return .or(branches, negated: false)
    }

    /// `nodeId` = base64 of `["schema", "table", key…]`: the entity (nil when the role cannot see
    /// it) and the key's conditions.
    func nodeID(_ value: JSONValue, location: SourceLocation) throws(GraphQLError) -> (EntityType?, [Condition]) {
        guard let text = value.stringValue, let data = Data(base64Encoded: text), let parts = try? JSONValue.parse(Array(data)).arrayValue,
            parts.count >= 3, let schemaName = parts[0].stringValue, let tableName = parts[1].stringValue
        else {
            throw .cursor("Invalid nodeId", at: location)
        }
        guard let entity = schema.entitiesBySQLName[EntityName(schema: schemaName, name: tableName)] else { return (nil, []) }
        let key = entity.entity.primaryKey
        guard key.count == parts.count - 2 else { throw .cursor("Invalid nodeId", at: location) }
        return (entity, zip(key, parts.dropFirst(2)).map { .filter(Filter(column: $0, op: .eq, value: .scalar(Self.text($1)))) })
    }

    // MARK: - Mutations

    mutating func mutation(_ field: FieldSelection, _ definition: SchemaField, _ entity: EntityType, arguments: JSONObject) throws(GraphQLError) -> MutationPlan {
        var records: [SelectItem] = []
        var answer: [(key: String, item: MutationPlan.AnswerItem)] = []
        let responseType = definition.type.namedType
        guard !field.selections.isEmpty else {
            throw .validation("Field \"\(field.name)\" of type \"\(definition.type)\" must have a selection of subfields.", at: field.location)
        }
        var scratch = RestQuery(select: nil)
        for part in try collector.collect(field.selections, applies: { $0 == responseType }) {
            switch part.name {
            case "__typename": answer.append((part.responseKey, .typename(responseType)))
            case "affectedCount": answer.append((part.responseKey, .affectedCount))
            case "records":
                let compiled = try node(part, entity, path: [], query: &scratch, depth: 2, multiplier: 1)
                let known = Set(records.map(Self.alias))
                records += compiled.select.filter { !known.contains(Self.alias($0)) }
                answer.append((part.responseKey, .records(compiled.items)))
            default: throw .validation("Unknown field \"\(part.name)\" on type \(responseType)", at: part.location)
            }
        }
        let atMost = Int(arguments["atMost"]?.intValue ?? 1)
        let typeName = entity.typeName
        switch definition.resolver {
        case .insert:
            guard let input = schema.types[typeName + "InsertInput"] else { throw .validation("Unknown type \(typeName)InsertInput") }
            let rows = (arguments["objects"]?.arrayValue ?? []).map { Self.row($0.objectValue ?? [:], input) }
            guard !rows.isEmpty else { throw .validation("\"objects\" must not be empty", at: field.location) }
            return MutationPlan(entity: entity.entity.name, kind: .insert(rows: rows), records: records, expecting: .any, answerItems: answer)
        case .update:
            guard let input = schema.types[typeName + "UpdateInput"] else { throw .validation("Unknown type \(typeName)UpdateInput") }
            let values = Self.row(arguments["set"]?.objectValue ?? [:], input)
            guard !values.isEmpty else { throw .validation("\"set\" must name at least one field", at: field.location) }
            let conditions = try filterConditions(arguments["filter"], entity, location: field.location)
            return MutationPlan(entity: entity.entity.name, kind: .update(values: values, conditions: conditions), records: records, expecting: .atMost(atMost), answerItems: answer)
        default:
            let conditions = try filterConditions(arguments["filter"], entity, location: field.location)
            return MutationPlan(entity: entity.entity.name, kind: .delete(conditions: conditions), records: records, expecting: .atMost(atMost), answerItems: answer)
        }
    }

    /// An input object keyed by column: JSON columns take pg_graphql's JSON-as-text.
    static func row(_ object: JSONObject, _ input: SchemaType) -> JSONObject {
        var row = JSONObject()
        for (key, value) in object {
            guard let field = input.inputField(key), let column = field.column else { continue }
            if field.type.namedType == "JSON", let text = value.stringValue, let parsed = try? JSONValue.parse(Array(text.utf8)) {
                row[column.name] = parsed
            } else {
                row[column.name] = value
            }
        }
        return row
    }
}
