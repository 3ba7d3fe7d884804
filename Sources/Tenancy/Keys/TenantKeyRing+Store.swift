import Runtime

extension TenantKeyRing {
    /// Where a signing secret is sealed: bound to its tenant and key id, so a sealed secret copied
    /// to another row does not open.
    public static func secretContext(slug: String, kid: String) -> String {
        "tenant:\(slug):jwt:\(kid)"
    }

    /// The tenant's unrevoked secrets from the control plane, opened.
    public static func load(slug: String, store: any ControlPlaneStore, secretBox: SecretBox) async throws -> TenantKeyRing {
        let sealed = try await store.jwtSecrets(slug).filter { $0.revokedAt == nil }
        guard !sealed.isEmpty else { throw ControlPlaneError.corrupt("tenant \(slug) has no signing secret") }
        let secrets = try sealed.map { secret in
            (kid: secret.kid, secret: try secretBox.open(secret.sealed, context: secretContext(slug: slug, kid: secret.kid)))
        }
        return TenantKeyRing(slug: slug, secrets: secrets)
    }
}
