import Foundation
import Runtime
import Tenancy

/// Why a key or token does not let a caller in. The edge turns each into its HTTP answer; the
/// descriptions are the same words, for places that can only say them (a realtime refusal).
public enum CredentialError: Error, CustomStringConvertible {
    case missingAPIKey
    case invalidAPIKey(String)
    case invalidJWT(String)
    case invalidClaims(String)

    public var description: String {
        switch self {
        case .missingAPIKey: "MB201 401: no API key found in request"
        case .invalidAPIKey: "PGRST301 401: invalid API key"
        case .invalidJWT(let why): "PGRST301 401: \(why)"
        case .invalidClaims(let why): "PGRST303 401: \(why)"
        }
    }
}

/// The one set of rules by which keys and tokens become callers, for HTTP and WebSocket alike:
/// `apikey` must be one of the tenant's keys (anon or service role); a bearer token, when present,
/// decides the role, else the key does.
public struct TenantCredentials: Sendable {
    public let slug: String
    let verify: @Sendable (String) throws(JWTError) -> VerifiedClaims

    /// The caller for a request's `apikey` and optional `Authorization` header.
    public func caller(apiKey: String?, authorization: String?) throws(CredentialError) -> Caller {
        guard let apiKey, !apiKey.isEmpty else { throw .missingAPIKey }
        let keyCaller = try caller(apiKey: apiKey)
        guard let authorization else { return keyCaller }
        guard let range = Self.bearerTokenRange(authorization) else {
            throw .invalidJWT("Authorization header must be 'Bearer <token>'")
        }
        // Clients commonly send the API key as the bearer token too: one verification is enough
        // (compared in place, before the token is copied out of the header).
        if Self.sameBytes(authorization.utf8[range], apiKey) { return keyCaller }
        return try caller(token: String(authorization[range]))
    }

    /// The caller an API key makes: one of the tenant's keys, with role anon or service_role.
    public func caller(apiKey: String) throws(CredentialError) -> Caller {
        let verified: VerifiedClaims
        do {
            verified = try verify(apiKey)
        } catch {
            throw .invalidAPIKey("\(error)")
        }
        try checkTenant(verified.claims)
        guard let role = verified.claims["role"]?.stringValue, role == "anon" || role == "service_role" else {
            throw .invalidAPIKey("an API key must carry role anon or service_role")
        }
        return Caller(role: role, claims: verified.claims, claimsKey: verified.key)
    }

    /// The caller an access token (a user's, or a key used as one) makes.
    public func caller(token: String) throws(CredentialError) -> Caller {
        let verified: VerifiedClaims
        do {
            verified = try verify(token)
        } catch .expired {
            throw .invalidClaims("JWT expired")
        } catch .notYetValid {
            throw .invalidClaims("JWT is not valid yet")
        } catch .invalidClaims(let why) {
            throw .invalidClaims(why)
        } catch {
            throw .invalidJWT("\(error)")
        }
        try checkTenant(verified.claims)
        let role = verified.claims["role"]?.stringValue ?? "anon"
        guard !role.isEmpty, role.utf8.count <= 63 else { throw .invalidClaims("JWT role claim is invalid") }
        return Caller(role: role, claims: verified.claims, claimsKey: verified.key)
    }

    /// A token of ours names its tenant in `ref`; one naming another tenant is refused even if the
    /// secrets happened to match.
    private func checkTenant(_ claims: JSONObject) throws(CredentialError) {
        if let ref = claims["ref"]?.stringValue, ref != slug {
            throw .invalidJWT("JWT belongs to another tenant")
        }
    }

    /// The token of `Bearer <token>` (the scheme in any case, spaces around the token dropped);
    /// nil when the header says anything else or carries no token.
    static func bearerToken(_ authorization: String) -> String? {
        bearerTokenRange(authorization).map { String(authorization[$0]) }
    }

    /// Where the token of `Bearer <token>` lies in the header's bytes.
    static func bearerTokenRange(_ authorization: String) -> Range<String.Index>? {
        let utf8 = authorization.utf8
        var index = utf8.startIndex
        for expected in "bearer".utf8 {
            guard index != utf8.endIndex, utf8[index] | 0x20 == expected else { return nil }
            index = utf8.index(after: index)
        }
        guard index != utf8.endIndex, utf8[index] == 0x20 else { return nil }
        let token = authorization[index...].rangeWithoutSpaces
        return token.isEmpty ? nil : token
    }

    /// Byte equality (not String's canonical equivalence), without a generic byte-by-byte loop.
    public static func sameBytes(_ a: String, _ b: String) -> Bool {
        sameBytes(a.utf8[...], b)
    }

    static func sameBytes(_ a: Substring.UTF8View, _ b: String) -> Bool {
        var b = b
        return b.withUTF8 { right in
            a.count == right.count
                && (a.withContiguousStorageIfAvailable { left in
                    left.count == 0 || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0
                } ?? a.elementsEqual(right))
        }
    }
}
