import Foundation
import Runtime

/// A variable a template declares: its name, `string` or `number`, and the value used when a
/// send gives none.
public struct EmailTemplateVariable: Sendable, Equatable, Codable {
    public var key: String
    public var type: String
    public var fallbackValue: JSONValue?

    public init(key: String, type: String, fallbackValue: JSONValue?) {
        self.key = key
        self.type = type
        self.fallbackValue = fallbackValue
    }
}

/// What a template holds, stored as one document.
public struct EmailTemplateContent: Sendable, Equatable, Codable {
    public var name: String
    public var alias: String?
    public var from: String?
    public var subject: String?
    public var replyTo: [String]
    public var html: String
    public var text: String?
    public var variables: [EmailTemplateVariable]
    public var publishedAt: Date?

    public init(
        name: String, alias: String?, from: String?, subject: String?, replyTo: [String], html: String, text: String?,
        variables: [EmailTemplateVariable], publishedAt: Date?
    ) {
        self.name = name
        self.alias = alias
        self.from = from
        self.subject = subject
        self.replyTo = replyTo
        self.html = html
        self.text = text
        self.variables = variables
        self.publishedAt = publishedAt
    }
}

public struct EmailTemplateRecord: Sendable, Equatable {
    public var tenant: String
    public var id: String
    public var content: EmailTemplateContent
    public var createdAt: Date
    public var updatedAt: Date

    public init(tenant: String, id: String, content: EmailTemplateContent, createdAt: Date, updatedAt: Date) {
        self.tenant = tenant
        self.id = id
        self.content = content
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// E-mail templates in the control plane, found by id or alias.
public protocol EmailTemplateStore: Sendable {
    /// Throws `ControlPlaneError.duplicate` when the alias is taken.
    func createEmailTemplate(_ template: EmailTemplateRecord) async throws
    func emailTemplates(tenant: String) async throws -> [EmailTemplateRecord]
    /// By id, or by alias.
    func emailTemplate(tenant: String, idOrAlias: String) async throws -> EmailTemplateRecord?
    func updateEmailTemplate(_ template: EmailTemplateRecord) async throws -> Bool
    func deleteEmailTemplate(tenant: String, id: String) async throws -> Bool
}
