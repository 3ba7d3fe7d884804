import Crypto
import Foundation
import Runtime

/// JSON Web Tokens signed with HMAC-SHA256 — the only algorithm tenant keys use. The algorithm is
/// pinned: a token whose header names anything else (`none`, `RS256`, `HS512` …) is refused before
/// any signature work, which closes the classic algorithm-confusion attacks.
public enum HS256 {
    /// Tokens longer than this are refused unparsed; real ones are a few hundred bytes.
    public static let maxTokenLength = 8 * 1024
    /// Tolerated clock skew for `exp` and `nbf`, as PostgREST does.
    public static let leeway: TimeInterval = 30

    public static func sign(_ claims: JSONObject, secret: [UInt8], kid: String? = nil) -> String {
        var header = JSONObject()
        header["alg"] = "HS256"
        header["typ"] = "JWT"
        if let kid { header["kid"] = .string(kid) }
        let signingInput = Base64URL.encode(JSONValue.object(header).encoded()) + "." + Base64URL.encode(JSONValue.object(claims).encoded())
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + Base64URL.encode(Array(mac))
    }

    /// Verifies the signature against the given secrets (newest first; a `kid` in the header picks
    /// one) and the time claims. Returns the claims.
    public static func verify(_ token: String, secrets: [(kid: String, secret: [UInt8])], now: Date = Date()) throws(JWTError) -> JSONObject {
        guard token.utf8.count <= maxTokenLength else { throw .malformed("token is too long") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected 3 parts in JWT; got \(parts.count)") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONValue.parse(headerBytes).objectValue else {
            throw .malformed("JWT header is not base64url-encoded JSON")
        }
        guard header["alg"]?.stringValue == "HS256" else {
            throw .unsupportedAlgorithm(header["alg"]?.stringValue ?? "missing")
        }
        guard let signature = Base64URL.decode(parts[2]), signature.count == SHA256.byteCount else {
            throw .invalidSignature
        }
        let candidates: [[UInt8]]
        if let kid = header["kid"]?.stringValue {
            candidates = secrets.filter { $0.kid == kid }.map(\.secret)
        } else {
            candidates = secrets.map(\.secret)
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let valid = candidates.contains { secret in
            HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: SymmetricKey(data: secret))
        }
        guard valid else { throw .invalidSignature }
        guard let payloadBytes = Base64URL.decode(parts[1]), let claims = try? JSONValue.parse(payloadBytes).objectValue else {
            throw .malformed("JWT payload is not base64url-encoded JSON")
        }
        try checkTimes(claims, now: now)
        return claims
    }

    /// `exp` and `nbf` against `now`, with the leeway.
    public static func checkTimes(_ claims: JSONObject, now: Date) throws(JWTError) {
        let nowSeconds = now.timeIntervalSince1970
        if let exp = claims["exp"] {
            guard let value = exp.doubleValue else { throw .invalidClaims("exp must be a number") }
            if nowSeconds >= value + leeway { throw .expired }
        }
        if let nbf = claims["nbf"] {
            guard let value = nbf.doubleValue else { throw .invalidClaims("nbf must be a number") }
            if nowSeconds + leeway < value { throw .notYetValid }
        }
    }
}

public enum JWTError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedAlgorithm(String)
    case invalidSignature
    case expired
    case notYetValid
    case invalidClaims(String)

    public var description: String {
        switch self {
        case .malformed(let why): why
        case .unsupportedAlgorithm(let alg): "JWT algorithm \(alg) is not allowed; tokens must be HS256"
        case .invalidSignature: "JWT signature does not match this tenant's keys"
        case .expired: "JWT expired"
        case .notYetValid: "JWT is not valid yet (nbf)"
        case .invalidClaims(let why): why
        }
    }
}
