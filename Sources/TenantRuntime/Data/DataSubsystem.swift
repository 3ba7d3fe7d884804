import Connectors
import GraphQL
import Runtime
import Tenancy

/// The tenant's sources, every kind in one registry, with a supervised connection pool per
/// database, and the policies that decide what each caller may see of them. Replaced as a whole
/// when an admin changes sources or policies (the tree restarts).
public final class DataSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    public let sources: SourceRegistry
    public let policies: [Policy]
    /// Role schemas, parsed documents and persisted queries of the GraphQL API, built from these
    /// sources and policies and dropped with them.
    public let graphQL = GraphQLState()

    init(supervisor: SubsystemSupervisor, sources: SourceRegistry, policies: [Policy]) {
        self.supervisor = supervisor
        self.sources = sources
        self.policies = policies
    }

    /// One child per database: its pool, which closes idle connections until stopped.
    func start() async {
        for source in sources.databases {
            await supervisor.start(ChildSpec(name: "source:\(source.name)") { await source.runPool() })
        }
    }

    /// What `caller` may do, under the tenant's policies (the service role bypasses them).
    public func access(for caller: Caller) -> Access {
        Access(role: caller.role, claims: caller.claims, policies: caller.isServiceRole ? [] : policies)
    }
}
