import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Runtime

/// This node's side of OpenID Connect: reads providers' discovery documents and key sets (cached,
/// keys refetched when a token names one we have not seen), and exchanges authorization codes.
/// Shared by all tenants; the cache is keyed by issuer.
public final class OIDCRelyingParty: Sendable {
    public struct Endpoints: Sendable {
        public var authorization: String
        public var token: String
        public var jwks: String
    }

    private struct Entry {
        var endpoints: Endpoints
        var keys: [JSONObject]
        var fetchedAt: ContinuousClock.Instant
        var keysFetchedAt: ContinuousClock.Instant
    }

    private let http: HTTPClient
    private let cache = LockedCache<String, Entry>()
    private let lifetime: Duration = .seconds(600)
    /// A token naming an unknown key may refetch the set, but not more often than this.
    private let keyRefetchInterval: Duration = .seconds(10)
    static let maxResponseBytes = 1 << 20

    public init(http: HTTPClient = .shared) {
        self.http = http
    }

    public func endpoints(issuer: String) async throws(OIDCError) -> Endpoints {
        try await entry(issuer: issuer).endpoints
    }

    /// The provider's signing keys; `refreshFor` names a key id that must be there, which
    /// refetches a stale set once (providers rotate keys).
    public func keys(issuer: String, refreshFor kid: String?) async throws(OIDCError) -> [JSONObject] {
        var entry = try await entry(issuer: issuer)
        if let kid, !entry.keys.contains(where: { $0["kid"]?.stringValue == kid }),
            ContinuousClock.now - entry.keysFetchedAt > keyRefetchInterval
        {
            entry.keys = try await fetchKeys(entry.endpoints.jwks)
            entry.keysFetchedAt = .now
            cache.set(issuer, entry)
        }
        return entry.keys
    }

    /// `grant_type=authorization_code` at the token endpoint, with our PKCE verifier; returns the ID token.
    public func exchange(
        code: String, verifier: String, redirectURI: String, provider: OIDCProviderSettings
    ) async throws(OIDCError) -> String {
        let endpoints = try await endpoints(issuer: provider.issuer)
        var form = URLComponents()
        form.queryItems = [
            URLQueryItem(name: "grant_type", value: "authorization_code"), URLQueryItem(name: "code", value: code),
            URLQueryItem(name: "redirect_uri", value: redirectURI), URLQueryItem(name: "code_verifier", value: verifier),
            URLQueryItem(name: "client_id", value: provider.clientID), URLQueryItem(name: "client_secret", value: provider.clientSecret),
        ]
        // URLComponents leaves '+' alone, which a form decoder reads as a space.
        let body = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        var request = HTTPClientRequest(url: endpoints.token)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let (status, json) = try await fetchJSON(request, failure: OIDCError.tokenExchange)
        guard status == 200 else {
            let reason = json?["error_description"]?.stringValue ?? json?["error"]?.stringValue ?? "HTTP \(status)"
            throw .tokenExchange(reason)
        }
        guard let idToken = json?["id_token"]?.stringValue else { throw .tokenExchange("the response has no id_token") }
        return idToken
    }

    // MARK: - Fetching

    private func entry(issuer: String) async throws(OIDCError) -> Entry {
        if let cached = cache.get(issuer), ContinuousClock.now - cached.fetchedAt < lifetime { return cached }
        let url = (issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer) + "/.well-known/openid-configuration"
        let (status, json) = try await fetchJSON(HTTPClientRequest(url: url), failure: OIDCError.discovery)
        guard status == 200, let document = json?.objectValue else { throw .discovery("GET \(url) answered \(status)") }
        // The document must speak for the issuer we were configured with (OpenID Discovery §4.3).
        guard document["issuer"]?.stringValue == issuer else { throw .discovery("its issuer is not \(issuer)") }
        guard let authorization = document["authorization_endpoint"]?.stringValue, let token = document["token_endpoint"]?.stringValue,
            let jwks = document["jwks_uri"]?.stringValue
        else { throw .discovery("authorization_endpoint, token_endpoint and jwks_uri are required") }
        let endpoints = Endpoints(authorization: authorization, token: token, jwks: jwks)
        let entry = Entry(endpoints: endpoints, keys: try await fetchKeys(jwks), fetchedAt: .now, keysFetchedAt: .now)
        cache.set(issuer, entry)
        return entry
    }

    private func fetchKeys(_ url: String) async throws(OIDCError) -> [JSONObject] {
        let (status, json) = try await fetchJSON(HTTPClientRequest(url: url), failure: OIDCError.discovery)
        guard status == 200, let keys = json?["keys"]?.arrayValue else { throw .discovery("GET \(url) gave no key set") }
        return keys.compactMap(\.objectValue)
    }

    private func fetchJSON(
        _ request: HTTPClientRequest, failure: (String) -> OIDCError
    ) async throws(OIDCError) -> (status: UInt, json: JSONValue?) {
        do {
            let response = try await http.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: Self.maxResponseBytes)
            return (response.status.code, try? JSONValue.parse(body.readableBytesView))
        } catch {
            throw failure("\(request.method) \(request.url): \(error)")
        }
    }
}

/// A small lock-protected dictionary.
final class LockedCache<Key: Hashable & Sendable, Value>: @unchecked Sendable {
    private let lock = Lock()
    private var values: [Key: Value] = [:]

    func get(_ key: Key) -> Value? { lock.withLock { values[key] } }
    func set(_ key: Key, _ value: Value) { lock.withLock { values[key] = value } }
}
