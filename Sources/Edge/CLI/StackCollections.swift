import Crypto
import Foundation
import NIOHTTP1
import Runtime

/// How `apply` reads and changes each named collection of a tenant — buckets (through the
/// tenant's storage API), webhooks, scheduled jobs and functions (through the admin API) — and
/// which of their fields the node never shows back (compared by digest instead).
struct StackCollection: Sendable {
    let kind: String
    let singular: String
    /// Fields whose values the node does not return; a change to them is noticed by digest.
    let sealed: Set<String>
    let list: @Sendable (AdminClient, String) async throws -> [String: JSONObject]
    let create: @Sendable (AdminClient, String, JSONObject) async throws -> Void
    let update: @Sendable (AdminClient, String, JSONObject, JSONObject) async throws -> Void
    let delete: @Sendable (AdminClient, String, JSONObject) async throws -> Void
    /// The desired fields as the node would show them (a module as its SHA-256, secrets as names).
    let visible: @Sendable (JSONObject) -> JSONObject

    static let all: [StackCollection] = [buckets, webhooks, cron, functions]

    static func named(_ items: JSONValue) -> [String: JSONObject] {
        var byName: [String: JSONObject] = [:]
        for item in items.arrayValue ?? [] {
            if let object = item.objectValue, let name = object["name"]?.stringValue { byName[name] = object }
        }
        return byName
    }

    static let buckets = StackCollection(
        kind: "buckets", singular: "bucket", sealed: [],
        list: { client, slug in named(try await client.tenantCall(.GET, slug: slug, "/storage/v1/bucket")) },
        create: { client, slug, body in _ = try await client.tenantCall(.POST, slug: slug, "/storage/v1/bucket", body: .object(body)) },
        update: { client, slug, live, body in
            var changes = body
            changes["name"] = nil
            _ = try await client.tenantCall(.PUT, slug: slug, "/storage/v1/bucket/\(live["id"]?.stringValue ?? "")", body: .object(changes))
        },
        delete: { client, slug, live in _ = try await client.tenantCall(.DELETE, slug: slug, "/storage/v1/bucket/\(live["id"]?.stringValue ?? "")") },
        visible: { $0 })

    static let webhooks = StackCollection(
        kind: "webhooks", singular: "webhook", sealed: [],
        list: { client, slug in named(try await client.call(.GET, "/tenants/\(slug)/webhooks")) },
        create: { client, slug, body in
            let created = try await client.call(.POST, "/tenants/\(slug)/webhooks", body: .object(body))
            // The signing secret exists only now: handed over once, as the admin API does.
            if let secret = created["secret"]?.stringValue {
                FileHandle.standardError.write(Data("webhook \(body["name"]?.stringValue ?? "") of \(slug): signing secret (shown once) \(secret)\n".utf8))
            }
        },
        update: { client, slug, live, body in
            _ = try await client.call(.PATCH, "/tenants/\(slug)/webhooks/\(live["id"]?.stringValue ?? "")", body: .object(body))
        },
        delete: { client, slug, live in _ = try await client.call(.DELETE, "/tenants/\(slug)/webhooks/\(live["id"]?.stringValue ?? "")") },
        visible: { $0 })

    static let cron = StackCollection(
        kind: "cron", singular: "cron", sealed: [],
        list: { client, slug in named(try await client.call(.GET, "/tenants/\(slug)/cron")) },
        create: { client, slug, body in _ = try await client.call(.POST, "/tenants/\(slug)/cron", body: .object(body)) },
        update: { client, slug, live, body in
            var changes = body
            changes["name"] = nil
            _ = try await client.call(.PATCH, "/tenants/\(slug)/cron/\(live["name"]?.stringValue ?? "")", body: .object(changes))
        },
        delete: { client, slug, live in _ = try await client.call(.DELETE, "/tenants/\(slug)/cron/\(live["name"]?.stringValue ?? "")") },
        visible: { $0 })

    static let functions = StackCollection(
        kind: "functions", singular: "function", sealed: ["secrets"],
        list: { client, slug in named(try await client.call(.GET, "/tenants/\(slug)/functions")) },
        create: { client, slug, body in try await deploy(client, slug, body) },
        update: { client, slug, _, body in try await deploy(client, slug, body) },
        delete: { client, slug, live in _ = try await client.call(.DELETE, "/tenants/\(slug)/functions/\(live["name"]?.stringValue ?? "")") },
        visible: { body in
            var shown = body
            if let module = body["module"]?.stringValue, let bytes = Data(base64Encoded: module) {
                shown["module"] = nil
                shown["sha256"] = .string(Hex.encode(SHA256.hash(data: bytes)))
            }
            // The node keeps JavaScript source as its UTF-8 bytes, digested the same way.
            if let source = body["source"]?.stringValue {
                shown["source"] = nil
                shown["sha256"] = .string(Hex.encode(SHA256.hash(data: Array(source.utf8))))
            }
            if let secrets = body["secrets"]?.objectValue { shown["secrets"] = .array(secrets.keys.sorted().map(JSONValue.string)) }
            return shown
        })

    /// Every PUT is a new immutable version of the function.
    private static func deploy(_ client: AdminClient, _ slug: String, _ body: JSONObject) async throws {
        var settings = body
        let name = settings["name"]?.stringValue ?? ""
        settings["name"] = nil
        _ = try await client.call(.PUT, "/tenants/\(slug)/functions/\(name)", body: .object(settings))
    }
}
