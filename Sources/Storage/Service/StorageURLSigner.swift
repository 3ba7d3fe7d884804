import Crypto
import Foundation
import Runtime
import Tenancy

/// Tokens of signed download and upload URLs. They are HS256 JWTs under a key derived from the
/// tenant's JWT secret for this one purpose, so a signed-URL token is never a valid bearer token
/// (and an API key never a valid URL token). Expiry is exact: no clock-skew leeway.
public struct StorageURLSigner: Sendable {
    public enum Purpose: String, Sendable { case download, upload }
    private let keys: [(kid: String, secret: [UInt8])]

    public init(keyRing: TenantKeyRing) {
        keys = keyRing.secrets.map { entry in
            let key = SymmetricKey(data: entry.secret)
            let derived = HMAC<SHA256>.authenticationCode(for: Array("minibaas storage signed urls v1".utf8), using: key)
            return (entry.kid, Array(derived))
        }
    }

    /// `url` is `bucket/name`.
    public func sign(url: String, purpose: Purpose, expiresIn: Int, extra: JSONObject = [:], now: Date = Date()) -> String {
        var claims = extra
        claims["url"] = .string(url)
        claims["purpose"] = .string(purpose.rawValue)
        claims["iat"] = .integer(Int64(now.timeIntervalSince1970))
        claims["exp"] = .integer(Int64(now.timeIntervalSince1970) + Int64(expiresIn))
        guard let key = keys.first else { return "" }
        return HS256.sign(claims, secret: key.secret, kid: key.kid)
    }

    /// The token's claims when it signs `url` for `purpose` and has not expired.
    public func verify(_ token: String, url: String, purpose: Purpose, now: Date = Date()) throws(StorageError) -> JSONObject {
        let claims: JSONObject
        do {
            claims = try HS256.verify(token, secrets: keys, now: now)
        } catch {
            throw .invalidSignature("the signed URL's token is not valid: \(error)")
        }
        guard let exp = claims["exp"]?.intValue, Double(exp) > now.timeIntervalSince1970 else {
            throw .invalidSignature("the signed URL has expired")
        }
        guard claims["purpose"]?.stringValue == purpose.rawValue else { throw .invalidSignature("the token does not sign this kind of URL") }
        guard claims["url"]?.stringValue == url else { throw .invalidSignature("the token signs another object") }
        return claims
    }
}
