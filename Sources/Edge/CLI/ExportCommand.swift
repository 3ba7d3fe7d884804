import ArgumentParser
import Foundation
import Runtime
import Yams

/// `minibaas export [-o stack.yaml] [--stack NAME]`: the node's tenants as a stack file that
/// `apply` accepts. Secrets never leave the node: connection strings, service keys, SMTP and OIDC
/// secrets become `${env:NAME}` references, listed on stderr. Uploaded schemas are written as
/// `file:` references: the node keeps the model it built, not the uploaded text.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write the node's tenants as a stack file for apply.")

    @Option(help: "The node's base URL.") var url = "http://127.0.0.1:8080"
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?
    @Option(help: "The stack name to put in the file.") var stack = "default"
    @Option(name: .customLong("tenant"), help: "Export only these tenants (repeatable).") var tenants: [String] = []

    func run() async throws {
        try await runAdmin {
            let client = try AdminClient(url: url)
            var references: [String] = []
            var exported: [JSONValue] = []
            for tenant in try await client.call(.GET, "/tenants").arrayValue ?? [] {
                guard let slug = tenant["slug"]?.stringValue, tenants.isEmpty || tenants.contains(slug) else { continue }
                exported.append(try await Self.tenant(tenant, slug: slug, client: client, references: &references))
            }
            let document: JSONValue = ["stack": .string(stack), "tenants": .array(exported)]
            let yaml = try Yams.serialize(node: Self.node(document), sortKeys: false)
            if let output {
                do {
                    try yaml.write(toFile: output, atomically: true, encoding: .utf8)
                } catch {
                    throw AdminClient.Failure(code: 1, description: "cannot write \(output): \(error.localizedDescription)")
                }
                print("wrote \(exported.count) tenants to \(output)")
            } else {
                print(yaml, terminator: "")
            }
            if !references.isEmpty {
                FileHandle.standardError.write(Data(("set these before applying it:\n" + references.map { "  \($0)\n" }.joined()).utf8))
            }
        }
    }

    static func tenant(_ tenant: JSONValue, slug: String, client: AdminClient, references: inout [String]) async throws -> JSONValue {
        var object: JSONObject = ["slug": .string(slug)]
        object["name"] = tenant["name"]
        object["status"] = tenant["status"]
        object["limits"] = tenant["limits"]
        var sources: [JSONValue] = []
        for source in try await client.call(.GET, "/tenants/\(slug)/sources").arrayValue ?? [] {
            guard let live = source.objectValue, let name = live["name"]?.stringValue, let kind = live["kind"]?.stringValue else { continue }
            var entry: JSONObject = ["name": .string(name), "kind": .string(kind)]
            // Only what a registration of this kind takes: the listing adds counts (entities,
            // relations, functions) and connection details (host, database …) beside them.
            let fields = StackFile.sourceFieldsByKind[kind] ?? []
            for key in live.keys where fields.contains(key) {
                if key == "relations" && live[key]?.objectValue == nil && live[key]?.arrayValue == nil { continue }
                entry[key] = live[key]
            }
            if kind == "supabase", let project = live["projectUrl"] { entry["url"] = project }
            // The node keeps these sealed and never lists them: each becomes a reference to set.
            for secret in Self.sealedFields[kind] ?? [] where entry[secret] == nil || secret == "url" {
                let variable = environmentName(slug, name, secret)
                entry[secret] = .string("${env:\(variable)}")
                references.append("\(variable)  (\(secret) of source \(name) of \(slug))")
            }
            if kind == "schema" {
                let format = live["format"]?.stringValue ?? "sql"
                let file = "\(slug)-\(name).\(format == "jsonschema" || format == "openapi" ? "json" : format)"
                entry["document"] = nil
                entry["file"] = .string(file)
                references.append("\(file)  (the uploaded \(format) schema of source \(name) of \(slug), beside the stack file)")
            }
            sources.append(.object(entry))
        }
        object["sources"] = .array(sources)
        object["policies"] = try await client.call(.GET, "/tenants/\(slug)/policies")["policies"] ?? []
        if case .object(var auth) = try await client.call(.GET, "/tenants/\(slug)/auth") {
            if case .object(var smtp)? = auth["smtp"] {
                if smtp["passwordSet"]?.boolValue == true {
                    let variable = environmentName(slug, "smtp", "password")
                    smtp["password"] = .string("${env:\(variable)}")
                    references.append("\(variable)  (SMTP password of \(slug))")
                }
                smtp["passwordSet"] = nil
                auth["smtp"] = .object(smtp)
            }
            if case .array(let providers)? = auth["providers"] {
                auth["providers"] = .array(providers.map { provider in
                    guard case .object(var fields) = provider else { return provider }
                    if fields["clientSecretSet"]?.boolValue == true, let name = fields["name"]?.stringValue {
                        let variable = environmentName(slug, name, "client_secret")
                        fields["clientSecret"] = .string("${env:\(variable)}")
                        references.append("\(variable)  (OIDC client secret of \(name) for \(slug))")
                    }
                    fields["clientSecretSet"] = nil
                    return .object(fields)
                })
            }
            for key in auth.keys where auth[key] == .null { auth[key] = nil }
            for key in auth.keys where !["autoconfirm", "siteUrl", "smtp", "providers", "accessTokenTtl", "refreshTokenReuseInterval"].contains(key) {
                auth[key] = nil
            }
            object["auth"] = .object(auth)
        }
        return .object(object)
    }

    /// The registration fields each kind seals (connection strings and keys).
    static let sealedFields: [String: [String]] = [
        "postgres": ["url"], "mongodb": ["url"], "graphql": ["url"], "supabase": ["serviceKey", "dbUrl"], "schema": [],
    ]

    static func environmentName(_ parts: String...) -> String {
        parts.joined(separator: "_").uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// JSON as a YAML node, keeping the order of keys.
    static func node(_ value: JSONValue) -> Yams.Node {
        switch value {
        case .null: return Yams.Node("null", Tag(.null))
        case .bool(let flag): return Yams.Node(flag ? "true" : "false", Tag(.bool))
        case .integer(let number): return Yams.Node(String(number), Tag(.int))
        case .number(let number): return Yams.Node(String(number), Tag(.float))
        case .string(let text):
            if text.contains("\n") { return Yams.Node(text, Tag(.str), .literal) }
            // A string that would read back as a number, boolean or null (`2024`, `off`, `~`) is quoted.
            let plain = Yams.Node(text)
            return Yams.Node(text, Tag(.str), plain.tag.description == Tag.Name.str.rawValue ? .any : .doubleQuoted)
        case .array(let items): return Yams.Node(items.map(node))
        case .object(let object): return Yams.Node(object.map { (Yams.Node($0.key), node($0.value)) })
        }
    }
}
