import Runtime

/// A tenant's registered sources, every kind in one list, by name. `/rest/v1` is served by the
/// default database (the source named "default", else the first registered); a
/// tenant without one falls back to its first Supabase project reached through its REST endpoint.
public struct SourceRegistry: Sendable {
    public let all: [any DataSource]
    public let defaultName: String?
    /// Found once: every REST request asks for it, and the search is a dynamic cast per source.
    public let defaultDatabase: (any DatabaseSource)?

    public init(_ sources: [any DataSource] = [], defaultName: String? = nil) {
        self.all = sources
        self.defaultName = defaultName
        self.defaultDatabase = defaultName.flatMap { name in sources.first { $0.name == name } as? any DatabaseSource }
    }

    public func source(named name: String) -> (any DataSource)? {
        all.first { $0.name == name }
    }

    // MARK: - By how they are served

    /// The sources served by statements on a database.
    public var databases: [any DatabaseSource] { all.compactMap { $0 as? any DatabaseSource } }

    public func database(named name: String) -> (any DatabaseSource)? {
        source(named: name) as? any DatabaseSource
    }

    /// The PostgreSQL databases, whose own changes realtime can follow.
    public var postgresDatabases: [PostgresSource] { all.compactMap { $0 as? PostgresSource } }

    /// By name, or the first when no name is given.
    public func restProxy(named name: String?) -> RestProxySource? { first(RestProxySource.self, named: name) }
    public func upstream(named name: String?) -> UpstreamSource? { first(UpstreamSource.self, named: name) }
    public func graphQL(named name: String?) -> GraphQLUpstream? { first(GraphQLUpstream.self, named: name) }

    private func first<S: DataSource>(_ type: S.Type, named name: String?) -> S? {
        all.lazy.compactMap { $0 as? S }.first { name == nil || $0.name == name }
    }
}
