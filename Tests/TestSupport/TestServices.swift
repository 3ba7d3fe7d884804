import Foundation
import Logging
import PostgresNIO
import Tenancy

/// The services `scripts/test` starts for the suite. Tests that need one fail — never skip —
/// when it is missing, so a green run always means they ran.
public enum TestServices {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    public static func postgresURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["MINIBAAS_TEST_DATABASE_URL"], !url.isEmpty else {
            throw Missing(description: "MINIBAAS_TEST_DATABASE_URL is not set: run the suite with ./scripts/test, which starts PostgreSQL")
        }
        return url
    }

    /// A new, empty database on the test server, so tests never see each other's rows.
    public static func freshDatabase(prefix: String = "t") async throws -> String {
        let admin = try PostgresURL(try postgresURL())
        let name = "\(prefix)_\(UInt64.random(in: 0...UInt64.max))"
        try await withClient(admin) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""))
        }
        return "postgresql://\(admin.username)@\(admin.host):\(admin.port)/\(name)?sslmode=disable"
    }

    /// Runs `body` with a connected client, then shuts it down.
    public static func withClient<T: Sendable>(
        _ url: PostgresURL, _ body: @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: url.clientConfiguration(), backgroundLogger: Logger(label: "test"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    public static var workDirectory: String {
        ProcessInfo.processInfo.environment["MINIBAAS_TEST_WORKDIR"] ?? NSTemporaryDirectory()
    }

    public static func temporaryDirectory() throws -> String {
        let path = workDirectory + "/tmp-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func waitUntil(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

extension TestServices {
    /// Runs a SQL script with psql (scripts hold several statements and dollar-quoted bodies,
    /// which the extended protocol does not take).
    public static func runScript(_ path: String, database url: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", path]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw Missing(description: "psql failed on \(path): \(text)")
        }
    }

    /// The first column of the first row of `sql`, as text.
    public static func scalar(_ sql: String, database url: String) async throws -> String? {
        try await withClient(try PostgresURL(url)) { client in
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql))
            for try await value in rows.decode(String?.self) { return value }
            return nil
        }
    }

    /// Where the shared conformance data lives: `../shared/conformance` when present, else the copy
    /// kept with the tests.
    public static func conformanceDirectory(file: String = #filePath) -> String {
        let root = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/conformance").path
        if FileManager.default.fileExists(atPath: shared + "/rest-cases.json") { return shared }
        return root.appendingPathComponent("Tests/Fixtures/conformance").path
    }
}
