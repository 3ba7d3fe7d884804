import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Runtime
import Tenancy
import TenantRuntime

/// The door to every tenant route (`/t/{slug}/…`): finds the tenant's tree, authenticates the
/// caller with the tenant's keys, bounds the body, and runs the rest of the request inside the
/// tenant's request gate (rate limit, concurrency cap, deadline).
struct TenantGateMiddleware: RouterMiddleware {
    typealias Context = EdgeContext
    let admission: TenantAdmission
    let forwarder: OwnerForwarder
    var cluster: ClusterCoordinator { admission.cluster }
    /// False only for the few routes a browser reaches without keys (e-mail links, OIDC
    /// redirects); their callers are `anon` and the handlers check what they need themselves.
    var requiresAPIKey = true
    /// Storage: objects of public buckets and signed URLs are fetched without keys; a request
    /// that presents keys is still authenticated by them.
    var apiKeyOptional = false
    /// Storage: the handler streams the body itself (no collection, no size cap here, no
    /// deadline; the transfer's idle timeout bounds it).
    var streamsBody = false

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
        let tree = try await admission.tree(slug, lease: lease, logger: context.logger)
        let tenant = tree.tenant

        var context = context
        context.tenant = tree
        let apiKey = request.headers.value(.apikey) ?? request.uri.queryParameters.get("apikey")
        let keyless = apiKey == nil && request.headers.value(.authorization) == nil
        context.caller = requiresAPIKey && !(apiKeyOptional && keyless)
            ? try TenantAdmission.caller(tree, apiKey: apiKey, authorization: request.headers.value(.authorization))
            : Caller(role: "anon", claims: [:])
        context.presentedKey = !keyless
        context.logger[metadataKey: "tenant"] = .string(slug)
        context.logger[metadataKey: "role"] = .string(context.caller?.role ?? "")

        let maxBody = tenant.limits.maxBodyBytes
        if !streamsBody, let length = request.headers.value(.contentLength).flatMap(Int.init), length > maxBody {
            throw APIError.bodyTooLarge(limit: maxBody)
        }
        // The rest of the chain runs in this task; at the deadline the gate cancels it (the
        // connection closes after its answer).
        do {
            return try await tree.gate.run(withDeadline: !streamsBody) {
                // Collected inside the gate so that slow uploads count against the deadline.
                if !streamsBody && request.method != .get && request.method != .head {
                    do {
                        _ = try await request.collectBody(upTo: maxBody)
                    } catch {
                        throw APIError.bodyTooLarge(limit: maxBody)
                    }
                }
                // Checked again once the body is in: a node paused since admission may have lost
                // the tenant to another owner, and must not act for it.
                guard cluster.stillServes(lease) else { throw APIError.ownershipLost }
                var response = try await next(request, context)
                response.headers[OwnerForwarder.servedByHeader] = cluster.nodeID
                response.headers[OwnerForwarder.fencingHeader] = String(lease.token)
                return response
            }
        } catch let refusal as RequestGate.Refusal {
            switch refusal {
            case .rateLimited(let retryAfter): throw APIError.rateLimited(retryAfter: retryAfter)
            case .overloaded: throw APIError.overloaded
            // The deadline cancelled this connection's task, which ends the connection after this
            // answer: said so, so that no client sends another request on it.
            case .deadlineExceeded: throw APIError.deadlineExceeded.closingConnection
            }
        }
    }

    private enum Outcome {
        case local(TenantLease, Request)
        case served(Response)
    }

    /// Finds the tenant's owner when this node does not hold its lease, and forwards the request
    /// there (or redirects to it). A member that cannot be reached is suspected and the tenant
    /// placed again, so a dead owner costs the client a wait, not an error.
    private func place(_ slug: String, _ request: Request, context: EdgeContext) async throws -> Outcome {
        let hops = forwarder.verifiedHops(request)
        var request = request
        var body: ByteBuffer?
        var permit: BodyPermit?
        defer { permit?.release() }
        var route = try await admission.place(slug, hops: hops, logger: context.logger)
        for _ in 0..<4 {
            switch route {
            case .local(let lease):
                return .local(lease, request)
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
                    route = try await admission.route(slug, hops: hops)
                } catch .busy {
                    // Never sent: the owner is alive but every connection to it is in use.
                    route = try await admission.route(slug, hops: hops)
                } catch .timedOut {
                    throw APIError.ownerTimedOut(member.id)
                } catch .memberLost where Self.safeToRepeat(request.method) {
                    route = try await admission.route(slug, hops: hops)
                } catch .memberLost {
                    throw APIError.ownerTimedOut(member.id)
                } catch .broken(let error) where Self.safeToRepeat(request.method) {
                    context.logger.warning("forwarded request failed; placing again", metadata: [
                        "tenant": .string(slug), "member": .string(member.id), "error": .string("\(error)"),
                    ])
                    route = try await admission.route(slug, hops: hops)
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
        request.headers.value(.upgrade)?.lowercased() == "websocket"
    }

    /// Methods whose repetition changes nothing (RFC 9110 §9.2.2): a forward whose owner vanished
    /// may be sent again elsewhere; anything else reports an unknown outcome.
    static func safeToRepeat(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options
    }
}

extension HTTPField.Name {
    static let apikey = HTTPField.Name("apikey")!
    static let requestID = HTTPField.Name("x-request-id")!
}
