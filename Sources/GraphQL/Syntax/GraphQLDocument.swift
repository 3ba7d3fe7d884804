/// A GraphQL request document as parsed: operations and fragments, nothing checked against a
/// schema yet. Every node keeps where it started, for errors.
public struct GraphQLDocument: Sendable {
    public var operations: [OperationDefinition]
    public var fragments: [String: FragmentDefinition]
}

public struct SourceLocation: Sendable, Equatable, Hashable {
    public var line: Int
    public var column: Int
}

public enum OperationKind: String, Sendable {
    case query, mutation, subscription
}

public struct OperationDefinition: Sendable {
    public var kind: OperationKind
    public var name: String?
    public var variables: [VariableDefinition]
    public var directives: [Directive]
    public var selections: [Selection]
    public var location: SourceLocation
}

public struct FragmentDefinition: Sendable {
    public var name: String
    public var typeCondition: String
    public var directives: [Directive]
    public var selections: [Selection]
    public var location: SourceLocation
}

public struct VariableDefinition: Sendable {
    public var name: String
    public var type: TypeReference
    public var defaultValue: InputValue?
    public var location: SourceLocation
}

/// A type as written in a document or a schema: `Int`, `[posts!]!`.
public indirect enum TypeReference: Sendable, Equatable, Hashable, CustomStringConvertible {
    case named(String)
    case list(TypeReference)
    case nonNull(TypeReference)

    public var namedType: String {
        switch self {
        case .named(let name): name
        case .list(let inner), .nonNull(let inner): inner.namedType
        }
    }

    public var isNonNull: Bool {
        if case .nonNull = self { return true }
        return false
    }

    /// The type without its outer non-null marker.
    public var nullable: TypeReference {
        if case .nonNull(let inner) = self { return inner }
        return self
    }

    public var description: String {
        switch self {
        case .named(let name): name
        case .list(let inner): "[\(inner)]"
        case .nonNull(let inner): "\(inner)!"
        }
    }
}

public struct Directive: Sendable {
    public var name: String
    public var arguments: [Argument]
    public var location: SourceLocation
}

public struct Argument: Sendable {
    public var name: String
    public var value: InputValue
    public var location: SourceLocation
}

/// A value written in the document; variables are substituted when arguments are read.
public indirect enum InputValue: Sendable, Equatable {
    case variable(String)
    case int(String)
    case float(String)
    case string(String)
    case boolean(Bool)
    case null
    case enumValue(String)
    case list([InputValue])
    case object([ObjectField])

    public struct ObjectField: Sendable, Equatable {
        public var name: String
        public var value: InputValue
    }
}

public struct FieldSelection: Sendable {
    public var alias: String?
    public var name: String
    public var arguments: [Argument]
    public var directives: [Directive]
    public var selections: [Selection]
    public var location: SourceLocation

    /// The key the field answers under.
    public var responseKey: String { alias ?? name }
}

public indirect enum Selection: Sendable {
    case field(FieldSelection)
    case fragmentSpread(name: String, directives: [Directive], location: SourceLocation)
    case inlineFragment(typeCondition: String?, directives: [Directive], selections: [Selection], location: SourceLocation)
}
