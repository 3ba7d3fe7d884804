import ArgumentParser
import Connectors
import Foundation
import Logging
import NIOCore
import NIOPosix

@main
struct MiniBaasCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "minibaas",
        abstract: "A multi-tenant Backend-as-a-Service runtime.",
        discussion: "With no DATABASE_URL it runs a single embedded node; with DATABASE_URL (and REDIS_URL) it is a cluster node.",
        version: version,
        subcommands: [
            Serve.self, TenantsCommand.self, SourcesCommand.self, KeysCommand.self, StatusCommand.self, ApplyCommand.self, ExportCommand.self,
            Version.self,
        ],
        defaultSubcommand: Serve.self)

    /// Before anything else runs, on the main thread, as NIO requires: unless
    /// `MINIBAAS_TASK_EXECUTOR=global`, Swift tasks run on NIO's event loops instead of a separate
    /// pool, so a request no longer hops threads between its socket and its handler
    /// (Benchmarks/rest: about a sixth less CPU per request). Heavy CPU work is `offloaded` to
    /// NIO's blocking pool. A bad value is reported by the configuration check.
    @MainActor
    static func main() async {
        MongoLibrary.releaseCounterFile()
        if (try? NodeConfiguration.tasksOnEventLoops(ProcessInfo.processInfo.environment["MINIBAAS_TASK_EXECUTOR"])) ?? true,
            !NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        {
            FileHandle.standardError.write(Data("minibaas: tasks stay on Swift's global pool (this platform refused event loops)\n".utf8))
        }
        // Usage errors exit 2 with one line (the operators' contract), not ArgumentParser's 64
        // and a page of help; everything else as ArgumentParser would.
        do {
            var command = try parseAsRoot(nil)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data("minibaas: \(message(for: error)) (see 'minibaas help')\n".utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a node.")

    @Option(help: "Address to listen on (env MINIBAAS_HOST).") var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (env MINIBAAS_PORT or PORT).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Where the embedded node keeps its files (env MINIBAAS_DATA_DIR).")
    var dataDir: String?

    func run() async throws {
        let configuration: NodeConfiguration
        do {
            configuration = try NodeConfiguration.resolve(
                host: host, port: port, dataDir: dataDir, environment: ProcessInfo.processInfo.environment)
        } catch {
            FileHandle.standardError.write(Data("minibaas: configuration error: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level) }
        do {
            try await Node.run(configuration) { line in
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch let error as Node.StartupError {
            FileHandle.standardError.write(Data("minibaas: cannot start: \(error)\n".utf8))
            throw ExitCode(1)
        } catch {
            FileHandle.standardError.write(Data("minibaas: stopped with an error: \(Node.describe(error))\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() {
        print("minibaas \(MiniBaasCommand.version)")
    }
}
