import Crypto
import Foundation
import Runtime

/// A tenant's opened JWT secrets, newest first. New tokens are signed with the newest; every
/// unrevoked secret verifies, so rotation does not log anybody out.
public struct TenantKeyRing: Sendable {
    public let slug: String
    public let secrets: [(kid: String, secret: [UInt8])]

    public init(slug: String, secrets: [(kid: String, secret: [UInt8])]) {
        precondition(!secrets.isEmpty, "a tenant always has a signing secret")
        precondition(secrets.allSatisfy { $0.secret.count >= 32 }, "HS256 secrets must be at least 32 bytes")
        self.slug = slug
        self.secrets = secrets
    }

    public static func newSecret() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    public func sign(_ claims: JSONObject) -> String {
        HS256.sign(claims, secret: secrets[0].secret, kid: secrets[0].kid)
    }

    public func verify(_ token: String, now: Date = Date()) throws(JWTError) -> JSONObject {
        try HS256.verify(token, secrets: secrets, now: now)
    }

    /// The long-lived API key for `role` (`anon` or `service_role`), as Supabase issues them. It is
    /// derived, not stored: the same tenant and secret always give the same key.
    public func apiKey(role: String, issuedAt: Date) -> String {
        let iat = Int64(issuedAt.timeIntervalSince1970)
        var claims = JSONObject()
        claims["iss"] = "minibaas"
        claims["ref"] = .string(slug)
        claims["role"] = .string(role)
        claims["iat"] = .integer(iat)
        claims["exp"] = .integer(iat + 10 * 365 * 24 * 3600)
        return sign(claims)
    }
}
