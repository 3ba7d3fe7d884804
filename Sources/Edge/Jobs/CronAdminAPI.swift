import Foundation
import Hummingbird
import Jobs
import Runtime
import Tenancy
import TenantRuntime

/// A tenant's scheduled jobs for its operator (`/admin/v1/tenants/{slug}/cron`): create (the
/// signing secret shown once), list, read, change, delete, and each job's runs. A change restarts
/// the tenant's tree, which loads its scheduled jobs when it starts.
struct CronAdminAPI {
    let node: NodeServices
    static let fields = ["name", "schedule", "timezone", "target", "retrySchedule", "enabled"]
    static let maxJobs = 100

    func register(on group: RouterGroup<EdgeContext>) {
        group.post("tenants/:slug/cron", use: create)
        group.get("tenants/:slug/cron", use: list)
        group.get("tenants/:slug/cron/:name", use: read)
        group.patch("tenants/:slug/cron/:name", use: update)
        group.delete("tenants/:slug/cron/:name", use: delete)
        group.get("tenants/:slug/cron/:name/runs", use: runs)
    }

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(Self.fields)
        let name = try body.requiredString("name")
        guard (1...64).contains(name.count), name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
            throw APIError.invalidField("name", "1 to 64 letters, digits, '_', '-' or '.'")
        }
        guard try await node.store.cronJobs(tenant: tenant.slug).count < Self.maxJobs else {
            throw APIError(status: .conflict, code: "MB833", message: "tenant '\(tenant.slug)' already has \(Self.maxJobs) scheduled jobs")
        }
        let (spec, schedule) = try spec(from: body, base: nil)
        let now = Date()
        var record = CronRecord(tenant: tenant.slug, name: name, spec: spec, secrets: [], nextRunAt: schedule.next(after: now), createdAt: now, updatedAt: now)
        let (secret, sealed) = try WebhookSigner.newSealedSecret(context: LiveCron.secretContext(record), secretBox: node.secretBox)
        record.secrets = [sealed]
        do {
            try await node.store.createCron(record)
        } catch ControlPlaneError.duplicate {
            throw APIError(status: .conflict, code: "MB833", message: "tenant '\(tenant.slug)' already has a scheduled job named '\(name)'")
        }
        try await audit("cron.create", tenant: tenant.slug, name: name, context: context)
        await reload(tenant.slug)
        var json = Self.json(record)
        json["secret"] = .string(secret)
        return try jsonResponse(.object(json), status: .created)
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try jsonResponse(.array(try await node.store.cronJobs(tenant: tenant.slug).map { .object(Self.json($0)) }))
    }

    @Sendable func read(_ request: Request, context: EdgeContext) async throws -> Response {
        try jsonResponse(.object(Self.json(try await cron(context).1)))
    }

    @Sendable func update(_ request: Request, context: EdgeContext) async throws -> Response {
        var (tenant, record) = try await cron(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(Self.fields.filter { $0 != "name" })
        let (spec, schedule) = try spec(from: body, base: record.spec)
        if spec.schedule != record.spec.schedule || spec.timezone != record.spec.timezone || (spec.enabled && !record.spec.enabled) {
            record.nextRunAt = schedule.next(after: Date())
        }
        record.spec = spec
        record.updatedAt = Date()
        guard try await node.store.updateCron(record) else { throw Self.notFound(record.name) }
        try await audit("cron.update", tenant: tenant.slug, name: record.name, context: context)
        await reload(tenant.slug)
        return try jsonResponse(.object(Self.json(record)))
    }

    @Sendable func delete(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tenant, record) = try await cron(context)
        guard try await node.store.deleteCron(tenant: tenant.slug, name: record.name) else { throw Self.notFound(record.name) }
        try await audit("cron.delete", tenant: tenant.slug, name: record.name, context: context)
        await reload(tenant.slug)
        return Response(status: .noContent)
    }

    /// `[{scheduledAt, status, httpStatus, latencyMs}]`, newest first; `skipped` and `missed`
    /// for runs that did not happen.
    @Sendable func runs(_ request: Request, context: EdgeContext) async throws -> Response {
        let (tenant, record) = try await cron(context)
        let limit = Int(request.uri.queryParameters.get("limit") ?? "50") ?? -1
        guard (1...500).contains(limit) else { throw APIError.invalidField("limit", "expected a whole number in [1, 500]") }
        var runs: [JSONValue] = []
        for job in try await node.store.jobs(tenant: tenant.slug, subject: LiveCron.subject(record.name), status: nil, before: nil, limit: limit) {
            let last = try await node.store.attempts(tenant: tenant.slug, job: job.id).last
            var status = job.status == .running ? "running" : job.status.rawValue
            if job.status == .cancelled, let why = job.lastError, let colon = why.firstIndex(of: ":") { status = String(why[..<colon]) }
            runs.append([
                "id": .string(job.id), "scheduledAt": job.payload["scheduledAt"] ?? .null, "status": .string(status),
                "httpStatus": last?.httpStatus.map { .integer(Int64($0)) } ?? .null, "latencyMs": last.map { .integer(Int64($0.latencyMs)) } ?? .null,
                "attempts": .integer(Int64(job.attempt)), "error": job.lastError.map(JSONValue.string) ?? .null,
            ])
        }
        return try jsonResponse(.array(runs))
    }

    // MARK: - Helpers

    private func cron(_ context: EdgeContext) async throws -> (Tenant, CronRecord) {
        let tenant = try await node.existingTenant(context)
        let name = context.parameters.get("name") ?? ""
        guard let record = try await node.store.cronJob(tenant: tenant.slug, name: name) else { throw Self.notFound(name) }
        return (tenant, record)
    }

    static func notFound(_ name: String) -> APIError {
        APIError(status: .notFound, code: "MB832", message: "no scheduled job '\(name)'")
    }

    private func reload(_ slug: String) async {
        await node.tenantChanged(slug)
        await JobTenantsKeeper(node: node).keep(slug)
    }

    private func audit(_ action: String, tenant: String, name: String, context: EdgeContext) async throws {
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: action, tenant: tenant, requestID: context.requestID, detail: ["name": .string(name)]))
    }

    private func spec(from body: JSONBody, base: CronSpec?) throws -> (CronSpec, CronSchedule) {
        let scheduleText = try body.string("schedule") ?? base?.schedule
        guard let scheduleText else { throw APIError(status: .badRequest, code: "MB830", message: "schedule is required") }
        let timezone = try body.string("timezone") ?? base?.timezone ?? "UTC"
        let schedule: CronSchedule
        do {
            schedule = try CronSchedule(scheduleText, timeZone: timezone)
        } catch {
            switch error {
            case .unknownZone: throw APIError(status: .badRequest, code: "MB831", message: error.description)
            case .invalid: throw APIError(status: .badRequest, code: "MB830", message: error.description)
            }
        }
        var target = base?.target
        if let object = try body.object("target") {
            let fields = JSONBody(object: object)
            let kind = try fields.string("kind") ?? "http"
            guard kind != "function" else {
                throw APIError(status: .notImplemented, code: "MB834", message: "function targets come with functions; use an http target for now")
            }
            try fields.allowOnly(["kind", "url", "method", "headers", "body"])
            guard kind == "http" else { throw APIError.invalidField("target.kind", "expected http") }
            let url = try WebhookAdminAPI.targetURL(try fields.requiredString("url"), policy: node.configuration.outbound)
            let method = (try fields.string("method") ?? "POST").uppercased()
            guard ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) else {
                throw APIError(status: .badRequest, code: "MB825", message: "target.method must be GET, POST, PUT, PATCH or DELETE")
            }
            let headers = try fields.object("headers").map(WebhookAdminAPI.headers) ?? [:]
            var bodyText: String?
            if let value = object["body"], value != .null {
                bodyText = String(decoding: value.encoded(), as: UTF8.self)
                guard bodyText!.utf8.count <= 65_536 else { throw APIError(status: .badRequest, code: "MB825", message: "target.body is over 64 KiB") }
            }
            target = CronTarget(kind: kind, url: url, method: method, headers: headers, body: bodyText)
        }
        guard let target else { throw APIError.invalidField("target", "is required") }
        let retrySchedule = try WebhookAdminAPI.retryDelays(body) ?? base?.retrySchedule
        let spec = CronSpec(
            schedule: scheduleText, timezone: timezone, target: target, retrySchedule: retrySchedule, enabled: try body.bool("enabled") ?? base?.enabled ?? true)
        return (spec, schedule)
    }

    static func json(_ record: CronRecord) -> JSONObject {
        let spec = record.spec
        var target: JSONObject = [
            "kind": .string(spec.target.kind), "url": .string(spec.target.url), "method": .string(spec.target.method),
            "headers": .object(spec.target.headers.sorted { $0.key < $1.key }.reduce(into: JSONObject()) { $0[$1.key] = .string($1.value) }),
        ]
        target["body"] = spec.target.body.flatMap { try? JSONValue.parse(Array($0.utf8)) } ?? .null
        return [
            "name": .string(record.name), "schedule": .string(spec.schedule), "timezone": .string(spec.timezone), "target": .object(target),
            "retrySchedule": spec.retrySchedule.map { .array($0.map { .integer(Int64($0)) }) } ?? .null, "enabled": .bool(spec.enabled),
            "nextRunAt": spec.enabled ? record.nextRunAt.map { .string(WebhookAdminAPI.iso($0)) } ?? .null : .null,
            "createdAt": .string(WebhookAdminAPI.iso(record.createdAt)), "updatedAt": .string(WebhookAdminAPI.iso(record.updatedAt)),
        ]
    }
}
