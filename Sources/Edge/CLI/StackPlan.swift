import Crypto
import Foundation
import NIOHTTP1
import Runtime

/// What `minibaas apply` would change to make a node match a stack file, in the order it would
/// change it, as Terraform shows a plan: `+` create, `~` update (with the fields that change),
/// `-/+` replace, `-` destroy. Secrets are never shown: fields that may hold them print as
/// `(sensitive)`, and a changed secret is noticed through the digests the stack's record keeps.
struct StackPlan {
    enum Action: String {
        case create = "+", update = "~", replace = "-/+", destroy = "-"
    }

    struct Change {
        let action: Action
        let address: String
        var details: [String] = []
        /// The admin calls that make the change.
        let run: @Sendable (AdminClient) async throws -> Void
        /// What the stack's record says once this change is made.
        let record: @Sendable (inout StackRecord) -> Void
    }

    var changes: [Change] = []
    /// The record after every change: also written when nothing changes but a spec was adopted.
    var record: StackRecord
    let recordBefore: StackRecord

    var counts: (add: Int, change: Int, destroy: Int) {
        var counts = (add: 0, change: 0, destroy: 0)
        for change in changes {
            switch change.action {
            case .create: counts.add += 1
            case .update: counts.change += 1
            case .replace: counts.add += 1; counts.destroy += 1
            case .destroy: counts.destroy += 1
            }
        }
        return counts
    }

    var summary: String {
        let counts = self.counts
        return "Plan: \(counts.add) to add, \(counts.change) to change, \(counts.destroy) to destroy."
    }

    /// Fields whose values are never printed.
    static let sensitive: Set<String> = ["url", "dbUrl", "serviceKey", "headers", "password", "clientSecret", "smtp", "providers", "document"]

    // MARK: Planning

    static func make(file: StackFile, client: AdminClient, prune: Bool) async throws -> StackPlan {
        let before = try await StackRecord.fetch(file.stack, client: client)
        var plan = StackPlan(record: before, recordBefore: before)
        let live = try await client.call(.GET, "/tenants").arrayValue ?? []
        var liveTenants: [String: JSONObject] = [:]
        for tenant in live { if let object = tenant.objectValue, let slug = object["slug"]?.stringValue { liveTenants[slug] = object } }

        for tenant in file.tenants {
            let existing = liveTenants[tenant.slug]
            plan.planTenant(tenant, live: existing)
            try await plan.planSources(tenant, exists: existing != nil, client: client, prune: prune)
            try await plan.planPolicies(tenant, exists: existing != nil, client: client)
            try await plan.planAuth(tenant, exists: existing != nil, client: client)
            for collection in StackCollection.all {
                try await plan.planItems(tenant, collection, exists: existing != nil, client: client, prune: prune)
            }
        }
        if prune {
            let named = Set(file.tenants.map(\.slug))
            for slug in before.tenants.keys.sorted() where !named.contains(slug) && before.tenants[slug]?.managed == true {
                guard liveTenants[slug] != nil else {
                    plan.record.tenants[slug] = nil
                    continue
                }
                plan.changes.append(Change(
                    action: .destroy, address: "tenant.\(slug)", details: ["(with its keys, sources, policies, users and objects)"],
                    run: { try await $0.call(.DELETE, "/tenants/\(slug)") },
                    record: { $0.tenants[slug] = nil }))
            }
        }
        return plan
    }

    private mutating func planTenant(_ tenant: StackFile.Tenant, live: JSONObject?) {
        let slug = tenant.slug
        guard let live else {
            var details = ["name: \(Self.show(.string(tenant.name ?? slug)))"]
            if let status = tenant.status { details.append("status: \(Self.show(.string(status)))") }
            for (path, value) in Self.leaves(.object(tenant.limits ?? [:]), prefix: "limits") { details.append("\(path): \(Self.show(value))") }
            let name = tenant.name ?? slug
            let patch = Self.tenantPatch(status: tenant.status, limits: tenant.limits)
            changes.append(Change(
                action: .create, address: "tenant.\(slug)", details: details,
                run: { client in
                    _ = try await client.call(.POST, "/tenants", body: ["slug": .string(slug), "name": .string(name)])
                    if let patch { _ = try await client.call(.PATCH, "/tenants/\(slug)", body: .object(patch)) }
                },
                record: { $0.tenants[slug, default: .init()].managed = true }))
            return
        }
        var details: [String] = []
        var patch = JSONObject()
        if let name = tenant.name, live["name"]?.stringValue != name {
            details.append("name: \(Self.show(live["name"] ?? .null)) → \(Self.show(.string(name)))")
            patch["name"] = .string(name)
        }
        if let status = tenant.status, live["status"]?.stringValue != status {
            details.append("status: \(Self.show(live["status"] ?? .null)) → \(Self.show(.string(status)))")
            patch["status"] = .string(status)
        }
        if let limits = tenant.limits {
            var changed = false
            for (path, value) in Self.leaves(.object(limits), prefix: "limits") {
                let current = Self.value(at: path, in: .object(live))
                if !Self.same(current, value) {
                    details.append("\(path): \(Self.show(current ?? .null)) → \(Self.show(value))")
                    changed = true
                }
            }
            if changed { patch["limits"] = .object(limits) }
        }
        if !details.isEmpty {
            let body = patch
            changes.append(Change(
                action: .update, address: "tenant.\(slug)", details: details,
                run: { _ = try await $0.call(.PATCH, "/tenants/\(slug)", body: .object(body)) },
                record: { $0.tenants[slug, default: .init()].managed = true }))
        } else if record.tenants[slug]?.managed != true {
            // Adopted as it is: nothing to change, but the stack now manages it (and may prune it).
            record.tenants[slug, default: .init()].managed = true
        }
    }

    private mutating func planSources(_ tenant: StackFile.Tenant, exists: Bool, client: AdminClient, prune: Bool) async throws {
        let slug = tenant.slug
        let applied = recordBefore.tenants[slug]?.sources ?? [:]
        guard let desired = tenant.sources ?? (prune && !applied.isEmpty ? [] : nil) else { return }
        var live: [String: JSONObject] = [:]
        if exists {
            for source in try await client.call(.GET, "/tenants/\(slug)/sources").arrayValue ?? [] {
                if let object = source.objectValue, let name = object["name"]?.stringValue { live[name] = object }
            }
        }
        let known = recordBefore.tenants[slug]?.sources ?? [:]
        for source in desired {
            let name = source.name
            let digest = Self.digest(.object(source.body))
            let address = "tenant.\(slug).source.\(name)"
            let body = source.body
            let record: @Sendable (inout StackRecord) -> Void = { $0.tenants[slug, default: .init()].sources[name] = digest }
            guard let current = live[name] else {
                changes.append(Change(
                    action: .create, address: address, details: Self.describe(body),
                    run: { _ = try await $0.call(.POST, "/tenants/\(slug)/sources", body: .object(body)) }, record: record))
                continue
            }
            if known[name] == digest { continue }
            let liveKind = current["kind"]?.stringValue ?? ""
            if known[name] == nil && Self.matchesVisibly(body, current) {
                // Registered before this stack named it, the same as far as the node shows: adopt it.
                self.record.tenants[slug, default: .init()].sources[name] = digest
                continue
            }
            if liveKind == "schema" && source.kind == "schema" {
                // A new version of an uploaded schema migrates its tables in place.
                var upload: JSONObject = ["format": body["format"] ?? .null, "document": body["document"] ?? .null]
                if let destructive = body["allowDestructive"] { upload["allowDestructive"] = destructive }
                let reupload = upload
                changes.append(Change(
                    action: .update, address: address, details: ["document: (sensitive, changed)"],
                    run: { _ = try await $0.call(.PUT, "/tenants/\(slug)/sources/\(name)", body: .object(reupload)) }, record: record))
                continue
            }
            var details = Self.describe(body)
            if liveKind != source.kind { details.insert("kind: \(Self.show(.string(liveKind))) → \(Self.show(.string(source.kind)))", at: 0) }
            if liveKind == "schema" { details.append("(its hosted tables are dropped)") }
            changes.append(Change(
                action: .replace, address: address, details: details,
                run: { client in
                    _ = try await client.call(.DELETE, "/tenants/\(slug)/sources/\(name)")
                    _ = try await client.call(.POST, "/tenants/\(slug)/sources", body: .object(body))
                }, record: record))
        }
        if prune {
            let named = Set(desired.map(\.name))
            for name in known.keys.sorted() where !named.contains(name) {
                guard live[name] != nil else {
                    self.record.tenants[slug]?.sources[name] = nil
                    continue
                }
                changes.append(Change(
                    action: .destroy, address: "tenant.\(slug).source.\(name)",
                    details: live[name]?["kind"]?.stringValue == "schema" ? ["(its hosted tables are dropped)"] : [],
                    run: { _ = try await $0.call(.DELETE, "/tenants/\(slug)/sources/\(name)") },
                    record: { $0.tenants[slug]?.sources[name] = nil }))
            }
        }
    }

    private mutating func planPolicies(_ tenant: StackFile.Tenant, exists: Bool, client: AdminClient) async throws {
        guard let desired = tenant.policies else { return }
        let slug = tenant.slug
        let current = exists ? (try await client.call(.GET, "/tenants/\(slug)/policies")["policies"]?.arrayValue ?? []) : []
        guard !Self.same(.array(current), .array(desired)) else { return }
        let document: JSONValue = ["policies": .array(desired)]
        changes.append(Change(
            action: exists && !current.isEmpty ? .update : .create, address: "tenant.\(slug).policies",
            details: ["policies: \(current.count) → \(desired.count) rules"],
            run: { _ = try await $0.call(.PUT, "/tenants/\(slug)/policies", body: document) },
            record: { _ in }))
    }

    private mutating func planAuth(_ tenant: StackFile.Tenant, exists: Bool, client: AdminClient) async throws {
        guard let desired = tenant.auth else { return }
        let slug = tenant.slug
        let digest = Self.digest(.object(desired))
        guard recordBefore.tenants[slug]?.auth != digest || !exists else { return }
        if exists && recordBefore.tenants[slug]?.auth == nil,
            Self.authMatchesVisibly(desired, try await client.call(.GET, "/tenants/\(slug)/auth").objectValue ?? [:])
        {
            // Configured before this stack named it, the same as far as the node shows: adopt it.
            record.tenants[slug, default: .init()].auth = digest
            return
        }
        var details: [String] = []
        for key in desired.keys { details.append("\(key): \(Self.sensitive.contains(key) ? "(sensitive)" : Self.show(desired[key] ?? .null))") }
        changes.append(Change(
            action: exists && recordBefore.tenants[slug]?.auth != nil ? .update : .create, address: "tenant.\(slug).auth", details: details,
            run: { _ = try await $0.call(.PUT, "/tenants/\(slug)/auth", body: .object(desired)) },
            record: { $0.tenants[slug, default: .init()].auth = digest }))
    }

    /// Buckets, webhooks, scheduled jobs, functions: created when missing, updated when a field the
    /// file sets differs from the node's (or a sealed field's digest changed), destroyed under
    /// `--prune` when this stack applied them before.
    private mutating func planItems(_ tenant: StackFile.Tenant, _ collection: StackCollection, exists: Bool, client: AdminClient, prune: Bool) async throws {
        let slug = tenant.slug
        let kind = collection.kind
        let known = recordBefore.tenants[slug]?.items[kind] ?? [:]
        // A kind the file leaves out is not managed — except that --prune still removes what this
        // stack created of it before.
        guard let desired = tenant.items[kind] ?? (prune && !known.isEmpty ? [] : nil) else { return }
        let live = exists ? try await collection.list(client, slug) : [:]
        for item in desired {
            let name = item.name
            let body = item.body
            let digest = Self.digest(.object(body))
            let address = "tenant.\(slug).\(collection.singular).\(name)"
            let record: @Sendable (inout StackRecord) -> Void = { $0.tenants[slug, default: .init()].items[kind, default: [:]][name] = digest }
            let shown = collection.visible(body)
            guard let current = live[name] else {
                let details = shown.compactMap { key, value -> String? in
                    key == "name" ? nil : "\(key): \(collection.sealed.contains(key) || Self.sensitive.contains(key) ? "(sensitive)" : Self.show(value))"
                }
                changes.append(Change(
                    action: .create, address: address, details: details, run: { try await collection.create($0, slug, body) }, record: record))
                continue
            }
            if known[name] == digest { continue }
            var details: [String] = []
            for (key, value) in shown where key != "name" && !Self.same(value, current[key]) {
                details.append("\(key): \(Self.show(current[key] ?? .null)) → \(Self.show(value))")
            }
            let sealedSet = collection.sealed.contains { body[$0] != nil }
            if details.isEmpty && !sealedSet {
                // The node already has it as the file says: adopt it.
                self.record.tenants[slug, default: .init()].items[kind, default: [:]][name] = digest
                continue
            }
            if details.isEmpty { details = collection.sealed.filter { body[$0] != nil }.sorted().map { "\($0): (sensitive, changed)" } }
            let previous = current
            changes.append(Change(
                action: .update, address: address, details: details, run: { try await collection.update($0, slug, previous, body) }, record: record))
        }
        if prune {
            let named = Set(desired.map(\.name))
            for name in known.keys.sorted() where !named.contains(name) {
                guard let current = live[name] else {
                    self.record.tenants[slug]?.items[kind]?[name] = nil
                    continue
                }
                changes.append(Change(
                    action: .destroy, address: "tenant.\(slug).\(collection.singular).\(name)",
                    run: { try await collection.delete($0, slug, current) },
                    record: { $0.tenants[slug]?.items[kind]?[name] = nil }))
            }
        }
    }

    // MARK: Helpers

    private static func tenantPatch(status: String?, limits: JSONObject?) -> JSONObject? {
        var patch = JSONObject()
        if let status { patch["status"] = .string(status) }
        if let limits { patch["limits"] = .object(limits) }
        return patch.isEmpty ? nil : patch
    }

    /// A source's fields as plan lines, secrets hidden.
    static func describe(_ body: JSONObject) -> [String] {
        body.compactMap { key, value in
            if key == "name" { return nil }
            if key == "document", case .string(let text) = value { return "document: (\(text.utf8.count) bytes)" }
            return "\(key): \(sensitive.contains(key) ? "(sensitive)" : show(value))"
        }
    }

    /// Whether a registration body describes the source the node lists, on every field the file
    /// sets. A connection string is compared by the host, port, database and user the node lists;
    /// what the node never shows (passwords, keys, headers, documents) or does not list cannot be
    /// compared, and then the answer is no — the source is replaced rather than wrongly adopted.
    static func matchesVisibly(_ body: JSONObject, _ live: JSONObject) -> Bool {
        guard let kind = body["kind"]?.stringValue, kind == live["kind"]?.stringValue else { return false }
        for (key, value) in body where key != "name" && key != "kind" {
            switch (kind, key) {
            case ("postgres", "url"), ("schema", "url"), ("supabase", "dbUrl"):
                guard let text = value.stringValue, sameDatabase(text, live) else { return false }
            case ("supabase", "url"):
                guard same(value, live["projectUrl"]) else { return false }
            default:
                guard let shown = live[key], same(value, shown) else { return false }
            }
        }
        return true
    }

    /// A PostgreSQL URL against the host, port, database and user a listing shows.
    static func sameDatabase(_ text: String, _ live: JSONObject) -> Bool {
        guard let url = URLComponents(string: text), let host = url.host else { return false }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        return host == live["host"]?.stringValue && Int64(url.port ?? 5432) == live["port"]?.intValue
            && database == live["database"]?.stringValue && (url.user ?? "") == (live["user"]?.stringValue ?? "")
    }

    /// Whether auth settings match the node's public view of them. Settings that carry a secret
    /// (an SMTP password, an OIDC client secret) never match: the node cannot show them.
    static func authMatchesVisibly(_ desired: JSONObject, _ live: JSONObject) -> Bool {
        if desired["smtp"]?["password"] != nil { return false }
        if (desired["providers"]?.arrayValue ?? []).contains(where: { $0["clientSecret"] != nil }) { return false }
        return desired.allSatisfy { key, value in
            if key == "smtp", case .object(let smtp) = value {
                return smtp.allSatisfy { same($0.value, live["smtp"]?[$0.key]) }
            }
            return same(value, live[key])
        }
    }

    /// Dotted paths to the scalar leaves of an object.
    static func leaves(_ value: JSONValue, prefix: String) -> [(String, JSONValue)] {
        guard case .object(let object) = value else { return [(prefix, value)] }
        return object.flatMap { key, child in leaves(child, prefix: "\(prefix).\(key)") }
    }

    static func value(at path: String, in root: JSONValue) -> JSONValue? {
        var current: JSONValue? = root
        for key in path.split(separator: ".") { current = current?.objectValue?[String(key)] }
        return current
    }

    /// JSON equality with numbers compared by value (the node answers 50 for 50.0).
    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a?, let b?):
            if let x = a.doubleValue, let y = b.doubleValue { return x == y }
            switch (a, b) {
            case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
            case (.object(let x), .object(let y)): return Set(x.keys) == Set(y.keys) && x.allSatisfy { same($0.value, y[$0.key]) }
            default: return a == b
            }
        default: return false
        }
    }

    static func show(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "\"\(text)\""
        default: return value.jsonString
        }
    }

    /// SHA-256 of the value's canonical JSON (keys sorted), so key order in the file never matters.
    static func digest(_ value: JSONValue) -> String {
        Hex.encode(SHA256.hash(data: Array(canonical(value).utf8)))
    }

    static func canonical(_ value: JSONValue) -> String {
        switch value {
        case .object(let object):
            return "{" + object.keys.sorted().map { JSONValue.string($0).jsonString + ":" + canonical(object[$0]!) }.joined(separator: ",") + "}"
        case .array(let items):
            return "[" + items.map(canonical).joined(separator: ",") + "]"
        default:
            return value.jsonString
        }
    }
}

/// The node's record of what one stack file applied (`/admin/v1/stacks/{name}`).
struct StackRecord: Sendable, Equatable {
    struct Tenant: Sendable, Equatable {
        var managed = false
        /// Source name → digest of the registration body this stack applied.
        var sources: [String: String] = [:]
        var auth: String?
        /// Collection kind → item name → digest of the spec this stack applied.
        var items: [String: [String: String]] = [:]
    }

    var name: String
    var tenants: [String: Tenant] = [:]

    static func fetch(_ name: String, client: AdminClient) async throws -> StackRecord {
        let answer = try await client.call(.GET, "/stacks/\(name)")
        var record = StackRecord(name: name)
        for (slug, value) in answer["state"]?["tenants"]?.objectValue ?? [:] {
            var tenant = Tenant(managed: value["managed"]?.boolValue ?? false, auth: value["auth"]?.stringValue)
            for (source, digest) in value["sources"]?.objectValue ?? [:] { tenant.sources[source] = digest.stringValue }
            for (kind, items) in value["items"]?.objectValue ?? [:] {
                for (name, digest) in items.objectValue ?? [:] { tenant.items[kind, default: [:]][name] = digest.stringValue }
            }
            record.tenants[slug] = tenant
        }
        return record
    }

    func save(client: AdminClient) async throws {
        var tenants = JSONObject()
        for slug in self.tenants.keys.sorted() {
            let tenant = self.tenants[slug]!
            var sources = JSONObject()
            for name in tenant.sources.keys.sorted() { sources[name] = .string(tenant.sources[name]!) }
            var items = JSONObject()
            for kind in tenant.items.keys.sorted() {
                var byName = JSONObject()
                for (name, digest) in tenant.items[kind]!.sorted(by: { $0.key < $1.key }) { byName[name] = .string(digest) }
                items[kind] = .object(byName)
            }
            tenants[slug] = [
                "managed": .bool(tenant.managed), "sources": .object(sources), "auth": tenant.auth.map(JSONValue.string) ?? .null, "items": .object(items),
            ]
        }
        _ = try await client.call(.PUT, "/stacks/\(name)", body: ["state": ["tenants": .object(tenants)]])
    }
}
