import ArgumentParser
import Foundation
import Runtime

/// Options every admin subcommand takes.
struct AdminOptions: ParsableArguments {
    @Option(help: "The node's base URL.") var url = "http://127.0.0.1:8080"
    @Flag(help: "Print the node's JSON instead of a table.") var json = false
}

/// Runs an admin action, turning failures into one stderr line and the contract's exit code.
func runAdmin(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as AdminClient.Failure {
        FileHandle.standardError.write(Data("minibaas: \(failure.description)\n".utf8))
        throw ExitCode(failure.code)
    }
}

/// A DELETE after confirmation (or `--yes`): prints `answer` with `--json`, else what was done.
func runDestructive(
    _ options: AdminOptions, _ what: String, typing expected: String, yes: Bool, path: String, answer: JSONObject, done: String
) async throws {
    try await runAdmin {
        let client = try AdminClient(url: options.url)
        try Confirmation.confirm(what, typing: expected, yes: yes)
        _ = try await client.call(.DELETE, path)
        if options.json { return CLIOutput.json(.object(answer)) }
        print(done)
    }
}

struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "List, create, show and delete tenants.", subcommands: [List.self, Create.self, Get.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenants.")
        @OptionGroup var options: AdminOptions

        func run() async throws {
            try await runAdmin {
                let tenants = try await AdminClient(url: options.url).call(.GET, "/tenants")
                if options.json { return CLIOutput.json(tenants) }
                CLIOutput.table(
                    ["SLUG", "NAME", "STATUS", "CREATED", "API URL"],
                    (tenants.arrayValue ?? []).map { tenant in
                        ["slug", "name", "status", "createdAt", "apiUrl"].map { CLIOutput.text(tenant[$0]) }
                    })
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant; its keys are printed once.")
        @OptionGroup var options: AdminOptions
        @Argument(help: "The tenant's slug (a-z, 0-9, '-').") var slug: String
        @Option(help: "A display name (default: the slug).") var name: String?

        func run() async throws {
            try await runAdmin {
                let created = try await AdminClient(url: options.url).call(.POST, "/tenants", body: ["slug": .string(slug), "name": .string(name ?? slug)])
                if options.json { return CLIOutput.json(created) }
                print("created tenant \(slug)")
                for field in ["apiUrl", "anonKey", "serviceKey"] { print("  \(field): \(CLIOutput.text(created[field]))") }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a tenant and its limits.")
        @OptionGroup var options: AdminOptions
        @Argument var slug: String

        func run() async throws {
            try await runAdmin {
                let tenant = try await AdminClient(url: options.url).call(.GET, "/tenants/\(slug)")
                if options.json { return CLIOutput.json(tenant) }
                for field in ["slug", "name", "status", "createdAt", "apiUrl"] { print("\(field): \(CLIOutput.text(tenant[field]))") }
                for (name, value) in tenant["limits"]?.objectValue ?? [:] { print("limits.\(name): \(CLIOutput.text(value))") }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a tenant and everything it holds.")
        @OptionGroup var options: AdminOptions
        @Argument var slug: String
        @Flag(help: "Do not ask for confirmation.") var yes = false

        func run() async throws {
            try await runDestructive(
                options, "delete tenant \(slug)", typing: slug, yes: yes, path: "/tenants/\(slug)", answer: ["slug": .string(slug), "deleted": true],
                done: "deleted tenant \(slug)")
        }
    }
}
