import ArgumentParser
import Foundation
import Runtime

/// `minibaas apply -f stack.yaml [--dry-run] [--prune]`: converges a node to a declarative file.
/// Prints the plan (Terraform's symbols and summary line), applies it change by change, and
/// records what it applied; a second run answers `No changes.`. A failed step stops the run,
/// says what was applied before it, and keeps that in the record, so the next run converges.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Make a node match a stack file (tenants, limits, sources, policies, auth).")

    @OptionGroup var options: AdminOptions
    @Option(name: .shortAndLong, help: "The stack file (YAML).") var file: String
    @Flag(name: .customLong("dry-run"), help: "Print the plan and change nothing.") var dryRun = false
    @Flag(help: "Also destroy tenants and sources this stack applied before and the file no longer names.") var prune = false

    func run() async throws {
        try await runAdmin {
            let stack: StackFile
            do {
                stack = try StackFile.load(path: file, environment: ProcessInfo.processInfo.environment)
            } catch let invalid as StackFile.Invalid {
                throw AdminClient.Failure(code: 1, description: "\(invalid.description); nothing was applied")
            }
            let client = try AdminClient(url: options.url)
            let plan = try await StackPlan.make(file: stack, client: client, prune: prune)
            if plan.changes.isEmpty {
                if plan.record != plan.recordBefore && !dryRun { try await plan.record.save(client: client) }
                if options.json { return CLIOutput.json(["changes": [], "add": 0, "change": 0, "destroy": 0]) }
                print("No changes. The node matches \(file).")
                return
            }
            if !options.json { Self.printPlan(plan) }
            if dryRun {
                if options.json { return CLIOutput.json(Self.json(plan, applied: [])) }
                print("\n--dry-run: nothing was changed.")
                return
            }
            var record = plan.record
            var applied: [String] = []
            for change in plan.changes {
                if !options.json { print("\(change.address): \(Self.progress(change.action))…") }
                do {
                    try await change.run(client)
                } catch {
                    try? await record.save(client: client)
                    let before = applied.isEmpty ? "nothing" : applied.joined(separator: ", ")
                    let reason = (error as? AdminClient.Failure)?.description ?? "\(error)"
                    throw AdminClient.Failure(code: 1, description: "\(change.address) failed: \(reason); applied before it: \(before)")
                }
                change.record(&record)
                applied.append("\(change.action.rawValue)\(change.address)")
            }
            try await record.save(client: client)
            if options.json { return CLIOutput.json(Self.json(plan, applied: applied)) }
            let counts = plan.counts
            print("\nApply complete! Resources: \(counts.add) added, \(counts.change) changed, \(counts.destroy) destroyed.")
        }
    }

    static func printPlan(_ plan: StackPlan) {
        print("minibaas will perform the following actions:\n")
        for change in plan.changes {
            print("  \(change.action.rawValue) \(change.address)")
            for detail in change.details { print("      \(detail)") }
        }
        print("\n\(plan.summary)")
    }

    static func progress(_ action: StackPlan.Action) -> String {
        switch action {
        case .create: "creating"
        case .update: "updating"
        case .replace: "replacing"
        case .destroy: "destroying"
        }
    }

    static func json(_ plan: StackPlan, applied: [String]) -> JSONValue {
        let counts = plan.counts
        return [
            "changes": .array(plan.changes.map { change in
                ["action": .string(change.action.rawValue), "address": .string(change.address), "details": .array(change.details.map(JSONValue.string))]
            }),
            "add": .integer(Int64(counts.add)), "change": .integer(Int64(counts.change)), "destroy": .integer(Int64(counts.destroy)),
            "applied": .array(applied.map(JSONValue.string)),
        ]
    }
}
