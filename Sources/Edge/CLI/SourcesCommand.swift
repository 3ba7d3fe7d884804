import ArgumentParser
import Foundation
import Runtime

struct SourcesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sources", abstract: "Register, list, refresh and remove a tenant's data sources.",
        subcommands: [Add.self, List.self, Refresh.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a PostgreSQL database (introspected) as a source.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "The tenant's slug.") var tenant: String
        @Argument(help: "The source's name.") var name: String
        @Option(name: .customLong("db-url"), help: "postgresql://user:password@host:port/database") var dbURL: String
        @Option(name: .customLong("schema"), help: "A schema to expose (repeatable; default: public).") var schemas: [String] = []
        @Option(help: "The source's kind.") var kind = "postgres"

        func run() async throws {
            try await runAdmin {
                let client = try AdminClient(url: options.url)
                var body: JSONObject = ["name": .string(name), "kind": .string(kind), "url": .string(dbURL)]
                if !schemas.isEmpty { body["schemas"] = .array(schemas.map(JSONValue.string)) }
                // Introspection of a large schema takes a while: say what is happening.
                if !options.json { FileHandle.standardError.write(Data("introspecting \(CLIOutput.redacted(dbURL)) …\n".utf8)) }
                let registered = try await client.call(.POST, "/tenants/\(tenant)/sources", body: .object(body))
                if options.json { return CLIOutput.json(registered) }
                let entities = registered["entities"]?.arrayValue?.map(CLIOutput.text) ?? []
                print("registered \(name) (\(kind)): \(entities.count) entities")
                for entity in entities { print("  \(entity)") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a tenant's sources (connection strings without passwords).")
        @OptionGroup var options: AdminOptions
        @Argument var tenant: String

        func run() async throws {
            try await runAdmin {
                let sources = try await AdminClient(url: options.url).call(.GET, "/tenants/\(tenant)/sources")
                let redacted = JSONValue.array((sources.arrayValue ?? []).map { source in
                    guard var object = source.objectValue else { return source }
                    if let url = object["url"]?.stringValue { object["url"] = .string(CLIOutput.redacted(url)) }
                    return .object(object)
                })
                if options.json { return CLIOutput.json(redacted) }
                CLIOutput.table(
                    ["NAME", "KIND", "ENTITIES", "RELATIONS", "FUNCTIONS", "URL"],
                    (redacted.arrayValue ?? []).map { source in
                        ["name", "kind", "entities", "relations", "functions", "url"].map { CLIOutput.text(source[$0]) }
                    })
            }
        }
    }

    struct Refresh: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Introspect a source again.")
        @OptionGroup var options: AdminOptions
        @Argument var tenant: String
        @Argument var name: String

        func run() async throws {
            try await runAdmin {
                let client = try AdminClient(url: options.url)
                if !options.json { FileHandle.standardError.write(Data("introspecting \(name) …\n".utf8)) }
                let refreshed = try await client.call(.POST, "/tenants/\(tenant)/sources/\(name)/refresh", body: [:])
                if options.json { return CLIOutput.json(refreshed) }
                print("refreshed \(name): \(refreshed["entities"]?.arrayValue?.count ?? 0) entities")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a source (its hosted tables with it).")
        @OptionGroup var options: AdminOptions
        @Argument var tenant: String
        @Argument var name: String
        @Flag(help: "Do not ask for confirmation.") var yes = false

        func run() async throws {
            try await runDestructive(
                options, "remove source \(name) of \(tenant)", typing: name, yes: yes, path: "/tenants/\(tenant)/sources/\(name)",
                answer: ["name": .string(name), "removed": true], done: "removed source \(name)")
        }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Rotate a tenant's signing key.", subcommands: [Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new signing key and print the keys it signs; the old keys stay valid until revoked.")
        @OptionGroup var options: AdminOptions
        @Argument var tenant: String

        func run() async throws {
            try await runAdmin {
                let rotated = try await AdminClient(url: options.url).call(.POST, "/tenants/\(tenant)/keys/rotate", body: [:])
                if options.json { return CLIOutput.json(rotated) }
                print("new signing key \(CLIOutput.text(rotated["kid"]))")
                for field in ["anonKey", "serviceKey"] { print("  \(field): \(CLIOutput.text(rotated[field]))") }
            }
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "The node's supervisor tree and the cluster, summarised.")
    @OptionGroup var options: AdminOptions

    func run() async throws {
        try await runAdmin {
            let client = try AdminClient(url: options.url)
            let supervisor = try await client.call(.GET, "/supervisor")
            let cluster = try await client.call(.GET, "/cluster")
            if options.json { return CLIOutput.json(["supervisor": supervisor, "cluster": cluster]) }
            let node = supervisor["node"]
            print("node \(CLIOutput.text(node?["id"])) (\(CLIOutput.text(node?["mode"]))), up \(CLIOutput.text(node?["uptimeSeconds"])) s"
                + (node?["draining"]?.boolValue == true ? ", draining" : ""))
            let members = cluster["members"]?.arrayValue ?? []
            print("cluster: \(members.count) member(s) over \(CLIOutput.text(cluster["coordination"])), \(cluster["placements"]?.objectValue?.count ?? 0) placement(s)"
                + (cluster["coordinationReachable"]?.boolValue == false ? ", coordination UNREACHABLE" : ""))
            let tenants = supervisor["tenants"]?.arrayValue ?? []
            print("active tenants: \(tenants.count)")
            CLIOutput.table(
                ["TENANT", "STATUS", "SUBSYSTEMS", "CHILDREN", "NOT RUNNING"],
                tenants.map { tenant in
                    let subsystems = tenant["subsystems"]?.arrayValue ?? []
                    let children = subsystems.flatMap { $0["children"]?.arrayValue ?? [] }
                    let troubled = children.filter { $0["state"]?.stringValue != "running" }.map { CLIOutput.text($0["name"]) }
                    return [CLIOutput.text(tenant["slug"] ?? tenant["tenant"]), CLIOutput.text(tenant["status"]), String(subsystems.count),
                            String(children.count), troubled.isEmpty ? "-" : troubled.joined(separator: ",")]
                })
        }
    }
}
