import Foundation
import Runtime

/// Creates tenants and their signing secrets the one way both the admin API and the embedded
/// node's demo tenant need: a fresh secret, sealed and bound to its row, written with its audit line.
public struct TenantRegistrar: Sendable {
    public let store: any ControlPlaneStore
    public let secretBox: SecretBox

    public init(store: any ControlPlaneStore, secretBox: SecretBox) {
        self.store = store
        self.secretBox = secretBox
    }

    /// A key id that sorts by time and does not collide between nodes.
    public static func newKid(at date: Date) -> String {
        "k" + String(UInt64(date.timeIntervalSince1970), radix: 36) + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    }

    /// A new signing secret for `slug`, sealed for its row.
    public func sealedSecret(for slug: String, createdAt: Date) throws -> (secret: [UInt8], sealed: SealedJWTSecret) {
        let kid = Self.newKid(at: createdAt)
        let secret = TenantKeyRing.newSecret()
        let sealed = try secretBox.seal(secret, context: TenantKeyRing.secretContext(slug: slug, kid: kid))
        return (secret, SealedJWTSecret(kid: kid, sealed: sealed, createdAt: createdAt))
    }

    /// Stores the tenant with its first secret; throws `ControlPlaneError.duplicate` for a taken slug.
    public func create(
        slug: String, name: String, limits: TenantLimits = .default, actor: String, requestID: String?
    ) async throws -> (Tenant, TenantKeyRing) {
        // Whole seconds: the API keys are derived from the creation time, which must survive a
        // round trip through either store unchanged.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let tenant = Tenant(slug: slug, name: name, createdAt: now, limits: limits)
        let (secret, sealed) = try sealedSecret(for: slug, createdAt: now)
        try await store.createTenant(
            tenant, secret: sealed,
            audit: AuditEntry(at: now, actor: actor, action: "tenant.create", tenant: slug, requestID: requestID, detail: ["name": .string(name)]))
        return (tenant, TenantKeyRing(slug: slug, secrets: [(sealed.kid, secret)]))
    }
}
