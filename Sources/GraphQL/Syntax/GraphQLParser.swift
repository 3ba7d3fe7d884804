/// Recursive descent over the lexer's tokens into a `GraphQLDocument` (executable definitions
/// only: a schema definition in a request is a syntax error). Nesting is bounded so a hostile
/// document cannot exhaust the stack.
public struct GraphQLParser {
    /// Deeper than any useful query; the depth limit proper is checked after parsing.
    static let maxNesting = 128

    private var tokens: [GraphQLLexer.Token]
    private var index = 0
    private var nesting = 0

    public static func parse(_ source: String) throws(GraphQLError) -> GraphQLDocument {
        var parser = GraphQLParser(tokens: try GraphQLLexer.tokenize(source))
        return try parser.document()
    }

    private init(tokens: [GraphQLLexer.Token]) {
        self.tokens = tokens
    }

    private var token: GraphQLLexer.Token { tokens[index] }

    private func peek(_ punctuator: String) -> Bool {
        token.kind == .punctuator && token.text == punctuator
    }

    private func peekName(_ name: String) -> Bool {
        token.kind == .name && token.text == name
    }

    private mutating func skip(_ punctuator: String) -> Bool {
        guard peek(punctuator) else { return false }
        index += 1
        return true
    }

    private func unexpected() -> GraphQLError {
        let shown = token.kind == .end ? "<EOF>" : token.kind == .string ? "string" : "\"\(token.text)\""
        return .syntax("Unexpected \(shown)", at: token.location)
    }

    private mutating func expect(_ punctuator: String) throws(GraphQLError) {
        guard skip(punctuator) else {
            let shown = token.kind == .end ? "<EOF>" : "\"\(token.text)\""
            throw .syntax("Expected \"\(punctuator)\", found \(shown)", at: token.location)
        }
    }

    private mutating func name() throws(GraphQLError) -> String {
        guard token.kind == .name else {
            let shown = token.kind == .end ? "<EOF>" : "\"\(token.text)\""
            throw .syntax("Expected Name, found \(shown)", at: token.location)
        }
        defer { index += 1 }
        return token.text
    }

    private mutating func nested<T>(_ body: (inout GraphQLParser) throws(GraphQLError) -> T) throws(GraphQLError) -> T {
        nesting += 1
        defer { nesting -= 1 }
        guard nesting <= Self.maxNesting else {
            throw GraphQLError("the document nests deeper than \(Self.maxNesting) levels", code: "MB724", at: token.location)
        }
        return try body(&self)
    }

    // MARK: - Definitions

    mutating func document() throws(GraphQLError) -> GraphQLDocument {
        var operations: [OperationDefinition] = []
        var fragments: [String: FragmentDefinition] = [:]
        guard token.kind != .end else { throw .syntax("Unexpected <EOF>", at: token.location) }
        while token.kind != .end {
            if peek("{") {
                let location = token.location
                operations.append(
                    OperationDefinition(kind: .query, name: nil, variables: [], directives: [], selections: try selectionSet(), location: location))
            } else if token.kind == .name, let kind = OperationKind(rawValue: token.text) {
                let location = token.location
                index += 1
                let name = token.kind == .name ? try self.name() : nil
                let variables = peek("(") ? try variableDefinitions() : []
                let directives = try self.directives(constant: false)
                operations.append(
                    OperationDefinition(kind: kind, name: name, variables: variables, directives: directives, selections: try selectionSet(), location: location))
            } else if peekName("fragment") {
                let location = token.location
                index += 1
                let name = try self.name()
                guard name != "on" else { throw .syntax("Unexpected Name \"on\"", at: tokens[index - 1].location) }
                guard peekName("on") else { throw .syntax("Expected \"on\"", at: token.location) }
                index += 1
                let typeCondition = try self.name()
                let directives = try self.directives(constant: false)
                let selections = try selectionSet()
                guard fragments[name] == nil else { throw .validation("There can be only one fragment named \"\(name)\".", at: location) }
                fragments[name] = FragmentDefinition(name: name, typeCondition: typeCondition, directives: directives, selections: selections, location: location)
            } else {
                throw unexpected()
            }
        }
        return GraphQLDocument(operations: operations, fragments: fragments)
    }

    private mutating func variableDefinitions() throws(GraphQLError) -> [VariableDefinition] {
        try expect("(")
        var definitions: [VariableDefinition] = []
        repeat {
            let location = token.location
            try expect("$")
            let name = try self.name()
            try expect(":")
            let type = try typeReference()
            var defaultValue: InputValue?
            if skip("=") { defaultValue = try value(constant: true) }
            _ = try directives(constant: true)
            definitions.append(VariableDefinition(name: name, type: type, defaultValue: defaultValue, location: location))
        } while !peek(")")
        try expect(")")
        return definitions
    }

    private mutating func typeReference() throws(GraphQLError) -> TypeReference {
        try nested { (parser: inout GraphQLParser) throws(GraphQLError) -> TypeReference in
            var type: TypeReference
            if parser.skip("[") {
                type = .list(try parser.typeReference())
                try parser.expect("]")
            } else {
                type = .named(try parser.name())
            }
            if parser.skip("!") { type = .nonNull(type) }
            return type
        }
    }

    // MARK: - Selections

    private mutating func selectionSet() throws(GraphQLError) -> [Selection] {
        try nested { (parser: inout GraphQLParser) throws(GraphQLError) -> [Selection] in
            try parser.expect("{")
            var selections: [Selection] = []
            repeat {
                selections.append(try parser.selection())
            } while !parser.peek("}")
            try parser.expect("}")
            return selections
        }
    }

    private mutating func selection() throws(GraphQLError) -> Selection {
        let location = token.location
        if skip("...") {
            if token.kind == .name && token.text != "on" {
                let name = try self.name()
                return .fragmentSpread(name: name, directives: try directives(constant: false), location: location)
            }
            var typeCondition: String?
            if peekName("on") {
                index += 1
                typeCondition = try name()
            }
            let directives = try self.directives(constant: false)
            return .inlineFragment(typeCondition: typeCondition, directives: directives, selections: try selectionSet(), location: location)
        }
        var alias: String?
        var name = try self.name()
        if skip(":") {
            alias = name
            name = try self.name()
        }
        let arguments = peek("(") ? try self.arguments(constant: false) : []
        let directives = try self.directives(constant: false)
        let selections = peek("{") ? try selectionSet() : []
        return .field(FieldSelection(alias: alias, name: name, arguments: arguments, directives: directives, selections: selections, location: location))
    }

    private mutating func arguments(constant: Bool) throws(GraphQLError) -> [Argument] {
        try expect("(")
        var arguments: [Argument] = []
        repeat {
            let location = token.location
            let name = try self.name()
            try expect(":")
            let value = try self.value(constant: constant)
            guard !arguments.contains(where: { $0.name == name }) else {
                throw .validation("There can be only one argument named \"\(name)\".", at: location)
            }
            arguments.append(Argument(name: name, value: value, location: location))
        } while !peek(")")
        try expect(")")
        return arguments
    }

    private mutating func directives(constant: Bool) throws(GraphQLError) -> [Directive] {
        var directives: [Directive] = []
        while peek("@") {
            let location = token.location
            index += 1
            let name = try self.name()
            let arguments = peek("(") ? try self.arguments(constant: constant) : []
            directives.append(Directive(name: name, arguments: arguments, location: location))
        }
        return directives
    }

    // MARK: - Values

    private mutating func value(constant: Bool) throws(GraphQLError) -> InputValue {
        try nested { (parser: inout GraphQLParser) throws(GraphQLError) -> InputValue in
            let token = parser.token
            switch token.kind {
            case .int:
                parser.index += 1
                return .int(token.text)
            case .float:
                parser.index += 1
                return .float(token.text)
            case .string:
                parser.index += 1
                return .string(token.text)
            case .name:
                parser.index += 1
                switch token.text {
                case "true": return .boolean(true)
                case "false": return .boolean(false)
                case "null": return .null
                default: return .enumValue(token.text)
                }
            case .punctuator where token.text == "$":
                guard !constant else { throw parser.unexpected() }
                parser.index += 1
                return .variable(try parser.name())
            case .punctuator where token.text == "[":
                parser.index += 1
                var items: [InputValue] = []
                while !parser.skip("]") {
                    guard parser.token.kind != .end else { throw parser.unexpected() }
                    items.append(try parser.value(constant: constant))
                }
                return .list(items)
            case .punctuator where token.text == "{":
                parser.index += 1
                var fields: [InputValue.ObjectField] = []
                while !parser.skip("}") {
                    let location = parser.token.location
                    let name = try parser.name()
                    try parser.expect(":")
                    guard !fields.contains(where: { $0.name == name }) else {
                        throw .validation("There can be only one input field named \"\(name)\".", at: location)
                    }
                    fields.append(InputValue.ObjectField(name: name, value: try parser.value(constant: constant)))
                }
                return .object(fields)
            default:
                throw parser.unexpected()
            }
        }
    }
}
