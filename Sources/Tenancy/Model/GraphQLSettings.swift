/// A tenant's GraphQL API settings (`GET|PUT /admin/v1/tenants/{slug}/graphql`): whether roles
/// other than the service role may introspect, the page cap, and the bounds on a document.
/// `inflectNames` is pg_graphql's `@graphql({"inflect_names": true})` schema comment, which a
/// model read from another database cannot carry.
public struct GraphQLSettings: Sendable, Equatable, Codable {
    public var introspection: Bool
    public var maxRows: Int
    public var maxDepth: Int
    public var maxCost: Int
    public var inflectNames: Bool

    public static let `default` = GraphQLSettings(introspection: false, maxRows: 30, maxDepth: 20, maxCost: 50_000, inflectNames: false)

    public init(introspection: Bool, maxRows: Int, maxDepth: Int, maxCost: Int, inflectNames: Bool) {
        self.introspection = introspection
        self.maxRows = maxRows
        self.maxDepth = maxDepth
        self.maxCost = maxCost
        self.inflectNames = inflectNames
    }

    enum CodingKeys: String, CodingKey {
        case introspection, maxRows, maxDepth, maxCost, inflectNames
    }

    /// Omitted fields take their defaults, so stored records and partial PUTs read alike.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let base = GraphQLSettings.default
        introspection = try container.decodeIfPresent(Bool.self, forKey: .introspection) ?? base.introspection
        maxRows = try container.decodeIfPresent(Int.self, forKey: .maxRows) ?? base.maxRows
        maxDepth = try container.decodeIfPresent(Int.self, forKey: .maxDepth) ?? base.maxDepth
        maxCost = try container.decodeIfPresent(Int.self, forKey: .maxCost) ?? base.maxCost
        inflectNames = try container.decodeIfPresent(Bool.self, forKey: .inflectNames) ?? base.inflectNames
    }

    public func problems() -> [String] {
        var problems: [String] = []
        if !(1...1_000).contains(maxRows) { problems.append("graphql.maxRows must be in [1, 1000]") }
        if !(1...100).contains(maxDepth) { problems.append("graphql.maxDepth must be in [1, 100]") }
        if !(1...10_000_000).contains(maxCost) { problems.append("graphql.maxCost must be in [1, 10000000]") }
        return problems
    }
}
