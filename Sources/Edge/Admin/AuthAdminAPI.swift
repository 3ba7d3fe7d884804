import Foundation
import Hummingbird
import Runtime
import Tenancy

/// `GET|PUT /admin/v1/tenants/{slug}/auth`: the tenant's end-user auth settings. Secrets (the SMTP
/// password, OIDC client secrets) are write-only: a GET says whether one is set, and a PUT that
/// leaves one out keeps the stored value.
struct AuthAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.get("tenants/:slug/auth", use: get)
        group.put("tenants/:slug/auth", use: put)
    }

    @Sendable func get(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let settings = try await AuthService.settings(slug: slug, store: node.store, secretBox: node.secretBox)
        return try jsonResponse(.object(settings.publicDocument()))
    }

    @Sendable func put(_ request: Request, context: EdgeContext) async throws -> Response {
        let slug = try await node.existingTenant(context).slug
        let body = try await JSONBody.read(request)
        try body.allowOnly(["autoconfirm", "siteUrl", "smtp", "providers", "accessTokenTtl", "refreshTokenReuseInterval"])
        let previous = try await AuthService.settings(slug: slug, store: node.store, secretBox: node.secretBox)
        var settings = AuthSettings()
        settings.autoconfirm = try body.bool("autoconfirm") ?? false
        if let site = try body.string("siteUrl") {
            settings.siteURL = try Self.httpURL(site, field: "siteUrl")
        }
        if let smtp = try body.object("smtp") {
            settings.smtp = try Self.smtp(JSONBody(object: smtp), previous: previous.smtp)
        }
        if let providers = try body.array("providers") {
            settings.providers = try providers.enumerated().map { index, value in
                guard let object = value.objectValue else { throw APIError.invalidField("providers[\(index)]", "expected an object") }
                return try Self.provider(JSONBody(object: object), field: "providers[\(index)]", previous: previous.providers)
            }
            let names = settings.providers.map(\.name)
            if Set(names).count != names.count { throw APIError.invalidField("providers", "provider names must be unique") }
        }
        if let ttl = try body.int("accessTokenTtl") {
            guard (60...7 * 86400).contains(ttl) else { throw APIError.invalidField("accessTokenTtl", "must be between 60 and 604800 seconds") }
            settings.accessTokenTTL = ttl
        }
        if let interval = try body.int("refreshTokenReuseInterval") {
            guard (0...3600).contains(interval) else {
                throw APIError.invalidField("refreshTokenReuseInterval", "must be between 0 and 3600 seconds")
            }
            settings.refreshTokenReuseInterval = interval
        }
        let sealed = try node.secretBox.seal(
            JSONValue.object(settings.secretsDocument()).encoded(), context: AuthSettings.sealingContext(slug: slug))
        let audit = AuditEntry(
            at: Date(), actor: "admin", action: "auth.configure", tenant: slug, requestID: context.requestID,
            detail: ["autoconfirm": .bool(settings.autoconfirm), "smtp": .bool(settings.smtp != nil),
                     "providers": .array(settings.providers.map { .string($0.name) })])
        guard try await node.store.setAuthSettings(
            slug, document: JSONValue.object(settings.publicDocument()).jsonString, sealedSecrets: sealed, audit: audit)
        else { throw APIError.tenantNotFound(slug) }
        return try jsonResponse(.object(settings.publicDocument()))
    }

    private static func smtp(_ body: JSONBody, previous: SMTPSettings?) throws -> SMTPSettings {
        try body.allowOnly(["host", "port", "username", "password", "from", "tls", "passwordSet"])
        let host = try body.requiredString("host")
        guard !host.isEmpty, host.utf8.count <= 253, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw APIError.invalidField("smtp.host", "expected a host name or address")
        }
        guard let port = try body.int("port"), (1...65535).contains(port) else { throw APIError.invalidField("smtp.port", "expected 1…65535") }
        let from = try body.requiredString("from")
        guard SMTPMailer.isSafeAddress(from) else { throw APIError.invalidField("smtp.from", "expected an e-mail address") }
        let password = body.object["password"] == nil ? previous?.password : try body.string("password")
        return SMTPSettings(
            host: host, port: port, username: try body.string("username"), password: password, from: from, tls: try body.bool("tls") ?? false)
    }

    private static func provider(_ body: JSONBody, field: String, previous: [OIDCProviderSettings]) throws -> OIDCProviderSettings {
        try body.allowOnly(["name", "issuer", "clientId", "clientSecret", "scopes", "clientSecretSet"])
        let name = try body.requiredString("name")
        guard (1...32).contains(name.utf8.count), name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 })
        else { throw APIError.invalidField("\(field).name", "use 1-32 characters of a-z, 0-9, '-' and '_'") }
        // Kept exactly as given: an ID token's `iss` must equal it character for character.
        let issuer = try httpURL(try body.requiredString("issuer"), field: "\(field).issuer", trimSlash: false)
        let clientID = try body.requiredString("clientId")
        let secret = try body.string("clientSecret") ?? previous.first { $0.name == name }?.clientSecret ?? ""
        let scopes = try (body.array("scopes") ?? ["openid", "email", "profile"]).map { value in
            guard let scope = value.stringValue, !scope.isEmpty, !scope.contains(" ") else {
                throw APIError.invalidField("\(field).scopes", "expected an array of scope names")
            }
            return scope
        }
        return OIDCProviderSettings(name: name, issuer: issuer, clientID: clientID, clientSecret: secret, scopes: scopes)
    }

    private static func httpURL(_ text: String, field: String, trimSlash: Bool = true) throws -> String {
        guard let url = URLComponents(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false else {
            throw APIError.invalidField(field, "expected an http(s) URL")
        }
        return trimSlash && text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}
