import Runtime

/// A tenant's registered sources, hung on its tree. The default source serves `/rest/v1`: the one
/// named "default" if there is one, else the first registered.
public final class TenantSources: Sendable {
    public let sources: [PostgresSource]
    public let defaultName: String?

    public init(sources: [PostgresSource], defaultName: String?) {
        self.sources = sources
        self.defaultName = defaultName
    }

    public func source(named name: String) -> PostgresSource? {
        sources.first { $0.name == name }
    }

    public var defaultSource: PostgresSource? {
        defaultName.flatMap(source(named:))
    }
}
