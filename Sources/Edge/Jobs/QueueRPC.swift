import Foundation
import HTTPTypes
import Hummingbird
import Runtime
import Tenancy

/// Supabase Queues' HTTP face: `POST {apiUrl}/rest/v1/rpc/{send|send_batch|read|pop|archive|delete}`
/// with `Content-Profile: pgmq_public`, pgmq_public's arguments and PostgREST's answers (`setof
/// bigint` as an array of ids, `message_record` rows, booleans), served by the control plane's
/// queues, so `client.schema("pgmq_public").rpc(...)` works unchanged. Service role only, as
/// Supabase grants pgmq_public by default.
struct QueueRPC {
    let node: NodeServices
    static let profile = "pgmq_public"
    static let maxMessageBytes = 1 << 20
    static let maxBatch = 1000

    /// Whether a `rpc` request is meant for the queues.
    static func wants(_ request: Request) -> Bool {
        let header = request.method == .get ? "Accept-Profile" : "Content-Profile"
        return request.headers[HTTPField.Name(header)!]?.lowercased() == profile
    }

    func call(_ request: Request, context: EdgeContext, function: String) async throws -> Response {
        guard let tree = context.tenant, let caller = context.caller else { throw APIError.internalError(requestID: context.requestID) }
        guard ["send", "send_batch", "read", "pop", "archive", "delete"].contains(function) else {
            throw APIError(status: .notFound, code: "PGRST202", message: "Could not find the function pgmq_public.\(function) in the schema cache")
        }
        guard caller.isServiceRole else {
            throw APIError(
                status: caller.role == "anon" ? .unauthorized : .forbidden, code: "42501", message: "permission denied for function \(function)",
                hint: "queues are for the service role")
        }
        guard request.method == .post else { throw Self.bad("call pgmq_public.\(function) with POST") }
        let arguments = try await JSONBody.read(request, maxBytes: Self.maxBatch * Self.maxMessageBytes / 16).object
        func argument(_ name: String) -> JSONValue? { arguments[name]?.nonNull }
        func integer(_ name: String, default value: Int? = nil, in range: ClosedRange<Int>) throws -> Int {
            guard let given = argument(name) else {
                guard let value else { throw Self.bad("\(name) is required") }
                return value
            }
            guard let number = given.intValue.flatMap({ Int(exactly: $0) }) ?? given.stringValue.flatMap({ Int($0) }), range.contains(number) else {
                throw Self.bad("\(name) must be a whole number in [\(range.lowerBound), \(range.upperBound)]")
            }
            return number
        }
        let known = ["queue_name", "message", "messages", "sleep_seconds", "n", "message_id"]
        if let unknown = arguments.keys.first(where: { !known.contains($0) }) { throw Self.bad("pgmq_public.\(function) has no argument '\(unknown)'") }
        guard let queue = argument("queue_name")?.stringValue else { throw Self.bad("queue_name is required") }
        let slug = tree.slug
        let store = node.store
        let now = Date()
        do {
            switch function {
            case "send", "send_batch":
                var bodies: [JSONValue]
                if function == "send" {
                    guard let message = argument("message") else { throw Self.bad("message is required") }
                    bodies = [message]
                } else {
                    guard let messages = argument("messages")?.arrayValue, !messages.isEmpty, messages.count <= Self.maxBatch else {
                        throw Self.bad("messages must be an array of 1 to \(Self.maxBatch) messages")
                    }
                    bodies = messages
                }
                let texts = bodies.map { String(decoding: $0.encoded(), as: UTF8.self) }
                if texts.contains(where: { $0.utf8.count > Self.maxMessageBytes }) {
                    throw APIError(status: .contentTooLarge, code: "MB844", message: "a queue message is larger than 1 MiB")
                }
                let delay = try integer("sleep_seconds", default: 0, in: 0...31_536_000)
                let ids = try await store.send(
                    tenant: slug, queue: queue, messages: texts, delay: TimeInterval(delay), maxLength: tree.tenant.limits.jobs.maxPending, now: now)
                return try jsonResponse(.array(ids.map { .integer($0) }))
            case "read":
                let visibility = try integer("sleep_seconds", in: 0...43_200)
                let limit = try integer("n", in: 1...Self.maxBatch)
                return try jsonResponse(.array(try await store.read(tenant: slug, queue: queue, visibility: TimeInterval(visibility), limit: limit, now: now).map(Self.record)))
            case "pop":
                return try jsonResponse(.array(try await store.pop(tenant: slug, queue: queue, now: now).map(Self.record)))
            default:
                let id = Int64(try integer("message_id", in: 1...Int.max))
                let done = function == "archive"
                    ? try await store.archive(tenant: slug, queue: queue, id: id, at: now)
                    : try await store.deleteMessage(tenant: slug, queue: queue, id: id)
                return try jsonResponse(.bool(done))
            }
        } catch QueueStoreError.missing {
            throw QueueAdminAPI.missing(queue)
        } catch QueueStoreError.full(let limit) {
            throw APIError(
                status: .tooManyRequests, code: "MB845", message: "queue '\(queue)' holds \(limit) messages already",
                hint: "read and delete some, or raise limits.jobs.maxPending")
        }
    }

    static func bad(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "MB843", message: message)
    }

    /// pgmq's `message_record`, as PostgREST writes it.
    static func record(_ message: QueueMessage) -> JSONValue {
        [
            "msg_id": .integer(message.id), "read_ct": .integer(Int64(message.readCount)), "enqueued_at": .string(timestamp(message.enqueuedAt)),
            "vt": .string(timestamp(message.visibleAt)),
            "message": (try? JSONValue.parse(Array(message.message.utf8))) ?? .null,
        ]
    }

    /// `2026-12-06T05:31:41.123+00:00`, PostgreSQL's timestamptz in JSON.
    static func timestamp(_ date: Date) -> String {
        let text = date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon))
        return text.hasSuffix("Z") ? String(text.dropLast()) + "+00:00" : text
    }
}

/// A tenant's queues for its operator: create, list with pgmq's metrics, read one, purge, drop.
struct QueueAdminAPI {
    let node: NodeServices

    func register(on group: RouterGroup<EdgeContext>) {
        group.post("tenants/:slug/queues", use: create)
        group.get("tenants/:slug/queues", use: list)
        group.get("tenants/:slug/queues/:name", use: read)
        group.delete("tenants/:slug/queues/:name", use: drop)
        group.post("tenants/:slug/queues/:name/purge", use: purge)
    }

    static func missing(_ name: String) -> APIError {
        APIError(status: .notFound, code: "MB840", message: "no queue '\(name)'", hint: "create it with POST /admin/v1/tenants/{slug}/queues")
    }

    /// pgmq's rules: a letter or underscore, then letters, digits or underscores; at most 47.
    static func name(_ text: String) throws -> String {
        let valid = (1...47).contains(text.utf8.count) && text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(text.unicodeScalars.first!)
        guard valid else { throw APIError(status: .badRequest, code: "MB842", message: "a queue name is 1 to 47 lower-case letters, digits or '_', not starting with a digit") }
        return text
    }

    @Sendable func create(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let body = try await JSONBody.read(request)
        try body.allowOnly(["name"])
        let name = try Self.name(try body.requiredString("name"))
        do {
            try await node.store.createQueue(tenant: tenant.slug, name: name, at: Date())
        } catch ControlPlaneError.duplicate {
            throw APIError(status: .conflict, code: "MB841", message: "queue '\(name)' exists")
        }
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: "queue.create", tenant: tenant.slug, requestID: context.requestID, detail: ["name": .string(name)]))
        return try jsonResponse(try await metrics(tenant.slug, name), status: .created)
    }

    @Sendable func list(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let now = Date()
        return try jsonResponse(.array(try await node.store.queueMetrics(tenant: tenant.slug, now: now).map { Self.json($0, now: now) }))
    }

    @Sendable func read(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        return try jsonResponse(try await metrics(tenant.slug, context.parameters.get("name") ?? ""))
    }

    @Sendable func drop(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.parameters.get("name") ?? ""
        guard try await node.store.dropQueue(tenant: tenant.slug, name: name) else { throw Self.missing(name) }
        try await node.store.appendAudit(AuditEntry(
            at: Date(), actor: "admin", action: "queue.drop", tenant: tenant.slug, requestID: context.requestID, detail: ["name": .string(name)]))
        return Response(status: .noContent)
    }

    @Sendable func purge(_ request: Request, context: EdgeContext) async throws -> Response {
        let tenant = try await node.existingTenant(context)
        let name = context.parameters.get("name") ?? ""
        do {
            let count = try await node.store.purgeQueue(tenant: tenant.slug, name: name)
            return try jsonResponse(["queue_name": .string(name), "purged": .integer(Int64(count))])
        } catch QueueStoreError.missing {
            throw Self.missing(name)
        }
    }

    private func metrics(_ slug: String, _ name: String) async throws -> JSONValue {
        let now = Date()
        guard let found = try await node.store.queueMetrics(tenant: slug, now: now).first(where: { $0.name == name }) else { throw Self.missing(name) }
        return Self.json(found, now: now)
    }

    /// pgmq's `metrics` row.
    static func json(_ metrics: QueueMetrics, now: Date) -> JSONValue {
        func age(_ date: Date?) -> JSONValue { date.map { .integer(Int64(max(0, now.timeIntervalSince($0)))) } ?? .null }
        return [
            "queue_name": .string(metrics.name), "queue_length": .integer(Int64(metrics.length)), "newest_msg_age_sec": age(metrics.newestAt),
            "oldest_msg_age_sec": age(metrics.oldestAt), "total_messages": .integer(metrics.totalMessages),
            "scrape_time": .string(QueueRPC.timestamp(now)), "created_at": .string(QueueRPC.timestamp(metrics.createdAt)),
        ]
    }
}
