import Connectors
import Crypto
import Runtime

/// A tenant's GraphQL state beside its sources (one per data subsystem, so it is dropped with the
/// sources and policies it was built from): role schemas, parsed documents, and Apollo's
/// automatic persisted queries. Every map is bounded.
public final class GraphQLState: @unchecked Sendable {
    private let lock = Lock()
    private var schemas: [String: RoleSchema] = [:]
    private var documents: [String: GraphQLDocument] = [:]
    private var persisted: [String: String] = [:]
    /// Answers that depend on the schema alone (introspection, which polling clients repeat).
    private var answers: [String: GraphQLResponse] = [:]

    static let maxSchemas = 64
    static let maxDocuments = 512
    static let maxCachedDocumentBytes = 8 * 1024
    static let maxPersisted = 1_000
    static let maxAnswers = 64

    public init() {}

    /// The role's schema over `source`, built once (off the event loops: a model of thousands of
    /// tables takes a while).
    public func schema(source: any DataSource, access: Access, naming: GraphQLNaming) async throws -> RoleSchema {
        let key = "\(source.name)\u{0}\(access.role)\u{0}\(naming.inflect)"
        if let found = lock.withLock({ schemas[key] }) { return found }
        let model = source.model
        let built = try await offloaded { RoleSchemaBuilder(model: model, access: access, naming: naming).build() }
        lock.withLock {
            if schemas.count >= Self.maxSchemas { schemas.removeAll() }
            schemas[key] = built
        }
        return built
    }

    /// A document parsed once per text (clients send the same few queries again and again). Only
    /// documents up to `maxCachedDocumentBytes` are kept, so the map stays a few megabytes at most.
    public func document(_ text: String) throws(GraphQLError) -> GraphQLDocument {
        if let found = lock.withLock({ documents[text] }) { return found }
        let parsed = try GraphQLParser.parse(text)
        guard text.utf8.count <= Self.maxCachedDocumentBytes else { return parsed }
        lock.withLock {
            if documents.count >= Self.maxDocuments { documents.removeAll() }
            documents[text] = parsed
        }
        return parsed
    }

    /// The key of a request whose answer may come from the schema alone.
    public static func answerKey(source: String, role: String, naming: GraphQLNaming, document: String, operationName: String?, variables: JSONObject) -> String {
        "\(source)\u{0}\(role)\u{0}\(naming.inflect)\u{0}\(operationName ?? "")\u{0}\(JSONValue.object(variables).jsonString)\u{0}\(document)"
    }

    public func answer(_ key: String) -> GraphQLResponse? {
        lock.withLock { answers[key] }
    }

    public func remember(_ response: GraphQLResponse, as key: String) {
        guard response.fromSchemaAlone, response.errors.isEmpty else { return }
        lock.withLock {
            if answers.count >= Self.maxAnswers { answers.removeAll() }
            answers[key] = response
        }
    }

    /// Apollo APQ: a query sent with its hash is remembered; a hash alone is looked up.
    public func persistedQuery(hash: String, query: String?) throws(GraphQLError) -> String {
        let hash = hash.lowercased()
        guard let query else {
            guard let found = lock.withLock({ persisted[hash] }) else {
                throw GraphQLError("PersistedQueryNotFound", code: "MB731")
            }
            return found
        }
        let digest = Hex.encode(SHA256.hash(data: Array(query.utf8)))
        guard digest == hash else { throw GraphQLError("provided sha does not match query", code: "MB732") }
        lock.withLock {
            if persisted.count >= Self.maxPersisted { persisted.removeAll() }
            persisted[hash] = query
        }
        return query
    }
}
