/// What every source becomes (DESIGN.md §4): entities with typed columns and keys, the relations
/// between them, and the operations they offer. The REST, OpenAPI, GraphQL and realtime surfaces
/// are generated from this model only, never from a source directly.
public struct SchemaModel: Sendable, Codable, Equatable {
    public var entities: [Entity]
    public var relations: [Relation]
    public var operations: [Operation]
    public var enums: [EnumType]
    /// Comments on the database schemas the model was read from, by schema name (pg_graphql reads
    /// `@graphql({...})` settings there). Nil for models stored before they were read.
    public var schemaComments: [String: String]?

    public init(entities: [Entity] = [], relations: [Relation] = [], operations: [Operation] = [], enums: [EnumType] = []) {
        self.entities = entities
        self.relations = relations
        self.operations = operations
        self.enums = enums
    }

    /// Entities by the name the API uses (unqualified when unique across the source's schemas).
    public func entity(named name: String) -> Entity? {
        entities.first { $0.name == name }
    }

    public func relations(from entity: EntityName) -> [Relation] {
        relations.filter { $0.from == entity }
    }

    public func operation(named name: String) -> Operation? {
        operations.first { $0.name == name }
    }
}

/// A schema-qualified name.
public struct EntityName: Sendable, Codable, Hashable, CustomStringConvertible {
    public var schema: String
    public var name: String
    public init(schema: String, name: String) {
        self.schema = schema
        self.name = name
    }
    public var description: String { "\(schema).\(name)" }
}

public struct Entity: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case table, view, materializedView, foreignTable, collection, endpoint
    }

    public var schema: String
    public var name: String
    public var kind: Kind
    public var comment: String?
    public var columns: [Column]
    public var primaryKey: [String]
    public var uniqueKeys: [UniqueKey]
    public var indexes: [Index]
    public var insertable: Bool
    public var updatable: Bool
    public var deletable: Bool

    public init(
        schema: String, name: String, kind: Kind, comment: String? = nil, columns: [Column], primaryKey: [String] = [],
        uniqueKeys: [UniqueKey] = [], indexes: [Index] = [], insertable: Bool = true, updatable: Bool = true, deletable: Bool = true
    ) {
        self.schema = schema
        self.name = name
        self.kind = kind
        self.comment = comment
        self.columns = columns
        self.primaryKey = primaryKey
        self.uniqueKeys = uniqueKeys
        self.indexes = indexes
        self.insertable = insertable
        self.updatable = updatable
        self.deletable = deletable
    }

    public var qualifiedName: EntityName { EntityName(schema: schema, name: name) }

    public func column(named name: String) -> Column? {
        columns.first { $0.name == name }
    }

    /// Whether `columns` (in any order) are unique in this entity: the primary key or a unique key.
    public func isUnique(_ columns: [String]) -> Bool {
        let set = Set(columns)
        if !primaryKey.isEmpty && Set(primaryKey) == set { return true }
        return uniqueKeys.contains { Set($0.columns) == set }
    }
}

public struct UniqueKey: Sendable, Codable, Equatable {
    public var name: String
    public var columns: [String]
    public init(name: String, columns: [String]) {
        self.name = name
        self.columns = columns
    }
}

public struct Index: Sendable, Codable, Equatable {
    public var name: String
    public var columns: [String]
    public var unique: Bool
    public var method: String
    public init(name: String, columns: [String], unique: Bool, method: String) {
        self.name = name
        self.columns = columns
        self.unique = unique
        self.method = method
    }
}

/// A column's type as every surface understands it, next to the source's own type name.
public enum PortableType: String, Sendable, Codable {
    case string, integer, bigint, number, boolean, json, date, time, datetime, uuid, binary, enumeration, array, other
}

public struct Column: Sendable, Codable, Equatable {
    public var name: String
    public var type: PortableType
    /// The source's type, e.g. `numeric(6,2)`, `text[]`, `public.genre`.
    public var nativeType: String
    /// For arrays, the element's portable type.
    public var elementType: PortableType?
    public var nullable: Bool
    public var defaultExpression: String?
    public var isIdentity: Bool
    public var isGenerated: Bool
    public var updatable: Bool
    public var comment: String?
    public var enumValues: [String]?
    /// Value rules an uploaded JSON Schema or OpenAPI document states (`minimum`, `maxLength`,
    /// `pattern`…), which provisioning turns into CHECK constraints.
    public var checks: ValueChecks? {
        get { boxedChecks?.value }
        set { boxedChecks = newValue.map(ValueChecksBox.init) }
    }
    /// Boxed: few columns have checks, and inline they would more than double every column's size
    /// (the columns of a 100-table model are much of what an active tenant holds).
    private var boxedChecks: ValueChecksBox?

    private enum CodingKeys: String, CodingKey {
        case name, type, nativeType, elementType, nullable, defaultExpression, isIdentity, isGenerated, updatable, comment, enumValues
        case boxedChecks = "checks"
    }

    public init(
        name: String, type: PortableType, nativeType: String, elementType: PortableType? = nil, nullable: Bool = true,
        defaultExpression: String? = nil, isIdentity: Bool = false, isGenerated: Bool = false, updatable: Bool = true,
        comment: String? = nil, enumValues: [String]? = nil
    ) {
        self.name = name
        self.type = type
        self.nativeType = nativeType
        self.elementType = elementType
        self.nullable = nullable
        self.defaultExpression = defaultExpression
        self.isIdentity = isIdentity
        self.isGenerated = isGenerated
        self.updatable = updatable
        self.comment = comment
        self.enumValues = enumValues
    }
}

/// A column's checks behind one reference, encoded as the checks themselves.
final class ValueChecksBox: Sendable, Codable, Equatable {
    let value: ValueChecks

    init(_ value: ValueChecks) { self.value = value }
    init(from decoder: any Decoder) throws { value = try ValueChecks(from: decoder) }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    static func == (lhs: ValueChecksBox, rhs: ValueChecksBox) -> Bool { lhs.value == rhs.value }
}

extension SchemaModel {
    /// The same model with its arrays at their exact sizes: decoding grows them by doubling and
    /// leaves up to half of each unused, in a model kept as long as its tenant is active.
    public func compacted() -> SchemaModel {
        func exact<T>(_ items: [T]) -> [T] { items.withUnsafeBufferPointer { Array($0) } }
        var model = self
        model.entities = exact(entities.map { entity in
            var entity = entity
            entity.columns = exact(entity.columns)
            entity.indexes = exact(entity.indexes)
            entity.uniqueKeys = exact(entity.uniqueKeys)
            entity.primaryKey = exact(entity.primaryKey)
            return entity
        })
        model.relations = exact(relations)
        model.operations = exact(operations)
        model.enums = exact(enums)
        return model
    }
}

/// JSON Schema's validation keywords for one column.
public struct ValueChecks: Sendable, Codable, Equatable {
    public var minimum: Double?
    public var maximum: Double?
    public var exclusiveMinimum: Double?
    public var exclusiveMaximum: Double?
    public var minLength: Int?
    public var maxLength: Int?
    public var pattern: String?

    public init() {}

    public var isEmpty: Bool { self == ValueChecks() }
}

public struct Relation: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case manyToOne, oneToMany, oneToOne, manyToMany
    }

    /// The foreign key constraint that defines it (for many-to-many: the one leaving the junction
    /// towards `to`).
    public var constraint: String
    public var kind: Kind
    public var from: EntityName
    public var fromColumns: [String]
    public var to: EntityName
    public var toColumns: [String]
    /// For many-to-many: the join table, its columns pointing at `from`, and at `to`.
    public var junction: Junction?
    /// For one-to-one, which both sides see alike: whether `from` is the table holding the
    /// foreign key (needed to create it again, e.g. when provisioning an uploaded schema).
    public var holdsForeignKey: Bool?
    /// The foreign key constraint's comment (GraphQL reads `@graphql({"foreign_name", "local_name"})`).
    public var comment: String?

    public struct Junction: Sendable, Codable, Equatable {
        public var entity: EntityName
        public var fromConstraint: String
        public var fromColumns: [String]
        public var toColumns: [String]
        public init(entity: EntityName, fromConstraint: String, fromColumns: [String], toColumns: [String]) {
            self.entity = entity
            self.fromConstraint = fromConstraint
            self.fromColumns = fromColumns
            self.toColumns = toColumns
        }
    }

    public init(constraint: String, kind: Kind, from: EntityName, fromColumns: [String], to: EntityName, toColumns: [String], junction: Junction? = nil) {
        self.constraint = constraint
        self.kind = kind
        self.from = from
        self.fromColumns = fromColumns
        self.to = to
        self.toColumns = toColumns
        self.junction = junction
    }

    /// Whether the related side is a single row (to-one) or a list.
    public var isToOne: Bool { kind == .manyToOne || kind == .oneToOne }
}

public struct Operation: Sendable, Codable, Equatable {
    public struct Argument: Sendable, Codable, Equatable {
        public var name: String
        public var nativeType: String
        public var type: PortableType
        public var hasDefault: Bool
        public init(name: String, nativeType: String, type: PortableType, hasDefault: Bool) {
            self.name = name
            self.nativeType = nativeType
            self.type = type
            self.hasDefault = hasDefault
        }
    }

    public enum Volatility: String, Sendable, Codable { case immutable, stable, volatile }

    public var schema: String
    public var name: String
    public var arguments: [Argument]
    public var returnType: String
    public var returnsSet: Bool
    /// When the function returns rows of an entity (`setof books`), that entity.
    public var returnsEntity: EntityName?
    /// Scalar, composite, or nothing.
    public var returnsVoid: Bool
    public var volatility: Volatility
    public var comment: String?

    public init(
        schema: String, name: String, arguments: [Argument], returnType: String, returnsSet: Bool, returnsEntity: EntityName?,
        returnsVoid: Bool, volatility: Volatility, comment: String? = nil
    ) {
        self.schema = schema
        self.name = name
        self.arguments = arguments
        self.returnType = returnType
        self.returnsSet = returnsSet
        self.returnsEntity = returnsEntity
        self.returnsVoid = returnsVoid
        self.volatility = volatility
        self.comment = comment
    }
}

public struct EnumType: Sendable, Codable, Equatable {
    public var schema: String
    public var name: String
    public var values: [String]
    /// The type's comment (GraphQL reads `@graphql({"mappings": {...}})` from it).
    public var comment: String?
    public init(schema: String, name: String, values: [String], comment: String? = nil) {
        self.schema = schema
        self.name = name
        self.values = values
        self.comment = comment
    }
}
