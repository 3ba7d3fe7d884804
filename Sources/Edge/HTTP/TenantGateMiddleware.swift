import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Runtime
import Tenancy

/// The door to every tenant route (`/t/{slug}/…`): finds the tenant's tree, authenticates the
/// caller with the tenant's keys, bounds the body, and runs the rest of the request inside the
/// tenant's request gate (rate limit, concurrency cap, deadline).
struct TenantGateMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let directory: TenantDirectory
    let cluster: ClusterCoordinator
    let forwarder: OwnerForwarder
    /// False only for the few routes a browser reaches without keys (e-mail links, OIDC
    /// redirects); their callers are `anon` and the handlers check what they need themselves.
    var requiresAPIKey = true

    func handle(_ request: Request, context: EdgeContext, next: (Request, EdgeContext) async throws -> Response) async throws -> Response {
        let slug = context.parameters.get("slug") ?? ""
        guard Slug.isValid(slug) else { throw APIError.tenantNotFound(slug) }
        var request = request
        let lease: TenantLease
        if let held = cluster.servingLease(slug) {
            lease = held
        } else {
            switch try await place(slug, request, context: context) {
            case .served(let response): return response
            // The request as placement left it: its body may have been read into memory.
            case .local(let held, let placed):
                lease = held
                request = placed
            }
        }
        let tree: TenantSupervisor?
        do {
            if let running = directory.runningTree(slug) {
                tree = running
            } else {
                tree = try await directory.supervisor(for: slug)
            }
        } catch {
            context.logger.error("cannot load tenant", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            // No tree will ever passivate this lease: give it up rather than renew it forever.
            await cluster.release(slug)
            throw APIError.controlPlaneUnavailable()
        }
        guard let tree else {
            // No such tenant: a lease on its name would only clutter the cluster view.
            await cluster.release(slug)
            throw APIError.tenantNotFound(slug)
        }
        tree.touch()
        let tenant = tree.tenant
        guard tenant.status == .active else { throw APIError.tenantDisabled(slug) }

        var context = context
        context.tenant = tree
        context.caller = requiresAPIKey ? try Self.authenticate(request, slug: slug, verify: tree.verify) : Caller(role: "anon", claims: [:])
        context.logger[metadataKey: "tenant"] = .string(slug)
        context.logger[metadataKey: "role"] = .string(context.caller?.role ?? "")

        let maxBody = tenant.limits.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBody {
            throw APIError.bodyTooLarge(limit: maxBody)
        }
        let admitted = context
        let placed = request
        // The gate runs the rest of the chain in a child task so its deadline can cancel it; the
        // chain closure is only ever called once, from that task, while this call waits for it.
        do {
            return try await withoutActuallyEscaping(next) { next in
            nonisolated(unsafe) let next = next
            return try await tree.gate.run {
                var request = placed
                // Collected inside the gate so that slow uploads count against the deadline.
                if request.method != .get && request.method != .head {
                    do {
                        _ = try await request.collectBody(upTo: maxBody)
                    } catch {
                        throw APIError.bodyTooLarge(limit: maxBody)
                    }
                }
                // Checked again once the body is in: a node paused since admission may have lost
                // the tenant to another owner, and must not act for it.
                guard cluster.stillServes(lease) else { throw APIError.ownershipLost }
                var response = try await next(request, admitted)
                response.headers[OwnerForwarder.servedByHeader] = cluster.nodeID
                response.headers[OwnerForwarder.fencingHeader] = String(lease.token)
                return response
            }
            }
        } catch let refusal as RequestGate.Refusal {
            switch refusal {
            case .rateLimited(let retryAfter): throw APIError.rateLimited(retryAfter: retryAfter)
            case .overloaded: throw APIError.overloaded
            case .deadlineExceeded: throw APIError.deadlineExceeded
            }
        }
    }

    private enum Placement {
        case local(TenantLease, Request)
        case served(Response)
    }

    /// Finds the tenant's owner when this node does not hold its lease, and forwards the request
    /// there (or redirects to it). A member that cannot be reached is suspected and the tenant
    /// placed again, so a dead owner costs the client a wait, not an error.
    private func place(_ slug: String, _ request: Request, context: EdgeContext) async throws -> Placement {
        let hops = forwarder.verifiedHops(request)
        // Unknown names never reach the cluster: no lease, no Redis key for them.
        do {
            guard try await directory.exists(slug) else { throw APIError.tenantNotFound(slug) }
        } catch let error as APIError {
            throw error
        } catch {
            context.logger.error("cannot look up tenant", metadata: ["tenant": .string(slug), "error": .string("\(error)")])
            throw APIError.controlPlaneUnavailable()
        }
        var request = request
        var body: ByteBuffer?
        var permit: BodyPermit?
        defer { permit?.release() }
        var route: ClusterCoordinator.Route
        if hops == 0, let cached = cluster.cachedRemote(slug) {
            route = .remote(cached, isHolder: true)
        } else {
            route = await cluster.route(slug, hops: hops)
        }
        for _ in 0..<4 {
            switch route {
            case .local(let lease):
                return .local(lease, request)
            case .unavailable(let reason):
                throw APIError.tenantUnplaced(reason)
            case .remote(let member, let isHolder):
                if forwarder.mode == .redirect && hops == 0 && isHolder { return .served(forwarder.redirect(request, to: member)) }
                if Self.isWebSocketUpgrade(request) {
                    // A socket cannot be proxied by this HTTP path: send the client to the owner.
                    return .served(forwarder.redirect(request, to: member, webSocket: true))
                }
                if body == nil && request.method != .get && request.method != .head {
                    guard let granted = forwarder.bodyBudget.take() else { throw APIError.overloaded }
                    permit = granted
                    do {
                        body = try await request.collectBody(upTo: OwnerForwarder.maxBufferedBody)
                    } catch {
                        throw APIError.bodyTooLarge(limit: OwnerForwarder.maxBufferedBody)
                    }
                }
                do {
                    return .served(try await watchedForward(request, body: body, to: member, hops: hops, context: context))
                } catch .unreachable(let error) {
                    context.logger.warning("owner unreachable; placing again", metadata: [
                        "tenant": .string(slug), "member": .string(member.id), "error": .string("\(error)"),
                    ])
                    await cluster.suspect(member)
                    route = await cluster.route(slug, hops: hops)
                } catch .busy {
                    // Never sent: the owner is alive but every connection to it is in use.
                    route = await cluster.route(slug, hops: hops)
                } catch .timedOut {
                    throw APIError.ownerTimedOut(member.id)
                } catch .memberLost where Self.safeToRepeat(request.method) {
                    route = await cluster.route(slug, hops: hops)
                } catch .memberLost {
                    throw APIError.ownerTimedOut(member.id)
                } catch .broken(let error) where Self.safeToRepeat(request.method) {
                    context.logger.warning("forwarded request failed; placing again", metadata: [
                        "tenant": .string(slug), "member": .string(member.id), "error": .string("\(error)"),
                    ])
                    route = await cluster.route(slug, hops: hops)
                } catch .broken(let error) {
                    context.logger.error("forwarded request failed", metadata: [
                        "tenant": .string(slug), "member": .string(member.id), "error": .string("\(error)"),
                    ])
                    throw APIError.ownerFailed(member.id)
                }
            }
        }
        throw APIError.tenantUnplaced("no member could be reached")
    }

    /// Forwards while watching the owner's heartbeat: an owner that stops beating (paused, cut
    /// off) accepts connections but answers nobody, so the forward is abandoned when the
    /// membership view drops it rather than at the timeout.
    private func watchedForward(
        _ request: Request, body: ByteBuffer?, to member: ClusterMember, hops: Int, context: EdgeContext
    ) async throws(OwnerForwarder.Failure) -> Response {
        let cluster = self.cluster
        let forwarder = self.forwarder
        let interval = cluster.configuration.heartbeatInterval
        let timeout = cluster.configuration.placementWait + .seconds(60)
        let remoteAddress = context.remoteAddress
        do {
            return try await withThrowingTaskGroup(of: Response?.self) { group in
                group.addTask {
                    try await forwarder.forward(request, body: body, to: member, hops: hops, clientAddress: remoteAddress, timeout: timeout)
                }
                group.addTask {
                    while await cluster.isLive(member) {
                        try await Task.sleep(for: interval)
                    }
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let response = first else {
                    throw OwnerForwarder.Failure.memberLost
                }
                return response
            }
        } catch let failure as OwnerForwarder.Failure {
            throw failure
        } catch {
            throw .broken(error)
        }
    }

    static func isWebSocketUpgrade(_ request: Request) -> Bool {
        request.headers[.upgrade]?.lowercased() == "websocket"
    }

    /// Methods whose repetition changes nothing (RFC 9110 §9.2.2): a forward whose owner vanished
    /// may be sent again elsewhere; anything else reports an unknown outcome.
    static func safeToRepeat(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }

    /// `apikey` must be one of the tenant's keys (anon or service role); `Authorization: Bearer`,
    /// when present, decides the role, else the apikey does.
    static func authenticate(_ request: Request, slug: String, verify: (String) throws(JWTError) -> JSONObject) throws -> Caller {
        guard let apiKey = request.headers[.apikey] ?? request.uri.queryParameters.get("apikey"), !apiKey.isEmpty else {
            throw APIError.missingAPIKey
        }
        let keyCaller = try apiKeyCaller(apiKey, slug: slug, verify: verify)
        guard let authorization = request.headers[.authorization] else { return keyCaller }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw APIError.invalidJWT("Authorization header must be 'Bearer <token>'")
        }
        let token = parts[1].trimmingSpaces
        // Clients commonly send the API key as the bearer token too: one verification is enough.
        if Self.sameBytes(token, apiKey) { return keyCaller }
        return try tokenCaller(token, slug: slug, verify: verify)
    }

    /// Byte equality (not String's canonical equivalence), without a generic byte-by-byte loop.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { left in
            b.withUTF8 { right in
                left.count == right.count && (left.count == 0 || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
            }
        }
    }

    /// The caller an API key makes: one of the tenant's keys, with role anon or service_role.
    static func apiKeyCaller(_ apiKey: String, slug: String, verify: (String) throws(JWTError) -> JSONObject) throws -> Caller {
        let keyClaims: JSONObject
        do {
            keyClaims = try verify(apiKey)
        } catch {
            throw APIError.invalidAPIKey("\(error)")
        }
        try checkTenant(keyClaims, slug: slug)
        guard let keyRole = keyClaims["role"]?.stringValue, keyRole == "anon" || keyRole == "service_role" else {
            throw APIError.invalidAPIKey("an API key must carry role anon or service_role")
        }
        return Caller(role: keyRole, claims: keyClaims)
    }

    /// The caller an access token (a user's, or a key used as one) makes.
    static func tokenCaller(_ token: String, slug: String, verify: (String) throws(JWTError) -> JSONObject) throws -> Caller {
        let claims: JSONObject
        do {
            claims = try verify(token)
        } catch .expired {
            throw APIError.jwtClaims("JWT expired")
        } catch .notYetValid {
            throw APIError.jwtClaims("JWT is not valid yet")
        } catch .invalidClaims(let why) {
            throw APIError.jwtClaims(why)
        } catch {
            throw APIError.invalidJWT("\(error)")
        }
        try checkTenant(claims, slug: slug)
        let role = claims["role"]?.stringValue ?? "anon"
        guard !role.isEmpty, role.utf8.count <= 63 else { throw APIError.jwtClaims("JWT role claim is invalid") }
        return Caller(role: role, claims: claims)
    }

    /// A token of ours names its tenant in `ref`; one naming another tenant is refused even if the
    /// secrets happened to match.
    private static func checkTenant(_ claims: JSONObject, slug: String) throws {
        if let ref = claims["ref"]?.stringValue, ref != slug {
            throw APIError.invalidJWT("JWT belongs to another tenant")
        }
    }
}

extension HTTPField.Name {
    static let apikey = HTTPField.Name("apikey")!
    static let requestID = HTTPField.Name("x-request-id")!
}
