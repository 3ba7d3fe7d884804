import Connectors
import Runtime

/// One role's GraphQL schema over one source: pg_graphql's types, generated from the model and
/// cut down by the role's policies. Validation, execution and introspection all read it; nothing
/// else describes the API.
public final class RoleSchema: Sendable {
    public let types: [String: SchemaType]
    /// Type names in the order introspection lists them.
    public let typeOrder: [String]
    public let mutationType: String?
    /// The entity behind each row type, by type name.
    let entities: [String: EntityType]
    /// Entities by schema-qualified SQL name (for `nodeId`).
    let entitiesBySQLName: [EntityName: EntityType]
    public let role: String
    /// Whether a schema comment (`@graphql({"introspection": true})`) opens introspection to every role.
    public let introspectionByComment: Bool
    /// Names that could not be given (invalid, or colliding), as pg_graphql omits them.
    public let warnings: [String]
    /// Query plans compiled against this schema (see `OperationPlanCache`).
    let plans = OperationPlanCache()

    init(types: [String: SchemaType], typeOrder: [String], mutationType: String?, entities: [String: EntityType], role: String, introspectionByComment: Bool = false, warnings: [String]) {
        self.types = types
        self.typeOrder = typeOrder
        self.mutationType = mutationType
        self.entities = entities
        var bySQL: [EntityName: EntityType] = [:]
        for entity in entities.values { bySQL[entity.entity.qualifiedName] = entity }
        self.entitiesBySQLName = bySQL
        self.role = role
        self.introspectionByComment = introspectionByComment
        self.warnings = warnings
    }

    public var queryType: String { "Query" }

    public func type(named name: String) -> SchemaType? { types[name] }
}

public struct SchemaType: Sendable {
    public enum Kind: String, Sendable {
        case scalar = "SCALAR", object = "OBJECT", interface = "INTERFACE", union = "UNION", enumeration = "ENUM", inputObject = "INPUT_OBJECT"
    }

    public var kind: Kind
    public var name: String
    public var description: String?
    public var fields: [SchemaField] = []
    public var inputFields: [InputField] = []
    public var enumValues: [String] = []
    /// For an enum whose values `@graphql({"mappings": …})` renames: each GraphQL value's SQL label.
    public var enumSQLValues: [String: String] = [:]
    public var interfaces: [String] = []
    public var possibleTypes: [String] = []
    var fieldIndex: [String: Int] = [:]
    var inputFieldIndex: [String: Int] = [:]

    init(kind: Kind, name: String, description: String? = nil) {
        self.kind = kind
        self.name = name
        self.description = description
    }

    public func field(_ name: String) -> SchemaField? {
        fieldIndex[name].map { fields[$0] }
    }

    public func inputField(_ name: String) -> InputField? {
        inputFieldIndex[name].map { inputFields[$0] }
    }

    /// Adds a field unless its name is taken; answers whether it was added.
    @discardableResult
    mutating func add(_ field: SchemaField) -> Bool {
        guard fieldIndex[field.name] == nil else { return false }
        fieldIndex[field.name] = fields.count
        fields.append(field)
        return true
    }

    @discardableResult
    mutating func add(_ field: InputField) -> Bool {
        guard inputFieldIndex[field.name] == nil else { return false }
        inputFieldIndex[field.name] = inputFields.count
        inputFields.append(field)
        return true
    }

    var isLeaf: Bool { kind == .scalar || kind == .enumeration }
}

public struct SchemaField: Sendable {
    public var name: String
    public var description: String?
    public var arguments: [InputField]
    public var type: TypeReference
    var resolver: FieldResolver

    init(_ name: String, _ type: TypeReference, description: String? = nil, arguments: [InputField] = [], resolver: FieldResolver = .structural) {
        self.name = name
        self.type = type
        self.description = description
        self.arguments = arguments
        self.resolver = resolver
    }

    func argument(_ name: String) -> InputField? { arguments.first { $0.name == name } }
}

public struct InputField: Sendable {
    public var name: String
    public var description: String?
    public var type: TypeReference
    /// GraphQL text of the default value, as introspection shows it.
    public var defaultValue: String?
    /// For filter and input fields over a column: which one.
    var column: Column?

    init(_ name: String, _ type: TypeReference, description: String? = nil, defaultValue: String? = nil, column: Column? = nil) {
        self.name = name
        self.type = type
        self.description = description
        self.defaultValue = defaultValue
        self.column = column
    }
}

/// What answers a field: the executor switches on this, never on names.
enum FieldResolver: Sendable {
    /// Answered from the shape around it (`edges`, `node`, `pageInfo`, `affectedCount`…).
    case structural
    case nodeID
    case column(Column)
    case toOne(Relation, target: String)
    case toMany(Relation, target: String)
    case collection(String)
    case byPk(String)
    case node
    case insert(String)
    case update(String)
    case delete(String)
    /// A database function: stable and immutable ones on Query, volatile ones on Mutation.
    case function(Connectors.Operation)
    case schema
    case type
}

/// An entity as the role sees it.
final class EntityType: Sendable {
    let entity: Entity
    let typeName: String
    /// The columns the role may read, as fields.
    let columns: [(field: String, column: Column)]
    /// The most rows a page may hold (`max_rows`).
    let maxRows: Int?
    let restrictsRows: Bool

    init(entity: Entity, typeName: String, columns: [(field: String, column: Column)], maxRows: Int?, restrictsRows: Bool) {
        self.entity = entity
        self.typeName = typeName
        self.columns = columns
        self.maxRows = maxRows
        self.restrictsRows = restrictsRows
    }

    var filterType: String { typeName + "Filter" }
    var orderByType: String { typeName + "OrderBy" }
    var connectionType: String { typeName + "Connection" }
    var edgeType: String { typeName + "Edge" }
    var primaryKey: [Column] { entity.primaryKey.compactMap { entity.column(named: $0) } }
}
