import Crypto
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import Hummingbird
import Jobs
import Runtime
import Tenancy
import TenantRuntime

/// `{apiUrl}/email/v1`: transactional e-mail speaking Resend's API, so the `resend` SDK works with
/// `resend.api_url` pointed here and the tenant's service key as its API key. A send is a durable
/// job, delivered through the tenant's SMTP settings by its job workers (retried on temporary
/// failures, final on a 5xx), optionally at `scheduled_at`; templates use Mustache with declared
/// variables. Errors carry Resend's `statusCode` and `name` beside our code.
struct EmailAPI {
    let node: NodeServices
    static let maxRecipients = 50
    static let maxScheduleAhead: TimeInterval = 30 * 86_400
    static let sendRates = SendRates()

    func register(on router: Router<EdgeContext>) {
        let email = router.group("t/:slug/email/v1").add(
            middleware: TenantGateMiddleware(admission: node.admission, forwarder: node.forwarder, requiresAPIKey: false))
        email.post("emails", use: send)
        email.get("emails/:id", use: read)
        email.patch("emails/:id", use: update)
        email.post("emails/:id/cancel", use: cancel)
        email.post("templates", use: createTemplate)
        email.get("templates", use: listTemplates)
        email.get("templates/:id", use: readTemplate)
        email.patch("templates/:id", use: updateTemplate)
        email.delete("templates/:id", use: deleteTemplate)
        email.post("templates/:id/publish", use: publishTemplate)
        email.post("templates/:id/duplicate", use: duplicateTemplate)
    }

    /// Our error in Resend's clothes: `statusCode` and `name` beside `code` and `message`.
    static func failure(_ status: HTTPResponse.Status, _ code: String, _ name: String, _ message: String) -> APIError {
        var error = APIError(status: status, code: code, message: message)
        error.extra = ["statusCode": .integer(Int64(status.code)), "name": .string(name)]
        return error
    }

    /// The tenant's tree, once the bearer is its service key (or a service-role token).
    private func authorize(_ request: Request, _ context: EdgeContext) throws -> TenantTree {
        guard let tree = context.tenant else { throw APIError.internalError(requestID: context.requestID) }
        let bearer = request.headers.value(.authorization).flatMap { header -> String? in
            let parts = header.split(separator: " ", maxSplits: 1)
            return parts.count == 2 && parts[0].lowercased() == "bearer" ? String(parts[1]) : nil
        } ?? request.headers.value(.apikey)
        guard let bearer else { throw Self.failure(.unauthorized, "MB201", "missing_api_key", "Missing API key in the authorization header") }
        let caller: Caller
        do { caller = try tree.credentials.caller(token: bearer) } catch {
            throw Self.failure(.forbidden, "MB201", "invalid_api_key", "API key is invalid")
        }
        guard caller.isServiceRole else {
            throw Self.failure(.unauthorized, "MB201", "restricted_api_key", "e-mail is sent with the tenant's service key only")
        }
        return tree
    }

    // MARK: - Emails

    @Sendable func send(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let slug = tree.slug
        var request = request
        let raw = try await request.collectBody(upTo: tree.tenant.limits.maxBodyBytes)
        let value: JSONValue
        do { value = try JSONValue.parse(raw.readableBytesView) } catch {
            throw Self.failure(.badRequest, "MB101", "validation_error", "the body is not JSON: \(error)")
        }
        guard let body = value.objectValue else { throw Self.failure(.unprocessableContent, "MB851", "validation_error", "the body must be an object") }
        let hash = SHA256.hash(data: Array(raw.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        let idempotencyKey = request.headers[HTTPField.Name("Idempotency-Key")!]
        if let key = idempotencyKey {
            guard (1...256).contains(key.count) else {
                throw Self.failure(.badRequest, "MB854", "invalid_idempotency_key", "an Idempotency-Key is 1 to 256 characters")
            }
            if let earlier = try await node.store.job(tenant: slug, key: "idem:" + key) {
                guard earlier.payload["bodyHash"]?.stringValue == hash else {
                    throw Self.failure(.conflict, "MB854", "invalid_idempotent_request", "this Idempotency-Key was used with another body")
                }
                return try jsonResponse(["id": .string(earlier.id)])
            }
        }
        let settings = try await AuthService.settings(slug: slug, store: node.store, secretBox: node.secretBox)
        guard let smtp = settings.smtp else {
            var error = Self.failure(.unprocessableContent, "MB850", "validation_error", "the tenant has no SMTP settings")
            error.hint = "set them with PUT /admin/v1/tenants/{slug}/auth (smtp)"
            throw error
        }
        let message = try await compose(body, tenant: slug, defaultFrom: smtp.from)
        let now = Date()
        var at = now
        if let text = body["scheduled_at"], text != .null {
            guard let when = text.stringValue.flatMap(WebhookAdminAPI.date) else {
                throw Self.failure(.badRequest, "MB857", "validation_error", "scheduled_at must be an ISO 8601 time")
            }
            guard when.timeIntervalSince(now) <= Self.maxScheduleAhead else {
                throw Self.failure(.badRequest, "MB857", "validation_error", "scheduled_at may be at most 30 days ahead")
            }
            at = max(now, when)
        }
        let limits = tree.tenant.limits.jobs
        guard Self.sendRates.allow(slug, perSecond: limits.perSecond) else {
            throw Self.failure(.tooManyRequests, "MB856", "rate_limit_exceeded", "too many e-mails per second for this tenant")
        }
        guard try await node.store.unsettledCount(tenant: slug) < limits.maxPending else {
            throw Self.failure(.tooManyRequests, "MB845", "rate_limit_exceeded", "the tenant's job backlog is full")
        }
        let id = UUID().uuidString.lowercased()
        let job = EmailDelivery.job(
            tenant: slug, id: id, message: message, tags: body["tags"] ?? .array([]), idempotencyKey: idempotencyKey, bodyHash: hash, at: at, now: now)
        guard try await node.store.enqueue(job) else {
            // Another request with the same key won the race: answer as it did.
            if let key = idempotencyKey, let earlier = try await node.store.job(tenant: slug, key: "idem:" + key) {
                return try jsonResponse(["id": .string(earlier.id)])
            }
            throw APIError.internalError(requestID: context.requestID)
        }
        JobMetrics.enqueued(tenant: slug, kind: EmailDelivery.kind)
        tree.jobs.workers?.ring()
        return try jsonResponse(["id": .string(id)])
    }

    /// The message a send asks for: fields checked, a template rendered with its variables.
    private func compose(_ body: JSONObject, tenant: String, defaultFrom: String) async throws -> MailMessage {
        let allowed: Set<String> = ["from", "to", "subject", "html", "text", "cc", "bcc", "reply_to", "headers", "tags", "scheduled_at", "template", "topic_id"]
        if let unknown = body.keys.first(where: { !allowed.contains($0) }) {
            let why = unknown == "attachments" || unknown == "react" ? "'\(unknown)' is not supported" : "unknown field '\(unknown)'"
            throw Self.failure(.unprocessableContent, "MB851", "validation_error", why)
        }
        func addresses(_ key: String, required: Bool = false) throws -> [String] {
            let list: [JSONValue]
            switch body[key] {
            case nil, .null?: list = []
            case .string(let one)?: list = [.string(one)]
            case .array(let many)?: list = many
            default: throw Self.failure(.unprocessableContent, "MB851", "validation_error", "\(key) must be an address or a list of them")
            }
            let found = try list.map { item -> String in
                guard let text = item.stringValue, SMTPMailer.isSafeAddress(MailMessage.address(text)), SMTPMailer.isSafeHeader(text),
                    MailMessage.address(text).split(separator: "@").count == 2
                else { throw Self.failure(.unprocessableContent, "MB851", "validation_error", "Invalid `\(key)` field: '\(item.stringValue ?? "?")'") }
                return key == "reply_to" ? text : MailMessage.address(text)
            }
            if required && found.isEmpty { throw Self.failure(.unprocessableContent, "MB851", "missing_required_field", "Missing `\(key)` field.") }
            guard found.count <= Self.maxRecipients else {
                throw Self.failure(.unprocessableContent, "MB851", "validation_error", "at most \(Self.maxRecipients) addresses in `\(key)`")
            }
            return found
        }
        func string(_ key: String) throws -> String? {
            switch body[key] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw Self.failure(.unprocessableContent, "MB851", "validation_error", "\(key) must be a string")
            }
        }
        var subject = try string("subject")
        var html = try string("html")
        var text = try string("text")
        var from = try string("from")
        var replyTo = try addresses("reply_to")
        if let template = body["template"], template != .null {
            guard let fields = template.objectValue, let id = fields["id"]?.stringValue else {
                throw Self.failure(.unprocessableContent, "MB851", "validation_error", "template must be {id, variables}")
            }
            guard let record = try await node.store.emailTemplate(tenant: tenant, idOrAlias: id) else {
                throw Self.failure(.notFound, "MB852", "not_found", "Template not found: '\(id)'")
            }
            let given = fields["variables"]?.objectValue ?? [:]
            var values = JSONObject()
            for variable in record.content.variables {
                if let value = given[variable.key], value != .null {
                    let fits = variable.type == "number" ? (value.doubleValue != nil) : (value.stringValue != nil || value.doubleValue != nil)
                    guard fits else {
                        throw Self.failure(.unprocessableContent, "MB853", "validation_error", "variable '\(variable.key)' must be a \(variable.type)")
                    }
                    values[variable.key] = value
                } else if let fallback = variable.fallbackValue, fallback != .null {
                    values[variable.key] = fallback
                } else {
                    throw Self.failure(.unprocessableContent, "MB853", "missing_required_field", "variable '\(variable.key)' has no value and no fallback_value")
                }
            }
            func render(_ source: String?, html: Bool) throws -> String? {
                guard let source else { return nil }
                do { return try MustacheTemplate(source).render(values, html: html) } catch {
                    throw Self.failure(.unprocessableContent, "MB851", "validation_error", "the template does not parse: \(error)")
                }
            }
            html = try render(record.content.html, html: true)
            text = try render(record.content.text, html: false) ?? text
            subject = try subject ?? render(record.content.subject, html: false)
            from = from ?? record.content.from
            if replyTo.isEmpty { replyTo = record.content.replyTo }
        }
        let to = try addresses("to", required: true)
        guard let subject, !subject.isEmpty else { throw Self.failure(.unprocessableContent, "MB851", "missing_required_field", "Missing `subject` field.") }
        guard html != nil || text != nil else {
            throw Self.failure(.unprocessableContent, "MB851", "missing_required_field", "Missing `html` or `text` field.")
        }
        let sender = from ?? defaultFrom
        guard SMTPMailer.isSafeAddress(MailMessage.address(sender)), SMTPMailer.isSafeHeader(sender) else {
            throw Self.failure(.unprocessableContent, "MB851", "validation_error", "Invalid `from` field: '\(sender)'")
        }
        var message = MailMessage(to: to, subject: subject, text: text, html: html)
        message.from = sender
        message.cc = try addresses("cc")
        message.bcc = try addresses("bcc")
        message.replyTo = replyTo
        if let headers = try body["headers"].flatMap({ value -> JSONObject? in
            guard value != .null else { return nil }
            guard let object = value.objectValue else { throw Self.failure(.unprocessableContent, "MB851", "validation_error", "headers must be an object") }
            return object
        }) {
            do {
                message.headers = try WebhookAdminAPI.headers(headers).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            } catch let error as APIError {
                throw Self.failure(.unprocessableContent, "MB851", "validation_error", error.message)
            }
            let reserved: Set<String> = ["from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "reply-to"]
            if let bad = message.headers.first(where: { reserved.contains($0.0.lowercased()) }) {
                throw Self.failure(.unprocessableContent, "MB851", "validation_error", "header '\(bad.0)' is set from the message's fields")
            }
        }
        return message
    }

    @Sendable func read(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let job = try await email(tree.slug, context)
        let fields = job.payload["message"]?.objectValue ?? [:]
        let now = Date()
        let event: String
        switch job.status {
        case .pending: event = job.runAt > now && job.payload["scheduled"]?.boolValue == true ? "scheduled" : "queued"
        case .running: event = "queued"
        case .succeeded: event = "sent"
        case .failed: event = "failed"
        case .cancelled: event = "canceled"
        }
        return try jsonResponse([
            "object": "email", "id": .string(job.id), "to": fields["to"] ?? .array([]), "from": fields["from"] ?? .null,
            "created_at": .string(QueueRPC.timestamp(job.createdAt)), "subject": fields["subject"] ?? .null, "html": fields["html"] ?? .null,
            "text": fields["text"] ?? .null, "cc": fields["cc"] ?? .array([]), "bcc": fields["bcc"] ?? .array([]),
            "reply_to": fields["reply_to"] ?? .array([]), "last_event": .string(event),
            "scheduled_at": job.payload["scheduled"]?.boolValue == true ? .string(QueueRPC.timestamp(job.runAt)) : .null,
            "tags": job.payload["tags"] ?? .array([]),
        ])
    }

    /// `{"scheduled_at"}`: a scheduled e-mail goes at another time.
    @Sendable func update(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let job = try await email(tree.slug, context)
        let body = try await JSONBody.read(request)
        guard let when = (try body.string("scheduled_at")).flatMap(WebhookAdminAPI.date),
            when.timeIntervalSinceNow <= Self.maxScheduleAhead
        else { throw Self.failure(.badRequest, "MB857", "validation_error", "scheduled_at must be an ISO 8601 time at most 30 days ahead") }
        guard try await node.store.reschedule(tenant: tree.slug, id: job.id, kind: EmailDelivery.kind, at: max(Date(), when)) else {
            throw Self.failure(.conflict, "MB858", "validation_error", "e-mail '\(job.id)' was sent already")
        }
        return try jsonResponse(["object": "email", "id": .string(job.id)])
    }

    @Sendable func cancel(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let job = try await email(tree.slug, context)
        guard job.payload["scheduled"]?.boolValue == true, try await node.store.cancelPending(tenant: tree.slug, id: job.id, kind: EmailDelivery.kind) else {
            throw Self.failure(.conflict, "MB858", "validation_error", "only an e-mail still scheduled can be canceled")
        }
        return try jsonResponse(["object": "email", "id": .string(job.id)])
    }

    private func email(_ slug: String, _ context: EdgeContext) async throws -> JobRecord {
        let id = context.parameters.get("id") ?? ""
        guard let job = try await node.store.job(tenant: slug, id: id), job.kind == EmailDelivery.kind else {
            throw Self.failure(.notFound, "MB855", "not_found", "Email not found")
        }
        return job
    }

    // MARK: - Templates

    @Sendable func createTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let body = try await JSONBody.read(request)
        let now = Date()
        let record = EmailTemplateRecord(
            tenant: tree.slug, id: UUID().uuidString.lowercased(), content: try templateContent(body, base: nil), createdAt: now, updatedAt: now)
        do {
            try await node.store.createEmailTemplate(record)
        } catch ControlPlaneError.duplicate {
            throw Self.failure(.conflict, "MB851", "validation_error", "alias '\(record.content.alias ?? "")' is taken")
        }
        return try jsonResponse(["id": .string(record.id), "object": "template"], status: .created)
    }

    @Sendable func listTemplates(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let templates = try await node.store.emailTemplates(tenant: tree.slug)
        return try jsonResponse([
            "object": "list", "has_more": false,
            "data": .array(templates.map { record in
                [
                    "id": .string(record.id), "name": .string(record.content.name), "alias": record.content.alias.map(JSONValue.string) ?? .null,
                    "status": .string(record.content.publishedAt == nil ? "draft" : "published"),
                    "published_at": record.content.publishedAt.map { .string(QueueRPC.timestamp($0)) } ?? .null,
                    "created_at": .string(QueueRPC.timestamp(record.createdAt)), "updated_at": .string(QueueRPC.timestamp(record.updatedAt)),
                ]
            }),
        ])
    }

    @Sendable func readTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let record = try await template(tree.slug, context)
        let content = record.content
        return try jsonResponse([
            "object": "template", "id": .string(record.id), "name": .string(content.name), "alias": content.alias.map(JSONValue.string) ?? .null,
            "status": .string(content.publishedAt == nil ? "draft" : "published"), "from": content.from.map(JSONValue.string) ?? .null,
            "subject": content.subject.map(JSONValue.string) ?? .null, "reply_to": .array(content.replyTo.map(JSONValue.string)),
            "html": .string(content.html), "text": content.text.map(JSONValue.string) ?? .null,
            "variables": .array(content.variables.map { variable in
                ["key": .string(variable.key), "type": .string(variable.type), "fallback_value": variable.fallbackValue ?? .null]
            }),
            "created_at": .string(QueueRPC.timestamp(record.createdAt)), "updated_at": .string(QueueRPC.timestamp(record.updatedAt)),
            "published_at": content.publishedAt.map { .string(QueueRPC.timestamp($0)) } ?? .null,
        ])
    }

    @Sendable func updateTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        var record = try await template(tree.slug, context)
        let body = try await JSONBody.read(request)
        record.content = try templateContent(body, base: record.content)
        record.updatedAt = Date()
        do {
            guard try await node.store.updateEmailTemplate(record) else { throw Self.templateNotFound(record.id) }
        } catch ControlPlaneError.duplicate {
            throw Self.failure(.conflict, "MB851", "validation_error", "alias '\(record.content.alias ?? "")' is taken")
        }
        return try jsonResponse(["id": .string(record.id), "object": "template"])
    }

    @Sendable func deleteTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        let record = try await template(tree.slug, context)
        guard try await node.store.deleteEmailTemplate(tenant: tree.slug, id: record.id) else { throw Self.templateNotFound(record.id) }
        return try jsonResponse(["id": .string(record.id), "object": "template", "deleted": true])
    }

    /// Templates are usable as soon as they are made; publishing records when it was done.
    @Sendable func publishTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        var record = try await template(tree.slug, context)
        record.content.publishedAt = Date()
        record.updatedAt = Date()
        _ = try await node.store.updateEmailTemplate(record)
        return try jsonResponse(["id": .string(record.id), "object": "template"])
    }

    @Sendable func duplicateTemplate(_ request: Request, context: EdgeContext) async throws -> Response {
        let tree = try authorize(request, context)
        var record = try await template(tree.slug, context)
        record.id = UUID().uuidString.lowercased()
        record.content.name += " (copy)"
        record.content.alias = nil
        record.content.publishedAt = nil
        record.createdAt = Date()
        record.updatedAt = record.createdAt
        try await node.store.createEmailTemplate(record)
        return try jsonResponse(["id": .string(record.id), "object": "template"])
    }

    private func template(_ slug: String, _ context: EdgeContext) async throws -> EmailTemplateRecord {
        let id = context.parameters.get("id") ?? ""
        guard let record = try await node.store.emailTemplate(tenant: slug, idOrAlias: id) else { throw Self.templateNotFound(id) }
        return record
    }

    static func templateNotFound(_ id: String) -> APIError {
        failure(.notFound, "MB852", "not_found", "Template not found: '\(id)'")
    }

    private func templateContent(_ body: JSONBody, base: EmailTemplateContent?) throws -> EmailTemplateContent {
        func invalid(_ message: String) -> APIError { Self.failure(.unprocessableContent, "MB851", "validation_error", message) }
        let allowed = ["name", "alias", "from", "subject", "reply_to", "html", "text", "variables", "id"]
        if let unknown = body.object.keys.first(where: { !allowed.contains($0) }) { throw invalid("unknown field '\(unknown)'") }
        func string(_ key: String) throws -> String? {
            do { return try body.string(key) } catch { throw invalid("\(key) must be a string") }
        }
        guard let name = try string("name") ?? base?.name, !name.isEmpty else { throw Self.failure(.unprocessableContent, "MB851", "missing_required_field", "Missing `name` field.") }
        guard let html = try string("html") ?? base?.html, !html.isEmpty else { throw Self.failure(.unprocessableContent, "MB851", "missing_required_field", "Missing `html` field.") }
        let subject = try string("subject") ?? base?.subject
        let text = try string("text") ?? base?.text
        for (field, source) in [("html", html), ("text", text), ("subject", subject)] {
            guard let source else { continue }
            do { _ = try MustacheTemplate(source) } catch { throw invalid("\(field): \(error)") }
        }
        let from = try string("from") ?? base?.from
        if let from, !SMTPMailer.isSafeAddress(MailMessage.address(from)) { throw invalid("Invalid `from` field: '\(from)'") }
        var replyTo = base?.replyTo ?? []
        switch body.object["reply_to"] {
        case nil, .null?: break
        case .string(let one)?: replyTo = [one]
        case .array(let many)?: replyTo = many.compactMap(\.stringValue)
        default: throw invalid("reply_to must be an address or a list of them")
        }
        var variables = base?.variables ?? []
        if let list = body.object["variables"], list != .null {
            guard let items = list.arrayValue else { throw invalid("variables must be a list") }
            variables = try items.map { item in
                guard let object = item.objectValue, let key = object["key"]?.stringValue, !key.isEmpty else { throw invalid("a variable needs a key") }
                let type = object["type"]?.stringValue ?? "string"
                guard ["string", "number"].contains(type) else { throw invalid("variable '\(key)': type must be string or number") }
                let fallback = object["fallback_value"]
                if let fallback, fallback != .null, type == "number", fallback.doubleValue == nil {
                    throw invalid("variable '\(key)': fallback_value must be a number")
                }
                return EmailTemplateVariable(key: key, type: type, fallbackValue: fallback?.nonNull)
            }
        }
        let alias = try string("alias") ?? base?.alias
        return EmailTemplateContent(
            name: name, alias: alias, from: from, subject: subject, replyTo: replyTo, html: html, text: text, variables: variables,
            publishedAt: base?.publishedAt)
    }
}

/// Per-tenant e-mail send rates on this node (the tenant's `limits.jobs.perSecond`).
final class SendRates: Sendable {
    private let buckets = NIOLockedValueBox<[String: TokenBucket]>([:])

    func allow(_ tenant: String, perSecond: Double) -> Bool {
        let bucket = buckets.withLockedValue { buckets in
            if let found = buckets[tenant] {
                found.reconfigure(rate: perSecond, capacity: max(1, Int(perSecond)))
                return found
            }
            if buckets.count > 10_000 { buckets = buckets.filter { !$0.value.isFull } }
            let made = TokenBucket(rate: perSecond, capacity: max(1, Int(perSecond)))
            buckets[tenant] = made
            return made
        }
        return bucket.take() == .allowed
    }
}
