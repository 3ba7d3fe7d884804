import Foundation
import Runtime
import Tenancy
import Yams

/// A `stack.yaml` for `minibaas apply`: the tenants a node should have, in the admin API's field
/// names. Read strictly — unknown keys, wrong types, duplicate keys and names, a missing
/// `${env:NAME}` are refused with their line before anything is applied.
///
/// ```yaml
/// stack: production            # optional; names the record of what this file applied (default "default")
/// tenants:
///   - slug: acme
///     name: Acme
///     status: active
///     limits: {requestsPerSecond: 50, burst: 100}
///     sources:
///       - {name: main, kind: postgres, url: "${env:ACME_DB_URL}", schemas: [public]}
///       - {name: app, kind: schema, format: sql, file: acme.sql, provision: true}
///     policies:
///       - {entity: posts, role: anon, action: read}
///     auth: {autoconfirm: true}
/// ```
struct StackFile {
    struct Tenant {
        var slug: String
        var line: Int
        var name: String?
        var status: String?
        /// Only the limits named here are managed; the others keep the node's values.
        var limits: JSONObject?
        /// nil: the file does not manage this tenant's sources.
        var sources: [Source]?
        var policies: [JSONValue]?
        var auth: JSONObject?
        /// Buckets, webhooks, scheduled jobs and functions, by kind (`StackFile.collections`); a
        /// kind the file leaves out is not managed.
        var items: [String: [Item]] = [:]
    }

    /// One named object of a collection, as the API that creates it takes it.
    struct Item {
        var name: String
        var line: Int
        var body: JSONObject
    }

    /// The named collections a tenant entry may hold, with the fields each takes.
    static let collections: [String: Set<String>] = [
        "buckets": ["name", "public", "file_size_limit", "allowed_mime_types"],
        "webhooks": ["name", "source", "schema", "table", "events", "filter", "url", "headers", "timeoutMs", "retrySchedule", "maxInFlight", "enabled"],
        "cron": ["name", "schedule", "timezone", "target", "retrySchedule", "enabled"],
        "functions": ["name", "file", "module", "language", "source", "verifyJwt", "timeoutMs", "memoryLimitMb", "env", "secrets", "serviceRole"],
    ]

    struct Source {
        var name: String
        var line: Int
        /// The admin API's registration body (`file` already read into `document`).
        var body: JSONObject
        var kind: String { body["kind"]?.stringValue ?? "" }
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    var stack: String
    var tenants: [Tenant]

    static let sourceKinds = ["postgres", "supabase", "schema", "sqlite", "openapi", "graphql", "mongodb"]
    /// The fields a source registration of each kind takes (as `POST …/sources` allows them),
    /// besides `name` and `kind`; `file` stands for `document`.
    static let sourceFieldsByKind: [String: Set<String>] = [
        "postgres": ["url", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"],
        "supabase": ["url", "serviceKey", "dbUrl", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements"],
        "schema": [
            "format", "document", "file", "url", "provision", "allowDestructive", "schemas", "maxConnections", "acquireTimeoutMs", "preparedStatements",
        ],
        "openapi": ["document", "file", "specUrl", "baseUrl", "headers"],
        "sqlite": ["path"],
        "mongodb": ["url", "database", "sampleSize", "collections", "relations", "maxConnections", "acquireTimeoutMs", "changeStreams"],
        "graphql": ["url", "headers"],
    ]
    static let sourceFields: Set<String> = sourceFieldsByKind.values.reduce(["name", "kind"]) { $0.union($1) }

    static func load(path: String, environment: [String: String]) throws -> StackFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Invalid(description: "\(path): cannot be read (\(error.localizedDescription))")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(text, name: path, directory: directory.isEmpty ? "." : directory, environment: environment)
    }

    static func parse(_ text: String, name: String, directory: String, environment: [String: String]) throws -> StackFile {
        let root: Yams.Node
        do {
            guard let composed = try Yams.compose(yaml: text) else { throw Invalid(description: "\(name): the file is empty") }
            root = composed
        } catch let error as YamlError {
            throw Invalid(description: "\(name): not valid YAML: \(Self.describe(error))")
        }
        let reader = Reader(file: name, directory: directory, environment: environment)
        return try reader.stack(root)
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "line \(mark.line): \(problem)"
        default:
            return "\(error)"
        }
    }

    /// Turns YAML nodes into the admin API's JSON, checking as it goes.
    struct Reader {
        let file: String
        let directory: String
        let environment: [String: String]

        func fail(_ node: Yams.Node?, _ message: String) -> Invalid {
            Invalid(description: "\(file):\(node?.mark.map { "\($0.line)" } ?? "?"): \(message)")
        }

        func stack(_ root: Yams.Node) throws -> StackFile {
            let fields = try mapping(root, allowed: ["stack", "tenants"], what: "the file")
            let stack = try fields["stack"].map { try string($0, "stack") } ?? "default"
            guard stack.wholeMatch(of: /^[a-z0-9][a-z0-9_-]{0,62}$/) != nil else {
                throw fail(fields["stack"], "stack '\(stack)' must be 1-63 characters of a-z, 0-9, '_' and '-'")
            }
            guard let list = fields["tenants"] else { throw fail(root, "'tenants' is missing (a list of tenants)") }
            var tenants: [Tenant] = []
            var seen: [String: Int] = [:]
            for node in try sequence(list, "tenants") {
                let tenant = try self.tenant(node)
                if let first = seen[tenant.slug] {
                    throw fail(node, "duplicate tenant slug '\(tenant.slug)' (first at line \(first))")
                }
                seen[tenant.slug] = tenant.line
                tenants.append(tenant)
            }
            return StackFile(stack: stack, tenants: tenants)
        }

        func tenant(_ node: Yams.Node) throws -> Tenant {
            let fields = try mapping(
                node, allowed: Set(["slug", "name", "status", "limits", "sources", "policies", "auth"]).union(StackFile.collections.keys), what: "a tenant")
            guard let slugNode = fields["slug"] else { throw fail(node, "a tenant needs a 'slug'") }
            let slug = try string(slugNode, "slug")
            guard Tenancy.Slug.isValid(slug) else {
                throw fail(slugNode, "slug '\(slug)' is not valid: 3-40 characters of a-z, 0-9 and '-', starting with a letter")
            }
            var tenant = Tenant(slug: slug, line: node.mark?.line ?? 0)
            tenant.name = try fields["name"].map { try string($0, "name") }
            if let status = fields["status"] {
                let value = try string(status, "status")
                guard ["active", "disabled"].contains(value) else { throw fail(status, "status must be 'active' or 'disabled'") }
                tenant.status = value
            }
            if let limits = fields["limits"] {
                guard case .object(let object) = try json(limits), !object.isEmpty else { throw fail(limits, "limits must be a mapping") }
                try checkLimits(limits, shape: TenantAdminAPI.limitsJSON(.default), path: "limits")
                tenant.limits = object
            }
            if let sources = fields["sources"] {
                var list: [Source] = []
                var seen: [String: Int] = [:]
                for entry in try sequence(sources, "sources") {
                    let source = try self.source(entry)
                    if let first = seen[source.name] { throw fail(entry, "duplicate source name '\(source.name)' (first at line \(first))") }
                    seen[source.name] = source.line
                    list.append(source)
                }
                tenant.sources = list
            }
            if let policies = fields["policies"] {
                guard case .array(let rules) = try json(policies) else { throw fail(policies, "policies must be a list of rules") }
                for (index, rule) in rules.enumerated() where rule.objectValue == nil {
                    throw fail(try sequence(policies, "policies")[index], "each policy must be a mapping (entity, role, action …)")
                }
                tenant.policies = rules
            }
            if let auth = fields["auth"] {
                guard case .object(let object) = try json(auth) else { throw fail(auth, "auth must be a mapping") }
                tenant.auth = object
            }
            for (kind, allowed) in StackFile.collections {
                guard let list = fields[kind] else { continue }
                var items: [Item] = []
                var seen: [String: Int] = [:]
                for entry in try sequence(list, kind) {
                    let item = try self.item(entry, kind: kind, allowed: allowed)
                    if let first = seen[item.name] { throw fail(entry, "duplicate name '\(item.name)' in \(kind) (first at line \(first))") }
                    seen[item.name] = item.line
                    items.append(item)
                }
                tenant.items[kind] = items
            }
            return tenant
        }

        /// Limits are checked here, names and types, so that a typo fails before anything is applied.
        func checkLimits(_ node: Yams.Node, shape: JSONValue, path: String) throws {
            guard case .object(let allowed) = shape else {
                guard case .scalar = node, (try json(node)).doubleValue != nil else { throw fail(node, "\(path) must be a number") }
                return
            }
            let fields = try mapping(node, allowed: Set(allowed.keys), what: path)
            for (key, child) in fields { try checkLimits(child, shape: allowed[key] ?? .null, path: "\(path).\(key)") }
        }

        func item(_ node: Yams.Node, kind: String, allowed: Set<String>) throws -> Item {
            let fields = try mapping(node, allowed: allowed, what: "an entry of \(kind)")
            guard let nameNode = fields["name"] else { throw fail(node, "an entry of \(kind) needs a 'name'") }
            let name = try string(nameNode, "name")
            guard case .object(var body) = try json(node) else { throw fail(node, "an entry of \(kind) must be a mapping") }
            if kind == "functions" {
                // A WebAssembly module (sent base64) or JavaScript source (`.js`/`.mjs`) from a file
                // beside the stack file, as the API takes them.
                if let fileNode = fields["file"] {
                    guard fields["module"] == nil && fields["source"] == nil else {
                        throw fail(fileNode, "give one of 'file', 'module' or 'source'")
                    }
                    let relative = try string(fileNode, "file")
                    let path = relative.hasPrefix("/") ? relative : directory + "/" + relative
                    guard let bytes = FileManager.default.contents(atPath: path) else {
                        throw fail(fileNode, "cannot read '\(relative)' (relative to the stack file)")
                    }
                    body["file"] = nil
                    if relative.hasSuffix(".js") || relative.hasSuffix(".mjs") || body["language"]?.stringValue == "javascript" {
                        guard let text = String(data: bytes, encoding: .utf8) else { throw fail(fileNode, "'\(relative)' is not UTF-8 text") }
                        body["language"] = "javascript"
                        body["source"] = .string(text)
                    } else {
                        body["module"] = .string(bytes.base64EncodedString())
                    }
                } else if fields["module"] == nil && fields["source"] == nil {
                    throw fail(node, "function '\(name)' needs a 'file' (.wasm or .js), a base64 'module' or a JavaScript 'source'")
                }
                if fields["source"] != nil && body["language"] == nil { body["language"] = "javascript" }
            }
            return Item(name: name, line: node.mark?.line ?? 0, body: body)
        }

        func source(_ node: Yams.Node) throws -> Source {
            let fields = try mapping(node, allowed: StackFile.sourceFields, what: "a source")
            guard let nameNode = fields["name"] else { throw fail(node, "a source needs a 'name'") }
            let name = try string(nameNode, "name")
            guard name.wholeMatch(of: /^[a-z][a-z0-9_-]{0,62}$/) != nil else {
                throw fail(nameNode, "source name '\(name)' must match ^[a-z][a-z0-9_-]{0,62}$")
            }
            guard let kindNode = fields["kind"] else { throw fail(node, "source '\(name)' needs a 'kind'") }
            let kind = try string(kindNode, "kind")
            guard StackFile.sourceKinds.contains(kind) else {
                throw fail(kindNode, "kind '\(kind)' is not one of \(StackFile.sourceKinds.joined(separator: ", "))")
            }
            let allowed = (StackFile.sourceFieldsByKind[kind] ?? []).union(["name", "kind"])
            _ = try mapping(node, allowed: allowed, what: "a \(kind) source")
            guard case .object(var body) = try json(node) else { throw fail(node, "a source must be a mapping") }
            if let fileNode = fields["file"] {
                guard fields["document"] == nil else { throw fail(fileNode, "give either 'file' or 'document', not both") }
                let relative = try string(fileNode, "file")
                let path = relative.hasPrefix("/") ? relative : directory + "/" + relative
                guard let document = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw fail(fileNode, "cannot read '\(relative)' (relative to the stack file)")
                }
                body["file"] = nil
                body["document"] = .string(document)
            }
            return Source(name: name, line: node.mark?.line ?? 0, body: body)
        }

        // MARK: Nodes

        func mapping(_ node: Yams.Node, allowed: Set<String>, what: String) throws -> [String: Yams.Node] {
            guard case .mapping(let mapping) = node else { throw fail(node, "\(what) must be a mapping") }
            var fields: [String: Yams.Node] = [:]
            for (keyNode, value) in mapping {
                guard case .scalar(let key) = keyNode else { throw fail(keyNode, "keys must be plain names") }
                guard allowed.contains(key.string) else {
                    throw fail(keyNode, "unknown key '\(key.string)' in \(what) (allowed: \(allowed.sorted().joined(separator: ", ")))")
                }
                guard fields[key.string] == nil else { throw fail(keyNode, "duplicate key '\(key.string)'") }
                fields[key.string] = value
            }
            return fields
        }

        func sequence(_ node: Yams.Node, _ name: String) throws -> [Yams.Node] {
            guard case .sequence(let sequence) = node else { throw fail(node, "'\(name)' must be a list") }
            return Array(sequence)
        }

        func string(_ node: Yams.Node, _ name: String) throws -> String {
            guard case .string(let text) = try json(node) else { throw fail(node, "'\(name)' must be a string") }
            return text
        }

        /// YAML as JSON with `${env:NAME}` expanded in strings; duplicate keys refused at any depth.
        func json(_ node: Yams.Node) throws -> JSONValue {
            switch node {
            case .scalar(let scalar):
                switch Tag.Name(rawValue: node.tag.description) {
                case Tag.Name.null: return .null
                case Tag.Name.bool:
                    // YAML 1.2's booleans only: `on`, `off`, `yes` and `no` stay strings (`changeStreams: off`).
                    switch scalar.string.lowercased() {
                    case "true": return .bool(true)
                    case "false": return .bool(false)
                    default: return .string(try expand(scalar.string, at: node))
                    }
                case Tag.Name.int:
                    guard let value = node.int else { throw fail(node, "'\(scalar.string)' is too large an integer") }
                    return .integer(Int64(value))
                case Tag.Name.float:
                    guard let value = node.float, value.isFinite else { throw fail(node, "'\(scalar.string)' is not a finite number") }
                    return .number(value)
                default: return .string(try expand(scalar.string, at: node))
                }
            case .sequence(let sequence):
                return .array(try sequence.map(json))
            case .mapping(let mapping):
                var object = JSONObject()
                for (keyNode, value) in mapping {
                    guard case .scalar(let key) = keyNode else { throw fail(keyNode, "keys must be plain names") }
                    guard object[key.string] == nil else { throw fail(keyNode, "duplicate key '\(key.string)'") }
                    object[key.string] = try json(value)
                }
                return .object(object)
            }
        }

        /// `${env:NAME}` → the variable's value; an unset one is an error naming it and its line.
        func expand(_ text: String, at node: Yams.Node) throws -> String {
            guard text.contains("${") else { return text }
            var output = ""
            var rest = Substring(text)
            while let start = rest.range(of: "${") {
                output += rest[..<start.lowerBound]
                guard let end = rest[start.upperBound...].firstIndex(of: "}") else { throw fail(node, "unterminated '${' in a string") }
                let reference = rest[start.upperBound..<end]
                guard reference.hasPrefix("env:"), reference.count > 4 else {
                    throw fail(node, "'${\(reference)}' is not a reference the file can make: write ${env:NAME}")
                }
                let name = String(reference.dropFirst(4))
                guard let value = environment[name] else { throw fail(node, "environment variable \(name) is not set (${env:\(name)})") }
                output += value
                rest = rest[rest.index(after: end)...]
            }
            return output + rest
        }
    }
}
