import Foundation
import Hummingbird
import Runtime
import Tenancy

/// `/admin/v1/tenants/{slug}/keys…`: JWT secret rotation. A tenant may hold several secrets; new
/// tokens and API keys are signed with the newest, every unrevoked one verifies, so rotating logs
/// nobody out until the old secret is revoked.
struct KeyAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/keys", use: list)
        group.post("tenants/:slug/keys/rotate", use: rotate)
        group.delete("tenants/:slug/keys/:kid", use: revoke)
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let secrets = try await node.store.jwtSecrets(tenant.slug)
        let formatter = ISO8601DateFormatter()
        return try jsonResponse(.array(secrets.map { secret in
            [
                "kid": .string(secret.kid), "createdAt": .string(formatter.string(from: secret.createdAt)),
                "revokedAt": secret.revokedAt.map { .string(formatter.string(from: $0)) } ?? .null, "active": .bool(secret.revokedAt == nil),
            ]
        }))
    }

    @Sendable func rotate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let now = Date()
        // Sorted newest first by creation time: a rotation within the same millisecond as the
        // previous one must still come first, so it is stamped just after the newest.
        let newest = try await node.store.jwtSecrets(tenant.slug).map(\.createdAt).max() ?? now
        let createdAt = max(now, newest.addingTimeInterval(0.001))
        let (_, sealed) = try node.registrar.sealedSecret(for: tenant.slug, createdAt: createdAt)
        let kid = sealed.kid
        let audit = AuditEntry(at: now, actor: "admin", action: "keys.rotate", tenant: tenant.slug, requestID: context.requestID, detail: ["kid": .string(kid)])
        guard try await node.store.addJWTSecret(tenant.slug, secret: sealed, audit: audit) else {
            throw APIError.tenantNotFound(tenant.slug)
        }
        try await node.directory.refresh(tenant.slug)
        await node.cluster.publish(.tenantChanged, slug: tenant.slug)
        let ring = try await node.directory.keyRing(for: tenant.slug)
        return try jsonResponse(
            [
                "kid": .string(kid), "anonKey": .string(ring.apiKey(role: "anon", issuedAt: tenant.createdAt)),
                "serviceKey": .string(ring.apiKey(role: "service_role", issuedAt: tenant.createdAt)),
            ], status: .created)
    }

    @Sendable func revoke(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let kid = context.parameters.get("kid") ?? ""
        let audit = AuditEntry(at: Date(), actor: "admin", action: "keys.revoke", tenant: tenant.slug, requestID: context.requestID, detail: ["kid": .string(kid)])
        do {
            guard try await node.store.revokeJWTSecret(tenant.slug, kid: kid, at: Date(), audit: audit) else {
                throw APIError(status: .notFound, code: "MB307", message: "no active signing secret '\(kid)'")
            }
        } catch ControlPlaneError.lastActiveSecret {
            throw APIError(status: .conflict, code: "MB305", message: "cannot revoke the last active signing secret", hint: "rotate first")
        }
        try await node.directory.refresh(tenant.slug)
        await node.cluster.publish(.tenantChanged, slug: tenant.slug)
        return Response(status: .noContent)
    }
}
