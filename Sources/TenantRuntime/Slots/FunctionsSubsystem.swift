import Foundation
import Functions
import NIOConcurrencyHelpers
import Runtime
import Tenancy

/// The tenant's edge functions (contract ../shared/contracts/functions.md): parsed modules cached
/// by version (parsing is milliseconds; a call is microseconds), the tenant's turn at the node's
/// function threads (`limits.functions.maxConcurrent` running, `maxQueued` waiting, else 503
/// MB875), and a log of recent calls per function kept on the owner. Calls run on the node's
/// `FunctionRunner`, never on the event loops.
public final class FunctionsSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    let limits: @Sendable () -> FunctionLimits
    private let gate: ConcurrencyLimiter
    private let modules = NIOLockedValueBox<[String: FunctionModule]>([:])
    private let logs = NIOLockedValueBox<[String: [FunctionLogEntry]]>([:])
    static let cachedModules = 32
    static let logEntries = 1_000

    init(supervisor: SubsystemSupervisor, limits: @escaping @Sendable () -> FunctionLimits) {
        self.supervisor = supervisor
        self.limits = limits
        let current = limits()
        self.gate = ConcurrencyLimiter(maxConcurrent: current.maxConcurrent, maxQueued: current.maxQueued)
    }

    /// The parsed module of a version, parsed once.
    public func module(_ version: FunctionVersionRecord, memoryLimitBytes: Int) throws(FunctionError) -> FunctionModule {
        let key = "\(version.name)@\(version.version)@\(version.sha256)"
        if let cached = modules.withLockedValue({ $0[key] }) { return cached }
        let parsed = try FunctionModule(bytes: version.module, maxBytes: .max, memoryLimitBytes: memoryLimitBytes)
        modules.withLockedValue { modules in
            if modules.count >= Self.cachedModules { modules.removeAll() }
            modules[key] = parsed
        }
        return parsed
    }

    /// Runs a call in the tenant's turn; 503 MB875 when its queue is full.
    public func invoke(_ module: FunctionModule, _ invocation: Invocation, runner: FunctionRunner) async throws -> InvocationOutcome {
        do {
            try await gate.acquire(within: .milliseconds(invocation.timeoutMs))
        } catch {
            throw FunctionError(status: 503, code: "MB875", message: "the tenant's functions are all busy and their queue is full", details: nil)
        }
        defer { gate.release() }
        return try await runner.run(module, invocation)
    }

    public func record(_ entry: FunctionLogEntry) {
        logs.withLockedValue { logs in
            var entries = logs[entry.function] ?? []
            entries.append(entry)
            if entries.count > Self.logEntries { entries.removeFirst(entries.count - Self.logEntries) }
            logs[entry.function] = entries
        }
    }

    /// Newest first.
    public func logs(of function: String, since: Date?, limit: Int) -> [FunctionLogEntry] {
        let entries = logs.withLockedValue { $0[function] ?? [] }
        return Array(entries.reversed().filter { since == nil || $0.at >= since! }.prefix(limit))
    }

    public func forget(_ function: String) {
        logs.withLockedValue { $0[function] = nil }
        modules.withLockedValue { modules in modules = modules.filter { !$0.key.hasPrefix(function + "@") } }
    }

    public var cachedModuleCount: Int { modules.withLockedValue { $0.count } }
}

/// One call as the function's log keeps it (no secrets, no bodies).
public struct FunctionLogEntry: Sendable {
    public var requestID: String
    public var at: Date
    public var function: String
    public var version: Int
    public var method: String
    public var path: String
    public var status: Int
    public var code: String?
    public var durationMs: Double
    public var queueMs: Double
    public var fuel: UInt64
    public var memoryBytes: Int
    public var stderr: String

    public init(
        requestID: String, at: Date, function: String, version: Int, method: String, path: String, status: Int, code: String?, durationMs: Double,
        queueMs: Double, fuel: UInt64, memoryBytes: Int, stderr: String
    ) {
        self.requestID = requestID
        self.at = at
        self.function = function
        self.version = version
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.durationMs = durationMs
        self.queueMs = queueMs
        self.fuel = fuel
        self.memoryBytes = memoryBytes
        self.stderr = stderr
    }
}
