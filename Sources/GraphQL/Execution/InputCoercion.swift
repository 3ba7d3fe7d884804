import Runtime

/// Arguments and variables read against the schema's input types (GraphQL's input coercion):
/// literals that do not fit are validation errors (MB721), variable values that do not fit are
/// variable errors (MB723). The result is plain JSON for the planner.
struct InputCoercion {
    let schema: RoleSchema
    /// The operation's variables, already coerced to their declared types.
    let variables: JSONObject
    let declared: [String: VariableDefinition]

    /// Coerces the request's variables to the operation's declarations.
    static func variables(_ definitions: [VariableDefinition], given: JSONObject, schema: RoleSchema) throws(GraphQLError) -> JSONObject {
        var coerced = JSONObject()
        let empty = InputCoercion(schema: schema, variables: [:], declared: [:])
        for definition in definitions {
            let named = definition.type.namedType
            guard let type = schema.type(named: named), type.kind == .scalar || type.kind == .enumeration || type.kind == .inputObject else {
                throw .validation("Variable \"$\(definition.name)\" cannot be of type \"\(definition.type)\": it is not an input type.", at: definition.location)
            }
            if let value = given[definition.name] {
                coerced[definition.name] = try empty.json(value, as: definition.type, at: "$\(definition.name)", location: definition.location)
            } else if let defaultValue = definition.defaultValue {
                coerced[definition.name] = try empty.literal(defaultValue, as: definition.type, location: definition.location)
            } else if definition.type.isNonNull {
                throw .variables("Variable \"$\(definition.name)\" of required type \"\(definition.type)\" was not provided.", at: definition.location)
            }
        }
        return coerced
    }

    /// An argument or input field as written (literal or variable), or nil when absent.
    func literal(_ value: InputValue, as type: TypeReference, location: SourceLocation) throws(GraphQLError) -> JSONValue? {
        if case .variable(let name) = value {
            guard let definition = declared[name] else {
                throw .validation("Variable \"$\(name)\" is not defined.", at: location)
            }
            guard Self.fits(definition.type, into: type, hasDefault: definition.defaultValue != nil) else {
                throw .validation("Variable \"$\(name)\" of type \"\(definition.type)\" used in position expecting type \"\(type)\".", at: location)
            }
            return variables[name]
        }
        if case .nonNull(let inner) = type {
            guard let result = try literal(value, as: inner, location: location), result != .null else {
                throw .validation("Expected value of type \"\(type)\", found null.", at: location)
            }
            return result
        }
        if case .null = value { return .null }
        if case .list(let inner) = type {
            if case .list(let items) = value {
                var out: [JSONValue] = []
                for item in items { out.append(try literal(item, as: inner, location: location) ?? .null) }
                return .array(out)
            }
            return .array([try literal(value, as: inner, location: location) ?? .null])
        }
        guard let schemaType = schema.type(named: type.namedType) else {
            throw .validation("Unknown type \"\(type.namedType)\".", at: location)
        }
        switch schemaType.kind {
        case .inputObject:
            guard case .object(let fields) = value else { throw mismatch(type, location) }
            var object = JSONObject()
            for field in fields {
                guard let definition = schemaType.inputField(field.name) else {
                    throw .validation("Field \"\(field.name)\" is not defined by type \"\(schemaType.name)\".", at: location)
                }
                if let coerced = try literal(field.value, as: definition.type, location: location) { object[field.name] = coerced }
            }
            try requireFields(schemaType, in: object, location: location, variable: false)
            return .object(object)
        case .enumeration:
            guard case .enumValue(let name) = value, schemaType.enumValues.contains(name) else {
                throw .validation("Value \(Self.show(value)) does not exist in \"\(schemaType.name)\" enum.", at: location)
            }
            return .string(schemaType.enumSQLValues[name] ?? name)
        default:
            return try scalar(value, schemaType.name, location: location)
        }
    }

    func requireFields(_ type: SchemaType, in object: JSONObject, location: SourceLocation, variable: Bool) throws(GraphQLError) {
        for field in type.inputFields where field.type.isNonNull && field.defaultValue == nil && (object[field.name] ?? .null) == .null {
            let message = "Field \"\(type.name).\(field.name)\" of required type \"\(field.type)\" was not provided."
            throw variable ? .variables(message, at: location) : .validation(message, at: location)
        }
    }

    func scalar(_ value: InputValue, _ name: String, location: SourceLocation) throws(GraphQLError) -> JSONValue {
        switch (name, value) {
        case ("Int", .int(let digits)):
            guard let number = Int32(digits) else { throw .validation("Int cannot represent non 32-bit signed integer value: \(digits)", at: location) }
            return .integer(Int64(number))
        case ("Float", .int(let digits)), ("Float", .float(let digits)):
            return .number(Double(digits) ?? 0)
        case ("Boolean", .boolean(let flag)):
            return .bool(flag)
        case ("BigInt", .int(let digits)), ("BigFloat", .int(let digits)), ("BigFloat", .float(let digits)), ("ID", .int(let digits)):
            return .string(digits)
        case (let scalar, .string(let text)) where !["Int", "Float", "Boolean"].contains(scalar):
            return .string(text)
        default:
            throw mismatch(.named(name), location)
        }
    }

    func mismatch(_ type: TypeReference, _ location: SourceLocation) -> GraphQLError {
        .validation("Expected value of type \"\(type)\".", at: location)
    }

    /// A variable's JSON value read as `type`.
    func json(_ value: JSONValue, as type: TypeReference, at path: String, location: SourceLocation) throws(GraphQLError) -> JSONValue {
        func fail(_ why: String) -> GraphQLError {
            .variables("Variable \"\(path.split(separator: ".").first ?? "")\" got invalid value at \"\(path)\"; \(why)", at: location)
        }
        if case .nonNull(let inner) = type {
            guard value != .null else { throw fail("expected non-null value of type \"\(type)\"") }
            return try json(value, as: inner, at: path, location: location)
        }
        if value == .null { return .null }
        if case .list(let inner) = type {
            guard case .array(let items) = value else { return .array([try json(value, as: inner, at: path, location: location)]) }
            var out: [JSONValue] = []
            for (index, item) in items.enumerated() { out.append(try json(item, as: inner, at: "\(path)[\(index)]", location: location)) }
            return .array(out)
        }
        guard let schemaType = schema.type(named: type.namedType) else { throw fail("unknown type \"\(type.namedType)\"") }
        switch schemaType.kind {
        case .inputObject:
            guard case .object(let object) = value else { throw fail("expected an object for \"\(schemaType.name)\"") }
            var out = JSONObject()
            for (key, item) in object {
                guard let field = schemaType.inputField(key) else { throw fail("field \"\(key)\" is not defined by type \"\(schemaType.name)\"") }
                out[key] = try json(item, as: field.type, at: "\(path).\(key)", location: location)
            }
            for field in schemaType.inputFields where field.type.isNonNull && field.defaultValue == nil && (out[field.name] ?? .null) == .null {
                throw fail("field \"\(field.name)\" of required type \"\(field.type)\" was not provided")
            }
            return .object(out)
        case .enumeration:
            guard let name = value.stringValue, schemaType.enumValues.contains(name) else { throw fail("value does not exist in \"\(schemaType.name)\" enum") }
            return .string(schemaType.enumSQLValues[name] ?? name)
        default:
            switch (schemaType.name, value) {
            case ("Int", .integer(let number)) where Int32(exactly: number) != nil: return value
            case ("Int", .number(let number)) where number.rounded() == number && Int32(exactly: number) != nil: return .integer(Int64(number))
            case ("Float", .integer), ("Float", .number): return value
            case ("Boolean", .bool): return value
            case ("BigInt", .integer(let number)), ("BigFloat", .integer(let number)), ("ID", .integer(let number)): return .string(String(number))
            case ("BigFloat", .number(let number)): return .string(String(number))
            case (let scalar, .string) where !["Int", "Float", "Boolean"].contains(scalar): return value
            default: throw fail("\(schemaType.name) cannot represent \(value.jsonString.prefix(40))")
            }
        }
    }

    /// Whether a variable of `variable`'s type may stand where `position` is expected.
    static func fits(_ variable: TypeReference, into position: TypeReference, hasDefault: Bool) -> Bool {
        switch (variable, position) {
        case (.nonNull(let inner), .nonNull(let expected)): return fits(inner, into: expected, hasDefault: false)
        case (.nonNull(let inner), _): return fits(inner, into: position, hasDefault: false)
        case (_, .nonNull(let expected)): return hasDefault && fits(variable, into: expected, hasDefault: false)
        case (.list(let inner), .list(let expected)): return fits(inner, into: expected, hasDefault: false)
        case (.named(let a), .named(let b)): return a == b
        default: return false
        }
    }

    static func show(_ value: InputValue) -> String {
        switch value {
        case .enumValue(let name), .int(let name), .float(let name): name
        case .string(let text): "\"\(text.prefix(40))\""
        case .boolean(let flag): flag ? "true" : "false"
        case .null: "null"
        case .variable(let name): "$\(name)"
        case .list: "[…]"
        case .object: "{…}"
        }
    }
}
