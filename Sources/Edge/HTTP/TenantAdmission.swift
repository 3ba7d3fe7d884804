import Logging
import Runtime
import Tenancy
import TenantRuntime

/// The steps every tenant request and socket passes, whatever its transport: is the tenant
/// registered, which node serves it (placement and lease), its running tree, its status, and who
/// the caller is. HTTP and WebSocket differ only in what they do with a remote owner (forward,
/// redirect or relay) and in how they answer a refusal.
struct TenantAdmission: Sendable {
    let directory: TenantDirectory
    let cluster: ClusterCoordinator

    /// Where a tenant is served from this node's point of view.
    enum Placement {
        case local(TenantLease)
        case remote(ClusterMember, isHolder: Bool)
    }

    /// The lease this node holds for the tenant, or where its owner is. Unknown names never reach
    /// the cluster: no lease, no Redis key for them.
    func place(_ slug: String, hops: Int, logger: Logger) async throws(APIError) -> Placement {
        if let held = cluster.servingLease(slug) { return .local(held) }
        do {
            guard try await directory.exists(slug) else { throw APIError.tenantNotFound(slug) }
        } catch let error as APIError {
            throw error
        } catch {
            logger.error("cannot look up tenant", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            throw APIError.controlPlaneUnavailable()
        }
        if hops == 0, let cached = cluster.cachedRemote(slug) { return .remote(cached, isHolder: true) }
        return try await route(slug, hops: hops)
    }

    /// Asks the cluster again (after an owner turned out unreachable).
    func route(_ slug: String, hops: Int) async throws(APIError) -> Placement {
        switch await cluster.route(slug, hops: hops) {
        case .local(let lease): return .local(lease)
        case .remote(let member, let isHolder): return .remote(member, isHolder: isHolder)
        case .unavailable(let reason): throw APIError.tenantUnplaced(reason)
        }
    }

    /// The tenant's running tree, started if need be, for work done under `lease`; refused when the
    /// tenant is disabled.
    func tree(_ slug: String, lease: TenantLease, logger: Logger) async throws(APIError) -> TenantTree {
        let found: TenantTree?
        do {
            if let running = directory.runningTree(slug) {
                found = running
            } else {
                found = try await directory.tree(for: slug)
            }
        } catch {
            logger.error("cannot load tenant", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            // No tree will ever passivate this lease: give it up rather than renew it forever.
            await cluster.release(slug)
            throw APIError.controlPlaneUnavailable()
        }
        guard let tree = found else {
            // No such tenant: a lease on its name would only clutter the cluster view.
            await cluster.release(slug)
            throw APIError.tenantNotFound(slug)
        }
        guard cluster.stillServes(lease) else { throw APIError.ownershipLost }
        tree.touch()
        guard tree.tenant.status == .active else { throw APIError.tenantDisabled(slug) }
        return tree
    }

    /// The caller an `apikey` (and, over HTTP, an `Authorization` header) makes.
    static func caller(_ tree: TenantTree, apiKey: String?, authorization: String?) throws(APIError) -> Caller {
        do {
            return try tree.credentials.caller(apiKey: apiKey, authorization: authorization)
        } catch {
            throw APIError(error)
        }
    }
}

extension APIError {
    init(_ error: CredentialError) {
        switch error {
        case .missingAPIKey: self = .missingAPIKey
        case .invalidAPIKey(let why): self = .invalidAPIKey(why)
        case .invalidJWT(let why): self = .invalidJWT(why)
        case .invalidClaims(let why): self = .jwtClaims(why)
        }
    }
}
