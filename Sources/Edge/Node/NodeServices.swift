import Connectors
import Crypto
import Foundation
import Jobs
import Storage
import Logging
import Runtime
import Tenancy
import TenantRuntime

/// What the edge's handlers share: the node's identity, its control plane, and the tenant trees.
struct NodeServices: Sendable {
    let configuration: NodeConfiguration
    let store: any ControlPlaneStore
    let secretBox: SecretBox
    let directory: TenantDirectory
    let adminToken: AdminToken
    let startedAt: Date
    let lifecycle: NodeLifecycle
    /// Which node serves which tenant; on a node alone, the same leases kept in memory.
    let cluster: ClusterCoordinator
    let forwarder: OwnerForwarder
    let logger: Logger
    /// Password-guessing budgets, shared by all tenants' auth endpoints on this node.
    let loginThrottle: LoginThrottle
    /// OIDC discovery documents and key sets, cached for all tenants.
    let relyingParty = OIDCRelyingParty()
    /// Cluster mode: the connection of the shared read-cache tier.
    var sharedCacheRedis: RedisClient?
    /// Where objects' bytes live; nil when storage is off (a cluster node without shared storage).
    var blobs: (any BlobStore)? { directoryBlobs }
    let directoryBlobs: (any BlobStore)?

    var registrar: TenantRegistrar { TenantRegistrar(store: store, secretBox: secretBox) }

    var admission: TenantAdmission { TenantAdmission(directory: directory, cluster: cluster) }

    /// The one assembly of a node's parts, for the executable and the tests alike: the tenant
    /// directory (whose trees make their caches, hubs and pools themselves), wired to the cluster
    /// both ways.
    static func assemble(
        configuration: NodeConfiguration, store: any ControlPlaneStore, secretBox: SecretBox, masterKey: SymmetricKey,
        adminToken: AdminToken, cluster: ClusterCoordinator, lifecycle: NodeLifecycle = NodeLifecycle(),
        directory directoryConfiguration: TenantDirectory.Configuration = .init(), logger: Logger
    ) async -> NodeServices {
        // Cluster mode's shared read-cache tier: its own connection, so cache traffic never queues
        // ahead of the cluster's heartbeats; short timeouts, since Redis is only an optimisation here.
        let sharedCacheRedis = configuration.cacheTTL > .zero
            ? configuration.redisURL.flatMap { try? RedisURL($0) }.map {
                RedisClient(url: $0, commandTimeout: .milliseconds(200), connectTimeout: .milliseconds(500), logger: logger)
            } : nil
        var directoryConfiguration = directoryConfiguration
        directoryConfiguration.sqliteFiles = configuration.sqliteFiles
        if directoryConfiguration.hostedPools == nil, let hosted = configuration.hostedDatabaseURL {
            directoryConfiguration.hostedPools = HostedConnectionPools(url: hosted, capacity: configuration.hostedPoolSize, logger: logger)
        }
        if directoryConfiguration.jobs == nil {
            // Jobs run only under this node's lease of the tenant: its fencing token is their fence.
            directoryConfiguration.jobs = JobsEnvironment(
                store: store, secretBox: secretBox, client: OutboundClient(policy: configuration.outbound),
                slots: JobSlots(capacity: configuration.jobSlots), fence: { slug in cluster.servingLease(slug)?.token })
        }
        let directory = TenantDirectory(
            store: store, secretBox: secretBox,
            cache: .init(ttl: configuration.cacheTTL, redis: sharedCacheRedis, redisPrefix: configuration.redisPrefix),
            realtimeWire: PhoenixWire(), configuration: directoryConfiguration, logger: logger, onPassivated: { slug in
                await cluster.release(slug)
                // Nothing of an idle tenant stays, its metric series included: they come back
                // with its next request.
                NodeMetrics.shared.tenantSeries.forget(tenant: slug)
            })
        await cluster.setHooks(.init(
            load: { directory.inFlight },
            handOver: { slug in await directory.handOver(slug) },
            drop: { slug in await directory.stop(slug) },
            tenantEvent: { event in
                guard let slug = event.slug else { return }
                await directory.stop(slug)
                if event.kind == .tenantDeleted { await cluster.release(slug) }
            }))
        return NodeServices(
            configuration: configuration, store: store, secretBox: secretBox, directory: directory,
            adminToken: adminToken, startedAt: Date(), lifecycle: lifecycle, cluster: cluster,
            forwarder: OwnerForwarder(mode: configuration.forwarding, nodeID: configuration.nodeID, masterKey: masterKey), logger: logger,
            loginThrottle: LoginThrottle(
                account: .init(attempts: configuration.signInAttempts.account, per: .seconds(300)),
                address: .init(attempts: configuration.signInAttempts.address, per: .seconds(300))),
            sharedCacheRedis: sharedCacheRedis, directoryBlobs: directoryConfiguration.blobs)
    }

    var sourceCatalog: SourceCatalog { SourceCatalog(store: store, secretBox: secretBox, logger: logger, sqliteFiles: configuration.sqliteFiles) }

    /// The base every `apiUrl` starts from: the public URL if one is configured, else the address
    /// the server actually bound (which differs from the configured one with `--port 0`).
    var baseURL: String {
        configuration.publicURL == nil ? boundAddress : configuration.publicBaseURL
    }

    /// The tenant named by the route's `:slug`, or the 404 every admin route answers for it.
    func existingTenant(_ context: EdgeContext) async throws -> Tenant {
        let slug = context.parameters.get("slug") ?? ""
        guard Slug.isValid(slug), let tenant = try await store.tenant(slug) else { throw APIError.tenantNotFound(slug) }
        return tenant
    }


    /// Where other members reach this node.
    var advertisedAddress: String {
        configuration.advertiseURL ?? boundAddress
    }

    /// `http://host:port` with the port the server actually bound (which differs from the
    /// configured one with `--port 0`).
    private var boundAddress: String {
        var bound = configuration
        bound.publicURL = nil
        if let port = lifecycle.boundPort { bound.port = port }
        return bound.publicBaseURL
    }

    /// After an admin change: this node drops what it holds of the tenant, and tells the others
    /// (the tenant's owner may be another node).
    func tenantChanged(_ slug: String, deleted: Bool = false) async {
        // Before any tree restarts: reads cached under the old policies, sources or keys are
        // never found again.
        if let redis = sharedCacheRedis, !(await SharedReadCache.configurationChanged(redis: redis, prefix: configuration.redisPrefix, tenant: slug)) {
            logger.warning("the shared read cache did not take a configuration change; its entries expire within their lifetime", metadata: ["tenant": .string(slug)])
        }
        await directory.stop(slug)
        if deleted { await cluster.release(slug) }
        await cluster.publish(deleted ? .tenantDeleted : .tenantChanged, slug: slug)
    }

    func apiURL(for slug: String) -> String {
        "\(baseURL)/t/\(slug)"
    }
}

/// Whether the node takes new work; flips once, when shutdown begins.
final class NodeLifecycle: @unchecked Sendable {
    private let lock = Lock()
    private var draining = false
    private var port: Int?

    var boundPort: Int? {
        get { lock.withLock { port } }
        set { lock.withLock { port = newValue } }
    }

    var isDraining: Bool { lock.withLock { draining } }
    func beginDraining() { lock.withLock { draining = true } }
}
