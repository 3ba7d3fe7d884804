import Connectors
import Foundation
import Hummingbird
import Jobs
import Runtime
import Tenancy
import TenantRuntime

/// A tenant's database webhooks for its operator (`/admin/v1/tenants/{slug}/webhooks`): create
/// (the secret shown once), list, read, change, delete, rotate the secret (the old one co-signs
/// for 24 h), send a test event, and the delivery log with replay of one delivery or of a whole
/// status. A change restarts the tenant's tree, which loads webhooks when it starts.
struct WebhookAdminAPI {
    let node: NodeServices
    static let fields = ["name", "source", "schema", "table", "events", "filter", "url", "headers", "timeoutMs", "retrySchedule", "maxInFlight", "enabled"]
    static let maxWebhooks = 100
    static let rotationOverlap: TimeInterval = 86_400

    func register(on group: RouterGroup<EdgeContext>) {
        group.post("tenants/:slug/webhooks", use: create)
        group.get("tenants/:slug/webhooks", use: list)
        group.get("tenants/:slug/webhooks/deliveries/:msg", use: delivery)
        group.post("tenants/:slug/webhooks/deliveries/:msg/replay", use: replayOne)
        group.get("tenants/:slug/webhooks/:id", use: read)
        group.patch("tenants/:slug/webhooks/:id", use: update)
        group.delete("tenants/:slug/webhooks/:id", use: delete)
        group.post("tenants/:slug/webhooks/:id/secret/rotate", use: rotate)
        group.post("tenants/:slug/webhooks/:id/test", use: test)
        group.get("tenants/:slug/webhooks/:id/deliveries", use: deliveries)
        group.post("tenants/:slug/webhooks/:id/replay", use: replayMany)
    }

    // MARK: - Webhooks

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(Self.fields)
        guard try await node.store.webhooks(tenant: tenant.slug).count < Self.maxWebhooks else {
            throw APIError(status: .conflict, code: "MB829", message: "tenant '\(tenant.slug)' already has \(Self.maxWebhooks) webhooks")
        }
        let name = try Self.name(try body.requiredString("name"))
        let spec = try await spec(from: body, base: nil, tenant: tenant.slug)
        let now = Date()
        var record = WebhookRecord(tenant: tenant.slug, id: "wh_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20),
                                   name: name, spec: spec, secrets: [], createdAt: now, updatedAt: now)
        let (secret, sealed) = try WebhookSigner.newSealedSecret(context: LiveWebhook.secretContext(record), secretBox: node.secretBox)
        record.secrets = [sealed]
        do {
            try await node.store.createWebhook(record)
        } catch ControlPlaneError.duplicate {
            throw APIError(status: .conflict, code: "MB829", message: "tenant '\(tenant.slug)' already has a webhook named '\(name)'")
        }
        try await audit("webhook.create", tenant: tenant.slug, id: record.id, context: context)
        let capture = await reload(tenant.slug, source: spec.source)
        var json = Self.json(record)
        json["secret"] = .string(secret)
        json["capture"] = capture
        return try jsonResponse(.object(json), status: .created)
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try jsonResponse(.array(try await node.store.webhooks(tenant: tenant.slug).map { .object(Self.json($0)) }))
    }

    @Sendable func read(_ request: Request, context: EdgeContext) async throws -> Response {
        let (_, record) = try await webhook(context)
        return try jsonResponse(.object(Self.json(record)))
    }

    @Sendable func update(_ request: Request, context: EdgeContext) async throws -> Response {
        var (tenant, record) = try await webhook(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(Self.fields)
        if let name = try body.string("name") { record.name = try Self.name(name) }
        record.spec = try await spec(from: body, base: record.spec, tenant: tenant.slug)
        record.updatedAt = Date()
        do {
            guard try await node.store.updateWebhook(record) else { throw Self.notFound(record.id) }
        } catch ControlPlaneError.duplicate {
            throw APIError(status: .conflict, code: "MB829", message: "tenant '\(tenant.slug)' already has a webhook named '\(record.name)'")
        }
        try await audit("webhook.update", tenant: tenant.slug, id: record.id, context: context)
        _ = await reload(tenant.slug, source: record.spec.source)
        return try jsonResponse(.object(Self.json(record)))
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tenant, record) = try await webhook(context)
        guard try await node.store.deleteWebhook(tenant: tenant.slug, id: record.id) else { throw Self.notFound(record.id) }
        try await audit("webhook.delete", tenant: tenant.slug, id: record.id, context: context)
        _ = await reload(tenant.slug, source: nil)
        return Response(status: .noContent)
    }

    /// A new secret signs from now on; the previous one co-signs for 24 hours.
    @Sendable func rotate(_ request: Request, context: EdgeContext) async throws -> Response {
        var (tenant, record) = try await webhook(context)
        let now = Date()
        let until = now.addingTimeInterval(Self.rotationOverlap)
        let (secret, sealed) = try WebhookSigner.newSealedSecret(context: LiveWebhook.secretContext(record), secretBox: node.secretBox)
        var kept = record.secrets.filter { $0.retiresAt.map { $0 > now } ?? true }.prefix(1).map { old in
            SealedWebhookSecret(sealed: old.sealed, retiresAt: min(old.retiresAt ?? until, until))
        }
        kept.insert(sealed, at: 0)
        record.secrets = kept
        record.updatedAt = now
        guard try await node.store.updateWebhook(record) else { throw Self.notFound(record.id) }
        try await audit("webhook.secret.rotate", tenant: tenant.slug, id: record.id, context: context)
        _ = await reload(tenant.slug, source: nil)
        return try jsonResponse(["secret": .string(secret), "previousSecretValidUntil": .string(Self.iso(until))])
    }

    /// One attempt of a `TEST` event, answered when it ends; not kept in the delivery log.
    @Sendable func test(_ request: Request, context: EdgeContext) async throws -> Response {
        let (_, record) = try await webhook(context)
        let live: LiveWebhook
        do { live = try LiveWebhook(record: record, secretBox: node.secretBox) } catch {
            throw APIError(status: .unprocessableContent, code: "MB825", message: "the webhook cannot be loaded: \(error)")
        }
        let delivery = WebhookDelivery(
            webhooks: LiveWebhooks(tenant: record.tenant, webhooks: [live]), client: OutboundClient(policy: node.configuration.outbound))
        let answer = await delivery.deliver(
            live, messageID: "msg_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16),
            body: .object(WebhookEvent.testBody(schema: record.spec.schema, table: record.spec.table)))
        return try jsonResponse([
            "status": .string(answer.succeeded ? "succeeded" : "failed"), "httpStatus": answer.status.map { .integer(Int64($0)) } ?? .null,
            "latencyMs": .integer(Int64(answer.latencyMs)), "error": answer.error.map(JSONValue.string) ?? .null,
        ])
    }

    // MARK: - Deliveries

    @Sendable func deliveries(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tenant, record) = try await webhook(context)
        let query = request.uri.queryParameters
        var status: JobRecord.Status?
        if let text = query.get("status") {
            guard let parsed = JobRecord.Status(rawValue: text == "delivering" ? "running" : text) else {
                throw APIError.invalidField("status", "expected pending, delivering, succeeded, failed or cancelled")
            }
            status = parsed
        }
        let before = try query.get("before").map { text in
            guard let date = Self.date(text) else { throw APIError.invalidField("before", "expected an ISO 8601 time") }
            return date
        }
        let limit = Int(query.get("limit") ?? "50") ?? -1
        guard (1...1000).contains(limit) else { throw APIError.invalidField("limit", "expected a whole number in [1, 1000]") }
        let jobs = try await node.store.jobs(tenant: tenant.slug, subject: record.id, status: status, before: before, limit: limit)
        return try jsonResponse(.array(jobs.map { .object(Self.summary($0)) }))
    }

    @Sendable func delivery(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let job = try await deliveryJob(tenant.slug, context)
        var json = Self.summary(job)
        json["event"] = job.payload["event"] ?? .null
        json["attempts"] = .array(try await node.store.attempts(tenant: tenant.slug, job: job.id).map { attempt in
            [
                "attempt": .integer(Int64(attempt.attempt)), "at": .string(Self.iso(attempt.at)),
                "httpStatus": attempt.httpStatus.map { .integer(Int64($0)) } ?? .null, "latencyMs": .integer(Int64(attempt.latencyMs)),
                "error": attempt.error.map(JSONValue.string) ?? .null, "responseBody": attempt.responseBody.map(JSONValue.string) ?? .null,
            ]
        })
        return try jsonResponse(.object(json))
    }

    /// Sends a settled delivery again with the same `webhook-id`.
    @Sendable func replayOne(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let job = try await deliveryJob(tenant.slug, context)
        guard try await node.store.requeue(tenant: tenant.slug, ids: [job.id]) == 1 else {
            throw APIError(status: .conflict, code: "MB828", message: "delivery '\(job.id)' is still \(job.status == .running ? "delivering" : "pending")")
        }
        await wake(tenant.slug)
        return try jsonResponse(["id": .string(job.id), "status": "pending"], status: .accepted)
    }

    /// `{"status":"failed","since"?}`: every delivery of the webhook in that status, again.
    @Sendable func replayMany(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tenant, record) = try await webhook(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(["status", "since"])
        let statusText = try body.string("status") ?? "failed"
        guard let status = JobRecord.Status(rawValue: statusText), [.failed, .succeeded, .cancelled].contains(status) else {
            throw APIError.invalidField("status", "expected failed, succeeded or cancelled")
        }
        let since = try body.string("since").map { text in
            guard let date = Self.date(text) else { throw APIError.invalidField("since", "expected an ISO 8601 time") }
            return date
        }
        var count = 0
        while true {
            let ids = try await node.store.jobIDs(tenant: tenant.slug, subject: record.id, status: status, since: since, limit: 1000)
            if ids.isEmpty { break }
            count += try await node.store.requeue(tenant: tenant.slug, ids: ids)
            if ids.count < 1000 { break }
        }
        await wake(tenant.slug)
        return try jsonResponse(["count": .integer(Int64(count))], status: .accepted)
    }

    // MARK: - Helpers

    private func webhook(_ context: EdgeContext) async throws -> (Tenant, WebhookRecord) {
        let tenant = try await node.existingTenant(context)
        let id = context.parameters.get("id") ?? ""
        guard let record = try await node.store.webhook(tenant: tenant.slug, id: id) else { throw Self.notFound(id) }
        return (tenant, record)
    }

    private func deliveryJob(_ slug: String, _ context: EdgeContext) async throws -> JobRecord {
        let id = context.parameters.get("msg") ?? ""
        guard let job = try await node.store.job(tenant: slug, id: id), job.kind == WebhookDelivery.kind else {
            throw APIError(status: .notFound, code: "MB827", message: "no delivery '\(id)'")
        }
        return job
    }

    static func notFound(_ id: String) -> APIError {
        APIError(status: .notFound, code: "MB826", message: "no webhook '\(id)'")
    }

    /// Every node drops the tenant's tree (their webhooks are read when a tree starts); this node
    /// starts it again at once if it owns the tenant. The source's replication slot is made here
    /// first, whichever node owns the tenant, so changes committed from the answer on wait in it
    /// for the owner's feed. Answers the capture as `{mode, reason}`.
    private func reload(_ slug: String, source: String?) async -> JSONValue {
        var prepared: PostgresChangeFeed.Capability?
        if let source, let record = try? await node.store.sources(slug).first(where: { $0.name == source }),
            let (url, _, _) = try? node.sourceCatalog.open(record)
        {
            let capability = await PostgresChangeFeed.probe(url: url, logger: node.logger)
            prepared = capability
            if capability == .available {
                do {
                    try await PostgresChangeFeed(slot: PostgresChangeFeed.slotName(tenant: slug, source: source), url: url, logger: node.logger).prepare()
                } catch {
                    prepared = .unavailable("cannot create the replication slot: \(error)")
                }
            }
        }
        await node.tenantChanged(slug)
        await JobTenantsKeeper(node: node).keep(slug)
        guard let source else { return .null }
        let capture = node.directory.runningTree(slug)?.jobs.capture[source] ?? prepared
        switch capture {
        case .available?: return ["mode": "logical-decoding", "reason": .null]
        case .unavailable(let why)?: return ["mode": "rest-writes", "reason": .string(why)]
        case nil: return ["mode": "rest-writes", "reason": "the source keeps no change log (SQLite): writes through the REST API are delivered"]
        }
    }

    private func wake(_ slug: String) async {
        if let tree = node.directory.runningTree(slug) {
            tree.jobs.workers?.ring()
        } else {
            await JobTenantsKeeper(node: node).keep(slug)
        }
    }

    private func audit(_ action: String, tenant: String, id: String, context: EdgeContext) async throws {
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: action, tenant: tenant, requestID: context.requestID, detail: ["id": .string(id)]))
    }

    static func name(_ text: String) throws -> String {
        guard (1...100).contains(text.count), text.allSatisfy({ $0.isLetter || $0.isNumber || "_-. ".contains($0) }) else {
            throw APIError.invalidField("name", "1 to 100 letters, digits, spaces, '_', '-' or '.'")
        }
        return text
    }

    /// The spec from the body's fields over `base` (PATCH) or the defaults (POST), every field
    /// checked: the target against the outbound policy, the table against the source's model,
    /// the filter against the table's columns.
    private func spec(from body: JSONBody, base: WebhookSpec?, tenant: String) async throws -> WebhookSpec {
        func bad(_ code: String, _ message: String, status: HTTPResponse.Status = .badRequest) -> APIError {
            APIError(status: status, code: code, message: message)
        }
        let sources = try await node.store.sources(tenant)
        let schema = try body.string("schema") ?? base?.schema ?? "public"
        guard let table = try body.string("table") ?? base?.table else { throw APIError.invalidField("table", "is required") }
        let sourceName = try body.string("source") ?? base?.source
        let candidates = sources.filter { sourceName == nil || $0.name == sourceName }
        let found = candidates.lazy.compactMap { record -> (SourceRecord, Entity)? in
            guard let entity = SourceCatalog.model(of: record).entities.first(where: { $0.schema == schema && $0.name == table && $0.kind == .table })
            else { return nil }
            return (record, entity)
        }.first
        guard let (source, entity) = found else {
            if let sourceName, !sources.contains(where: { $0.name == sourceName }) {
                throw bad("MB822", "tenant '\(tenant)' has no source '\(sourceName)'", status: .unprocessableContent)
            }
            throw bad("MB822", "no table \(schema).\(table) in \(sourceName.map { "source '\($0)'" } ?? "the tenant's sources")", status: .unprocessableContent)
        }
        var events = base?.events ?? ["INSERT", "UPDATE", "DELETE"]
        if let list = try body.array("events") {
            let texts = list.compactMap { $0.stringValue?.uppercased() }
            guard texts.count == list.count, !texts.isEmpty, texts.allSatisfy({ ["INSERT", "UPDATE", "DELETE"].contains($0) }) else {
                throw bad("MB824", "events must be a non-empty list of INSERT, UPDATE and DELETE")
            }
            events = ["INSERT", "UPDATE", "DELETE"].filter(texts.contains)
        }
        var filter = base?.filter
        if body.object["filter"] != nil {
            filter = try body.string("filter")
            if let text = filter {
                let parsed: ChangeFilter
                do { parsed = try ChangeFilter(parsing: text) } catch { throw bad("MB823", "filter: \(error.description)") }
                if let unknown = parsed.columns.first(where: { column in !entity.columns.contains { $0.name == column } }) {
                    throw bad("MB823", "filter: \(schema).\(table) has no column '\(unknown)'")
                }
            }
        }
        var url = base?.url
        if let text = try body.string("url") { url = try Self.targetURL(text, policy: node.configuration.outbound) }
        guard let url else { throw bad("MB820", "url is required") }
        var headers = base?.headers ?? [:]
        if let object = try body.object("headers") { headers = try Self.headers(object) }
        let timeoutMs = try body.int("timeoutMs") ?? base?.timeoutMs ?? 10_000
        guard (100...30_000).contains(timeoutMs) else { throw bad("MB825", "timeoutMs must be in [100, 30000]") }
        let retrySchedule = try Self.retryDelays(body) ?? base?.retrySchedule
        let maxInFlight = try body.int("maxInFlight") ?? base?.maxInFlight ?? 4
        guard (1...64).contains(maxInFlight) else { throw bad("MB825", "maxInFlight must be in [1, 64]") }
        return WebhookSpec(
            source: source.name, schema: schema, table: table, events: events, filter: filter, url: url, headers: headers, timeoutMs: timeoutMs,
            retrySchedule: retrySchedule, maxInFlight: maxInFlight, enabled: try body.bool("enabled") ?? base?.enabled ?? true)
    }

    /// Extra headers a tenant's job sends: tokens for names, no line breaks, none of the ones the
    /// signature or the framing own.
    static func headers(_ object: JSONObject) throws -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in object {
            // By scalar: "\r\n" is one Character, equal to neither "\r" nor "\n".
            guard let text = value.stringValue, !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }), text.utf8.count <= 4096 else {
                throw APIError(status: .badRequest, code: "MB825", message: "header '\(name)' must be a string of at most 4096 bytes without line breaks")
            }
            let lower = name.lowercased()
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }),
                !lower.hasPrefix("webhook-"), !lower.hasPrefix("x-minibaas-"),
                !["host", "content-length", "content-type", "transfer-encoding", "connection"].contains(lower)
            else {
                throw APIError(
                    status: .badRequest, code: "MB825",
                    message: "header '\(name)' is not allowed (a token, not webhook-*, x-minibaas-*, Host, Content-Type or framing)")
            }
            headers[name] = text
        }
        guard headers.count <= 20 else { throw APIError(status: .badRequest, code: "MB825", message: "at most 20 headers") }
        return headers
    }

    /// `retrySchedule`: 1 to 20 delays in milliseconds, each at most a day; nil when absent.
    static func retryDelays(_ body: JSONBody) throws -> [Int]? {
        guard let list = try body.array("retrySchedule") else { return nil }
        let delays = list.compactMap { $0.intValue.flatMap { Int(exactly: $0) } }
        guard delays.count == list.count, (try? RetrySchedule(milliseconds: delays)) != nil else {
            throw APIError(status: .badRequest, code: "MB825", message: "retrySchedule must list 1 to 20 delays in milliseconds, each at most a day")
        }
        return delays
    }

    /// The URL of a job's target, checked against the outbound policy.
    static func targetURL(_ text: String, policy: OutboundPolicy) throws -> String {
        do { _ = try policy.check(url: text) } catch {
            switch error {
            case .refused: throw APIError(status: .unprocessableContent, code: "MB821", message: String(error.description.dropFirst(7)))
            default: throw APIError(status: .badRequest, code: "MB820", message: String(error.description.dropFirst(7)))
            }
        }
        return text
    }

    static func json(_ record: WebhookRecord) -> JSONObject {
        let spec = record.spec
        return [
            "id": .string(record.id), "name": .string(record.name), "source": .string(spec.source), "schema": .string(spec.schema),
            "table": .string(spec.table), "events": .array(spec.events.map(JSONValue.string)), "filter": spec.filter.map(JSONValue.string) ?? .null,
            "url": .string(spec.url), "headers": .object(spec.headers.sorted { $0.key < $1.key }.reduce(into: JSONObject()) { $0[$1.key] = .string($1.value) }), "timeoutMs": .integer(Int64(spec.timeoutMs)),
            "retrySchedule": spec.retrySchedule.map { .array($0.map { .integer(Int64($0)) }) } ?? .null,
            "maxInFlight": .integer(Int64(spec.maxInFlight)), "enabled": .bool(spec.enabled),
            "createdAt": .string(iso(record.createdAt)), "updatedAt": .string(iso(record.updatedAt)),
        ]
    }

    static func summary(_ job: JobRecord) -> JSONObject {
        [
            "id": .string(job.id), "status": .string(job.status == .running ? "delivering" : job.status.rawValue),
            "eventType": job.payload["event"]?["type"] ?? .null, "attempts": .integer(Int64(job.attempt)),
            "nextAttemptAt": job.status == .pending ? .string(iso(job.runAt)) : .null, "lastError": job.lastError.map(JSONValue.string) ?? .null,
            "createdAt": .string(iso(job.createdAt)), "updatedAt": .string(iso(job.updatedAt)),
        ]
    }

    static func iso(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().timeZone(separator: .omitted).time(includingFractionalSeconds: true).timeSeparator(.colon).dateSeparator(.dash)) 
    }

    static func date(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601)) ?? (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
    }
}
