import Crypto
import CryptoExtras
import Foundation
import Runtime

/// Checks an OpenID Connect ID token (RS256) the way the spec asks of a relying party: signature
/// by a key of the provider's JWKS, then `iss`, `aud`, `exp`, `iat` and `nonce`.
public enum IDTokenVerifier {
    public static let leeway: TimeInterval = 60

    public static func verify(
        _ token: String, keys: [JSONObject], issuer: String, clientID: String, nonce: String, now: Date = Date()
    ) throws(OIDCError) -> JSONObject {
        guard token.utf8.count <= HS256.maxTokenLength else { throw .invalidIDToken("ID token is too long") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONValue.parse(headerBytes).objectValue,
            let payloadBytes = Base64URL.decode(parts[1]), let claims = try? JSONValue.parse(payloadBytes).objectValue,
            let signature = Base64URL.decode(parts[2])
        else { throw .invalidIDToken("ID token is not a JWS") }
        // Pinned: the provider's keys are RSA, and accepting whatever `alg` says is how tokens get forged.
        guard header["alg"]?.stringValue == "RS256" else {
            throw .invalidIDToken("ID token algorithm \(header["alg"]?.stringValue ?? "missing") is not RS256")
        }
        let kid = header["kid"]?.stringValue
        let candidates = keys.filter { key in
            key["kty"]?.stringValue == "RSA" && (key["use"]?.stringValue ?? "sig") == "sig" && (kid == nil || key["kid"]?.stringValue == kid)
        }
        guard !candidates.isEmpty else { throw .unknownKey(kid ?? "none") }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let digest = SHA256.hash(data: signingInput)
        let valid = candidates.contains { key in
            guard let n = key["n"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) }),
                let e = key["e"]?.stringValue.flatMap({ Base64URL.decode(Substring($0)) }),
                let publicKey = try? _RSA.Signing.PublicKey(n: n, e: e)
            else { return false }
            return publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5)
        }
        guard valid else { throw .invalidIDToken("ID token signature does not verify with the provider's keys") }

        guard claims["iss"]?.stringValue == issuer else { throw .invalidIDToken("ID token issuer is not \(issuer)") }
        let audiences: [String] =
            if let one = claims["aud"]?.stringValue { [one] } else { (claims["aud"]?.arrayValue ?? []).compactMap(\.stringValue) }
        guard audiences.contains(clientID) else { throw .invalidIDToken("ID token is not for this client") }
        if audiences.count > 1, let azp = claims["azp"]?.stringValue, azp != clientID {
            throw .invalidIDToken("ID token was issued to another party (azp)")
        }
        let seconds = now.timeIntervalSince1970
        guard let exp = claims["exp"]?.doubleValue, seconds < exp + leeway else { throw .invalidIDToken("ID token expired") }
        if let iat = claims["iat"]?.doubleValue, iat > seconds + leeway { throw .invalidIDToken("ID token is issued in the future") }
        guard let sent = claims["nonce"]?.stringValue,
            PasswordHasher.constantTimeEquals(Array(sent.utf8), Array(nonce.utf8))
        else { throw .invalidIDToken("ID token nonce does not match this sign-in") }
        guard let subject = claims["sub"]?.stringValue, !subject.isEmpty else { throw .invalidIDToken("ID token has no subject") }
        return claims
    }
}

public enum OIDCError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownProvider(String)
    case discovery(String)
    case tokenExchange(String)
    case unknownKey(String)
    case invalidIDToken(String)
    case invalidState

    public var description: String {
        switch self {
        case .unknownProvider(let name): "no OIDC provider '\(name)' is configured for this tenant"
        case .discovery(let why): "the provider's discovery document is unusable: \(why)"
        case .tokenExchange(let why): "the provider refused the code exchange: \(why)"
        case .unknownKey(let kid): "the provider's JWKS has no key '\(kid)'"
        case .invalidIDToken(let why): why
        case .invalidState: "the sign-in state is missing, forged or expired; start again"
        }
    }
}
