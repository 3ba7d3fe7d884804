import Foundation
import Runtime

/// A data source as stored: its public configuration in clear, its credentials sealed. The sealed
/// part is opened only inside the tenant's tree, never for an API response or a log line.
public struct SourceRecord: Sendable, Equatable {
    public var tenant: String
    public var name: String
    public var kind: String
    /// Configuration without secrets (schemas, base URL, format …).
    public var config: JSONObject
    /// AES-GCM sealed JSON object of credentials (URL with password, keys, headers).
    public var sealedSecrets: [UInt8]
    /// The source's schema model as JSON (the connectors' type; opaque here).
    public var model: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        tenant: String, name: String, kind: String, config: JSONObject, sealedSecrets: [UInt8], model: String = "{}", createdAt: Date,
        updatedAt: Date
    ) {
        self.model = model
        self.tenant = tenant
        self.name = name
        self.kind = kind
        self.config = config
        self.sealedSecrets = sealedSecrets
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One HS256 signing secret of a tenant, sealed. A tenant may hold two during rotation.
public struct SealedJWTSecret: Sendable, Equatable {
    public var kid: String
    public var sealed: [UInt8]
    public var createdAt: Date
    public var revokedAt: Date?

    public init(kid: String, sealed: [UInt8], createdAt: Date, revokedAt: Date? = nil) {
        self.kid = kid
        self.sealed = sealed
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// One line of the append-only record of admin actions.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var id: Int64?
    public var at: Date
    public var actor: String
    public var action: String
    public var tenant: String?
    public var requestID: String?
    public var detail: JSONObject

    public init(id: Int64? = nil, at: Date, actor: String, action: String, tenant: String?, requestID: String?, detail: JSONObject = JSONObject()) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.tenant = tenant
        self.requestID = requestID
        self.detail = detail
    }
}
