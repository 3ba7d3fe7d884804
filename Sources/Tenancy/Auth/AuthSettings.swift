import Foundation
import Runtime

/// A tenant's end-user auth configuration (`GET|PUT /admin/v1/tenants/{slug}/auth`). Passwords and
/// client secrets are stored sealed, apart from the rest, and never returned by the admin API.
public struct AuthSettings: Sendable, Equatable {
    public var autoconfirm = false
    public var siteURL: String?
    public var smtp: SMTPSettings?
    public var providers: [OIDCProviderSettings] = []
    public var accessTokenTTL = 3600
    /// Seconds after its first use during which a refresh token may be presented again (a retry
    /// of a refresh whose answer was lost) without counting as reuse. GoTrue's default is 10.
    public var refreshTokenReuseInterval = 10

    public init() {}

    public static func sealingContext(slug: String) -> String { "tenant:\(slug):auth" }

    /// Everything but the secrets, as the admin API shows it and the store keeps it in clear.
    public func publicDocument() -> JSONObject {
        var object = JSONObject()
        object["autoconfirm"] = .bool(autoconfirm)
        object["siteUrl"] = siteURL.map(JSONValue.string) ?? .null
        if let smtp {
            object["smtp"] = [
                "host": .string(smtp.host), "port": .integer(Int64(smtp.port)), "username": smtp.username.map(JSONValue.string) ?? .null,
                "passwordSet": .bool(smtp.password != nil), "from": .string(smtp.from), "tls": .bool(smtp.tls),
            ]
        } else {
            object["smtp"] = .null
        }
        object["providers"] = .array(providers.map { provider in
            [
                "name": .string(provider.name), "issuer": .string(provider.issuer), "clientId": .string(provider.clientID),
                "clientSecretSet": .bool(!provider.clientSecret.isEmpty), "scopes": .array(provider.scopes.map(JSONValue.string)),
            ]
        })
        object["accessTokenTtl"] = .integer(Int64(accessTokenTTL))
        object["refreshTokenReuseInterval"] = .integer(Int64(refreshTokenReuseInterval))
        return object
    }

    /// The secrets alone, to be sealed.
    public func secretsDocument() -> JSONObject {
        var object = JSONObject()
        object["smtpPassword"] = smtp?.password.map(JSONValue.string) ?? .null
        var secrets = JSONObject()
        for provider in providers { secrets[provider.name] = .string(provider.clientSecret) }
        object["clientSecrets"] = .object(secrets)
        return object
    }

    /// Rebuilds settings from the two stored halves.
    public static func restore(document: JSONObject, secrets: JSONObject) -> AuthSettings {
        var settings = AuthSettings()
        settings.autoconfirm = document["autoconfirm"]?.boolValue ?? false
        settings.siteURL = document["siteUrl"]?.stringValue
        if let smtp = document["smtp"]?.objectValue, let host = smtp["host"]?.stringValue, let from = smtp["from"]?.stringValue {
            settings.smtp = SMTPSettings(
                host: host, port: Int(smtp["port"]?.intValue ?? 25), username: smtp["username"]?.stringValue,
                password: secrets["smtpPassword"]?.stringValue, from: from, tls: smtp["tls"]?.boolValue ?? false)
        }
        let clientSecrets = secrets["clientSecrets"]?.objectValue ?? [:]
        settings.providers = (document["providers"]?.arrayValue ?? []).compactMap { value in
            guard let provider = value.objectValue, let name = provider["name"]?.stringValue, let issuer = provider["issuer"]?.stringValue,
                let clientID = provider["clientId"]?.stringValue
            else { return nil }
            return OIDCProviderSettings(
                name: name, issuer: issuer, clientID: clientID, clientSecret: clientSecrets[name]?.stringValue ?? "",
                scopes: (provider["scopes"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        settings.accessTokenTTL = Int(document["accessTokenTtl"]?.intValue ?? 3600)
        settings.refreshTokenReuseInterval = Int(document["refreshTokenReuseInterval"]?.intValue ?? 10)
        return settings
    }
}

public struct SMTPSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var from: String
    /// Implicit TLS on port 465, STARTTLS on any other port.
    public var tls: Bool

    public init(host: String, port: Int, username: String?, password: String?, from: String, tls: Bool) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.from = from
        self.tls = tls
    }
}

public struct OIDCProviderSettings: Sendable, Equatable {
    public var name: String
    public var issuer: String
    public var clientID: String
    public var clientSecret: String
    public var scopes: [String]

    public init(name: String, issuer: String, clientID: String, clientSecret: String, scopes: [String]) {
        self.name = name
        self.issuer = issuer
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scopes = scopes
    }
}
