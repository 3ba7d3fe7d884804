import Runtime

/// GraphQL's CollectFields: the fields a selection set asks of one concrete type, fragments
/// expanded (when their type condition applies), `@skip`/`@include` honoured, fields under the same
/// response key merged.
struct FieldCollector {
    let document: GraphQLDocument
    let inputs: InputCoercion

    /// Fragment cycles are refused once per document, before anything is collected.
    static func checkFragmentCycles(_ document: GraphQLDocument) throws(GraphQLError) {
        var done: Set<String> = []
        func spreads(_ selections: [Selection]) -> [(String, SourceLocation)] {
            selections.flatMap { selection -> [(String, SourceLocation)] in
                switch selection {
                case .field(let field): spreads(field.selections)
                case .fragmentSpread(let name, _, let location): [(name, location)]
                case .inlineFragment(_, _, let inner, _): spreads(inner)
                }
            }
        }
        func visit(_ name: String, path: [String]) throws(GraphQLError) {
            guard !done.contains(name), let fragment = document.fragments[name] else { return }
            for (next, location) in spreads(fragment.selections) {
                if let index = path.firstIndex(of: next) {
                    throw .validation("Cannot spread fragment \"\(next)\" within itself via \((path[index...] + [next]).joined(separator: ", ")).", at: location)
                }
                if next == name { throw .validation("Cannot spread fragment \"\(name)\" within itself.", at: location) }
                try visit(next, path: path + [next])
            }
            done.insert(name)
        }
        for name in document.fragments.keys.sorted() { try visit(name, path: [name]) }
    }

    /// `applies(typeCondition)`: whether a fragment on that type applies to the object at hand.
    func collect(_ selections: [Selection], applies: (String) -> Bool) throws(GraphQLError) -> [FieldSelection] {
        var order: [String] = []
        var merged: [String: FieldSelection] = [:]
        try collect(selections, applies: applies, into: &order, &merged)
        return order.compactMap { merged[$0] }
    }

    private func collect(
        _ selections: [Selection], applies: (String) -> Bool, into order: inout [String], _ merged: inout [String: FieldSelection]
    ) throws(GraphQLError) {
        for selection in selections {
            switch selection {
            case .field(let field):
                guard try included(field.directives) else { continue }
                if var existing = merged[field.responseKey] {
                    guard existing.name == field.name else {
                        throw .validation(
                            "Fields \"\(field.responseKey)\" conflict because \(existing.name) and \(field.name) are different fields.", at: field.location)
                    }
                    existing.selections += field.selections
                    merged[field.responseKey] = existing
                } else {
                    order.append(field.responseKey)
                    merged[field.responseKey] = field
                }
            case .fragmentSpread(let name, let directives, let location):
                guard let fragment = document.fragments[name] else { throw .validation("Unknown fragment \"\(name)\".", at: location) }
                guard try included(directives), applies(fragment.typeCondition) else { continue }
                try collect(fragment.selections, applies: applies, into: &order, &merged)
            case .inlineFragment(let typeCondition, let directives, let inner, _):
                guard try included(directives), typeCondition.map(applies) ?? true else { continue }
                try collect(inner, applies: applies, into: &order, &merged)
            }
        }
    }

    private func included(_ directives: [Directive]) throws(GraphQLError) -> Bool {
        for directive in directives {
            switch directive.name {
            case "skip", "include":
                guard let argument = directive.arguments.first(where: { $0.name == "if" }), directive.arguments.count == 1 else {
                    throw .validation("Directive \"@\(directive.name)\" argument \"if\" of type \"Boolean!\" is required.", at: directive.location)
                }
                let value = try inputs.literal(argument.value, as: .nonNull(.named("Boolean")), location: argument.location)
                let flag = value?.boolValue ?? false
                if (directive.name == "skip") == flag { return false }
            default:
                throw .validation("Unknown directive \"@\(directive.name)\".", at: directive.location)
            }
        }
        return true
    }
}
