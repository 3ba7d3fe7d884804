import Connectors
import Runtime

/// Compiled query plans, kept with the role schema that compiled them (so they go when the model
/// generation, the policies or the naming change) and keyed by document, operation, the tenant's
/// limits and the variables that shape the plan.
///
/// Variables that only supply a compared value — `filter: {id: {eq: $id}}`, a `…ByPk` key — are
/// left out of the key: the plan is compiled once with a placeholder in each one's place, and every
/// request puts its own values where the placeholders are. So the ten-thousandth `itemsByPk($id)`
/// skips the field checks, the lowering to REST plans and the depth and cost counts. Whatever a
/// placeholder cannot be traced through exactly (a value the compiler transforms, a key decoded
/// from it) marks the shape as compiled per request instead.
final class OperationPlanCache: @unchecked Sendable {
    enum Entry {
        case template(OperationPlan, slots: [String: String])
        case uncacheable
    }

    private let lock = Lock()
    private var entries: [String: Entry] = [:]
    private var bindable: [String: Set<String>] = [:]

    static let maxEntries = 512
    /// Documents longer than this are compiled per request (as `GraphQLState` parses them per request).
    static let maxDocumentBytes = 8 * 1024

    /// How many shapes are kept compiled.
    var templates: Int {
        lock.withLock { entries.values.filter { if case .template = $0 { true } else { false } }.count }
    }

    func entry(_ key: String) -> Entry? {
        lock.withLock { entries[key] }
    }

    func store(_ entry: Entry, key: String) {
        lock.withLock {
            if entries.count >= Self.maxEntries { entries.removeAll() }
            entries[key] = entry
        }
    }

    /// The operation's variables that only supply compared values, worked out once per document.
    func bindableVariables(document: String, operation: OperationDefinition, in parsed: GraphQLDocument) -> Set<String> {
        let key = "\(operation.name ?? "")\u{0}\(document)"
        if let known = lock.withLock({ bindable[key] }) { return known }
        let found = PlanVariables.bindable(operation, parsed)
        lock.withLock {
            if bindable.count >= Self.maxEntries { bindable.removeAll() }
            bindable[key] = found
        }
        return found
    }
}

/// Finds, in a document's text, the variables a plan can take as values bound at run time, and
/// gives them placeholders.
enum PlanVariables {
    /// Operators whose operand reaches the statement unchanged, as one bound value.
    static let boundOperators: Set<String> = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "regex", "iregex"]
    /// Declared types whose values a placeholder can stand for.
    static let boundTypes: Set<String> = ["Int", "BigInt", "Float", "BigFloat", "String", "ID", "UUID", "Date", "Datetime", "Time"]

    static func bindable(_ operation: OperationDefinition, _ document: GraphQLDocument) -> Set<String> {
        var candidates: Set<String> = []
        var structural: Set<String> = []
        func everyVariable(_ value: InputValue) {
            switch value {
            case .variable(let name): structural.insert(name)
            case .list(let items): items.forEach(everyVariable)
            case .object(let fields): fields.forEach { everyVariable($0.value) }
            default: break
            }
        }
        func filter(_ value: InputValue) {
            switch value {
            case .object(let fields):
                for field in fields {
                    switch field.name {
                    case "and", "or", "not":
                        if case .list(let items) = field.value { items.forEach(filter) } else { filter(field.value) }
                    case "nodeId":
                        everyVariable(field.value)
                    default:
                        guard case .object(let operators) = field.value else {
                            everyVariable(field.value)
                            continue
                        }
                        for op in operators {
                            if boundOperators.contains(op.name), case .variable(let name) = op.value {
                                candidates.insert(name)
                            } else {
                                everyVariable(op.value)
                            }
                        }
                    }
                }
            default:
                everyVariable(value)
            }
        }
        func directives(_ list: [Directive]) {
            for directive in list { directive.arguments.forEach { everyVariable($0.value) } }
        }
        func selections(_ list: [Selection]) {
            for selection in list {
                switch selection {
                case .field(let field):
                    directives(field.directives)
                    for argument in field.arguments {
                        if argument.name == "filter" {
                            filter(argument.value)
                        } else if field.name.hasSuffix("ByPk"), case .variable(let name) = argument.value {
                            candidates.insert(name)
                        } else {
                            everyVariable(argument.value)
                        }
                    }
                    selections(field.selections)
                case .fragmentSpread(_, let list, _):
                    directives(list)
                case .inlineFragment(_, let list, let inner, _):
                    directives(list)
                    selections(inner)
                }
            }
        }
        directives(operation.directives)
        selections(operation.selections)
        for fragment in document.fragments.values {
            directives(fragment.directives)
            selections(fragment.selections)
        }
        let typed = Set(operation.variables.filter { boundTypes.contains($0.type.nullable.description) }.map(\.name))
        return candidates.subtracting(structural).intersection(typed)
    }

    /// A stand-in for a variable's value of the same JSON kind, unlike any value a document
    /// writes: every one holds the marker `1987654` (numbers) or `mbvar` (text). `index` keeps the
    /// stand-ins of one compile apart (below 1,000); a second compile with `index + 1000`'s
    /// stand-ins confirms where they went.
    static func placeholder(for value: JSONValue, index: Int) -> JSONValue? {
        switch value {
        case .string: .string("\u{0}mbvar\(index)\u{0}")
        case .integer: .integer(Int64(-1_987_654_000 - index % 1000 - (index >= 1000 ? 1_000_000 : 0)))
        case .number: .number(-1_987_654_000.5 - Double(index % 1000) - (index >= 1000 ? 1_000_000 : 0))
        default: nil
        }
    }

    /// Whether text could hold a placeholder's text (then a plan is compiled per request).
    static func mayHoldPlaceholder(_ text: String) -> Bool {
        text.contains("1987654") || text.contains("1988654") || text.contains("mbvar")
    }
}

extension OperationPlan {
    /// The plan with `transform` applied to every filter of its reads, visited in one fixed order
    /// (roots in order, embedding paths sorted, conditions as written).
    func mappingFilters(_ transform: (Filter) -> Filter) -> OperationPlan {
        func map(_ query: RestQuery) -> RestQuery {
            var query = query
            for path in query.conditions.keys.sorted(by: { $0.joined(separator: "\u{0}") < $1.joined(separator: "\u{0}") }) {
                query.conditions[path] = query.conditions[path]?.map(map)
            }
            return query
        }
        func map(_ condition: Condition) -> Condition {
            switch condition {
            case .filter(let filter): .filter(transform(filter))
            case .and(let inner, let negated): .and(inner.map(map), negated: negated)
            case .or(let inner, let negated): .or(inner.map(map), negated: negated)
            }
        }
        var mapped = self
        mapped.roots = roots.map { root in
            switch root {
            case .collection(let key, let entity, let query, let shape, let count):
                .collection(key: key, entity: entity, query: map(query), shape: shape, countQuery: count.map(map))
            case .single(let key, let entity, let query, let node):
                .single(key: key, entity: entity, query: map(query), node: node)
            case .call(let key, let operation, let arguments, let query, let answer):
                .call(key: key, operation: operation, arguments: arguments, query: map(query), answer: answer)
            case .constant, .write:
                root
            }
        }
        return mapped
    }

    /// The compared values of the plan's reads, in `mappingFilters`' order.
    var comparedValues: [FilterValue] {
        var values: [FilterValue] = []
        _ = mappingFilters { filter in
            values.append(filter.value)
            return filter
        }
        return values
    }

    /// Whether `other`, compiled with the other set of placeholders, has them in exactly the
    /// places this plan has its own and equals it everywhere else: then no value decoded from the
    /// document (a cursor, a key) merely looked like a placeholder.
    func placesPlaceholders(_ mine: [String: String], like other: OperationPlan, _ theirs: [String: String]) -> Bool {
        let a = comparedValues, b = other.comparedValues
        guard a.count == b.count else { return false }
        for (left, right) in zip(a, b) {
            switch (left, right) {
            case (.scalar(let x), .scalar(let y)):
                if let name = mine[x] {
                    guard theirs[y] == name else { return false }
                } else if x != y || theirs[y] != nil {
                    return false
                }
            default:
                guard left == right else { return false }
            }
        }
        return true
    }

    /// Where each placeholder went: nil unless every placeholder is exactly one compared value of
    /// the plan's reads (never inside another value, a key, a function's arguments or an answer).
    func slots(for placeholders: [String: String]) -> [String: String]? {
        var found: Set<String> = []
        for value in comparedValues {
            switch value {
            case .scalar(let text):
                if placeholders[text] != nil {
                    found.insert(text)
                } else if PlanVariables.mayHoldPlaceholder(text) {
                    return nil
                }
            case .list(let texts):
                if texts.contains(where: PlanVariables.mayHoldPlaceholder) { return nil }
            }
        }
        for root in roots {
            switch root {
            case .call(_, _, let arguments, _, _):
                if arguments.contains(where: { PlanVariables.mayHoldPlaceholder($0.1.jsonString) }) { return nil }
            case .constant(_, let value):
                if PlanVariables.mayHoldPlaceholder(value.jsonString) { return nil }
            case .write:
                return nil
            case .collection, .single:
                break
            }
        }
        return found.count == placeholders.count ? placeholders : nil
    }

    /// The plan with each placeholder's compared value replaced by the request's own.
    func filling(_ slots: [String: String], from variables: JSONObject) -> OperationPlan {
        mappingFilters { filter in
            guard case .scalar(let value) = filter.value, let name = slots[value] else { return filter }
            var filled = filter
            filled.value = .scalar(OperationCompiler.text(variables[name] ?? .null))
            return filled
        }
    }
}
