import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Runtime
import XCTest

/// The real `minibaas` executable, started as its own process on a free port.
final class NodeProcess: @unchecked Sendable {
    static var binary: String {
        if let given = ProcessInfo.processInfo.environment["MINIBAAS_BIN"] { return given }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/minibaas").path
    }

    let process = Process()
    private let lock = Lock()
    private var stdoutText = ""
    private var stderrText = ""
    private(set) var port = 0

    var output: String { lock.withLock { stdoutText } }
    var errors: String { lock.withLock { stderrText } }

    /// Environment without anything from the developer's shell that would change the mode.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MINIBAAS_") && $0.key != "DATABASE_URL" && $0.key != "REDIS_URL" }
        env["MINIBAAS_LOG_LEVEL"] = "warning"
        for (key, value) in extra { env[key] = value }
        return env
    }

    init(arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.environment = Self.environment(environment)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stdoutText += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    /// Starts `minibaas serve` and waits until it listens.
    static func serve(dataDir: String?, environment: [String: String] = [:]) async throws -> NodeProcess {
        var arguments = ["serve", "--host", "127.0.0.1", "--port", "0"]
        if let dataDir { arguments += ["--data-dir", dataDir] }
        let node = try NodeProcess(arguments: arguments, environment: environment)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let range = node.output.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let text = node.output[range]
                node.port = Int(text.split(separator: ":").last ?? "") ?? 0
                return node
            }
            if !node.process.isRunning {
                throw NodeFailed(description: "node exited with \(node.process.terminationStatus): \(node.errors)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        node.process.terminate()
        throw NodeFailed(description: "node did not start listening: \(node.output) \(node.errors)")
    }

    struct NodeFailed: Error, CustomStringConvertible { let description: String }

    /// Sends `signal` and waits for the process to end; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) async -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        return await waitForExit(timeout: timeout)
    }

    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return -1
        }
        return process.terminationStatus
    }

    func matches(_ pattern: String) -> String? {
        guard let range = output.range(of: pattern, options: .regularExpression) else { return nil }
        return String(output[range])
    }

    // MARK: - HTTP

    func call(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], json: JSONValue? = nil) async throws -> (HTTPResponse.Status, JSONValue?) {
        let port = self.port
        return try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            var headers = headers
            if json != nil { headers[.contentType] = "application/json" }
            let response = try await client.execute(.init(
                path, method: method, authority: "127.0.0.1:\(port)", headers: headers, body: json.map { ByteBuffer(bytes: $0.encoded()) }))
            let body = response.body ?? ByteBuffer()
            return (response.status, body.readableBytes == 0 ? nil : try? JSONValue.parse(body.readableBytesView))
        }
    }
}

extension HTTPField.Name {
    static let apikey = HTTPField.Name("apikey")!
}
