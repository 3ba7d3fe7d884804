import Runtime

/// `__schema` and `__type` answered from the role's schema by a small fixed executor: the
/// introspection types' fields are resolved here by name, selections checked as anywhere else.
struct Introspection {
    let schema: RoleSchema
    let collector: FieldCollector

    enum Object {
        case schema
        case type(TypeReference)
        case field(SchemaField)
        case inputValue(InputField)
        case enumValue(String)
        case directive(DirectiveDefinition)

        var typeName: String {
            switch self {
            case .schema: "__Schema"
            case .type: "__Type"
            case .field: "__Field"
            case .inputValue: "__InputValue"
            case .enumValue: "__EnumValue"
            case .directive: "__Directive"
            }
        }
    }

    struct DirectiveDefinition {
        var name: String
        var description: String
        var locations: [String]
        var arguments: [InputField]
    }

    static let directives = [
        DirectiveDefinition(
            name: "include", description: "Directs the executor to include this field or fragment only when the `if` argument is true.",
            locations: ["FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"], arguments: [InputField("if", .nonNull(.named("Boolean")), description: "Included when true.")]),
        DirectiveDefinition(
            name: "skip", description: "Directs the executor to skip this field or fragment when the `if` argument is true.",
            locations: ["FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"], arguments: [InputField("if", .nonNull(.named("Boolean")), description: "Skipped when true.")]),
    ]

    func root(_ field: FieldSelection) throws(GraphQLError) -> JSONValue {
        if field.name == "__schema" {
            return try resolve(field, .schema)
        }
        guard let nameArgument = field.arguments.first(where: { $0.name == "name" }),
            let name = try collector.inputs.literal(nameArgument.value, as: .nonNull(.named("String")), location: nameArgument.location)?.stringValue
        else {
            throw .validation("Field \"__type\" argument \"name\" of type \"String!\" is required, but it was not provided.", at: field.location)
        }
        guard schema.types[name] != nil else { return .null }
        return try resolve(field, .type(.named(name)))
    }

    private func resolve(_ field: FieldSelection, _ object: Object) throws(GraphQLError) -> JSONValue {
        guard !field.selections.isEmpty else {
            throw .validation("Field \"\(field.name)\" of type \"\(object.typeName)\" must have a selection of subfields.", at: field.location)
        }
        var out = JSONObject()
        for child in try collector.collect(field.selections, applies: { $0 == object.typeName }) {
            out[child.responseKey] = try value(child, of: object)
        }
        return .object(out)
    }

    private func list(_ field: FieldSelection, _ objects: [Object]) throws(GraphQLError) -> JSONValue {
        var items: [JSONValue] = []
        for object in objects { items.append(try resolve(field, object)) }
        return .array(items)
    }

    private func leaf(_ field: FieldSelection, _ value: JSONValue) throws(GraphQLError) -> JSONValue {
        guard field.selections.isEmpty else {
            throw .validation("Field \"\(field.name)\" must not have a selection since it is a leaf.", at: field.location)
        }
        return value
    }

    private static func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }

    private func value(_ field: FieldSelection, of object: Object) throws(GraphQLError) -> JSONValue {
        if field.name == "__typename" { return try leaf(field, .string(object.typeName)) }
        switch object {
        case .schema:
            switch field.name {
            case "description": return try leaf(field, .null)
            case "types": return try list(field, schema.typeOrder.map { .type(.named($0)) })
            case "queryType": return try resolve(field, .type(.named(schema.queryType)))
            case "mutationType": return try schema.mutationType.map { name throws(GraphQLError) in try resolve(field, .type(.named(name))) } ?? .null
            case "subscriptionType": return .null
            case "directives": return try list(field, Self.directives.map(Object.directive))
            default: break
            }
        case .type(let reference):
            switch reference {
            case .nonNull(let inner), .list(let inner):
                let kind = reference.isNonNull ? "NON_NULL" : "LIST"
                switch field.name {
                case "kind": return try leaf(field, .string(kind))
                case "ofType": return try resolve(field, .type(inner))
                case "name", "description", "fields", "interfaces", "possibleTypes", "enumValues", "inputFields", "specifiedByURL", "specifiedByUrl", "isOneOf":
                    return .null
                default: break
                }
            case .named(let name):
                guard let type = schema.types[name] else { return .null }
                switch field.name {
                case "kind": return try leaf(field, .string(type.kind.rawValue))
                case "name": return try leaf(field, .string(type.name))
                case "description": return try leaf(field, Self.text(type.description))
                case "specifiedByURL", "specifiedByUrl": return try leaf(field, .null)
                case "isOneOf": return try leaf(field, type.kind == .inputObject ? .bool(false) : .null)
                case "ofType": return .null
                case "fields":
                    guard type.kind == .object || type.kind == .interface else { return .null }
                    return try list(field, type.fields.map(Object.field))
                case "interfaces":
                    guard type.kind == .object || type.kind == .interface else { return .null }
                    return try list(field, type.interfaces.map { .type(.named($0)) })
                case "possibleTypes":
                    guard type.kind == .interface || type.kind == .union else { return .null }
                    return try list(field, type.possibleTypes.map { .type(.named($0)) })
                case "enumValues":
                    guard type.kind == .enumeration else { return .null }
                    return try list(field, type.enumValues.map(Object.enumValue))
                case "inputFields":
                    guard type.kind == .inputObject else { return .null }
                    return try list(field, type.inputFields.map(Object.inputValue))
                default: break
                }
            }
        case .field(let definition):
            switch field.name {
            case "name": return try leaf(field, .string(definition.name))
            case "description": return try leaf(field, Self.text(definition.description))
            case "args": return try list(field, definition.arguments.map(Object.inputValue))
            case "type": return try resolve(field, .type(definition.type))
            case "isDeprecated": return try leaf(field, .bool(false))
            case "deprecationReason": return try leaf(field, .null)
            default: break
            }
        case .inputValue(let input):
            switch field.name {
            case "name": return try leaf(field, .string(input.name))
            case "description": return try leaf(field, Self.text(input.description))
            case "type": return try resolve(field, .type(input.type))
            case "defaultValue": return try leaf(field, Self.text(input.defaultValue))
            case "isDeprecated": return try leaf(field, .bool(false))
            case "deprecationReason": return try leaf(field, .null)
            default: break
            }
        case .enumValue(let name):
            switch field.name {
            case "name": return try leaf(field, .string(name))
            case "description", "deprecationReason": return try leaf(field, .null)
            case "isDeprecated": return try leaf(field, .bool(false))
            default: break
            }
        case .directive(let directive):
            switch field.name {
            case "name": return try leaf(field, .string(directive.name))
            case "description": return try leaf(field, .string(directive.description))
            case "locations": return try leaf(field, .array(directive.locations.map(JSONValue.string)))
            case "args": return try list(field, directive.arguments.map(Object.inputValue))
            case "isRepeatable": return try leaf(field, .bool(false))
            default: break
            }
        }
        throw .validation("Unknown field \"\(field.name)\" on type \(object.typeName)", at: field.location)
    }
}
