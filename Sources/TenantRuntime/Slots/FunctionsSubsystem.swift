import Foundation
import Functions
import Metrics
import NIOConcurrencyHelpers
import Runtime
import Tenancy

/// The tenant's edge functions (contract ../shared/contracts/functions.md): parsed modules cached
/// by version in the node's `FunctionModuleCache` (bounded in bytes for all tenants), the tenant's turn at the node's
/// function threads (`limits.functions.maxConcurrent` running, `maxQueued` waiting, else 503
/// MB875), and a log of recent calls per function kept on the owner. Calls run on the node's
/// `FunctionRunner`, never on the event loops. Counted on `/metrics` and the supervisor endpoint.
public final class FunctionsSubsystem: TenantSubsystem {
    public let supervisor: SubsystemSupervisor
    let tenant: String
    let limits: @Sendable () -> FunctionLimits
    private let gate: ConcurrencyLimiter
    private let modules: FunctionModuleCache
    private let logs = NIOLockedValueBox<[String: LogRing]>([:])
    /// Each function's active version as last read, with its opened secrets and the keys it may
    /// see: a call does not read the control plane or open secrets again within `activeTTL`
    /// (deploys on this node forget it at once; elsewhere it is at most that stale).
    private let active = NIOLockedValueBox<[String: (function: ActiveFunction, at: ContinuousClock.Instant)]>([:])
    static let activeTTL: Duration = .seconds(1)
    static let logEntries = 1_000

    init(tenant: String, supervisor: SubsystemSupervisor, modules: FunctionModuleCache = .shared, limits: @escaping @Sendable () -> FunctionLimits) {
        self.tenant = tenant
        self.modules = modules
        self.supervisor = supervisor
        self.limits = limits
        let current = limits()
        self.gate = ConcurrencyLimiter(maxConcurrent: current.maxConcurrent, maxQueued: current.maxQueued)
    }

    /// The parsed module of a version, parsed once.
    public func module(_ version: FunctionVersionRecord, memoryLimitBytes: Int) throws(FunctionError) -> FunctionModule {
        let key = "\(version.name)@\(version.version)@\(version.sha256)"
        if let cached = modules.module(tenant: tenant, key: key) {
            Counter(label: "minibaas_function_module_cache_hits_total", dimensions: [("tenant", tenant)]).increment()
            return cached
        }
        let parsed = version.settings.isJavaScript
            ? try FunctionModule(javaScript: version.module, maxBytes: .max)
            : try FunctionModule(bytes: version.module, maxBytes: .max, memoryLimitBytes: memoryLimitBytes)
        modules.insert(parsed, tenant: tenant, key: key)
        return parsed
    }

    /// Runs a call in the tenant's turn; 503 MB875 when its queue is full.
    public func invoke(_ module: FunctionModule, _ invocation: Invocation, runner: FunctionRunner) async throws -> InvocationOutcome {
        // The tenant's current limits, so a change applies without restarting the tree.
        let current = limits()
        gate.reconfigure(maxConcurrent: current.maxConcurrent, maxQueued: current.maxQueued)
        Gauge(label: "minibaas_function_queue_depth", dimensions: [("tenant", tenant)]).record(gate.queuedCount)
        do {
            try await gate.acquire(within: .milliseconds(invocation.timeoutMs))
        } catch {
            throw FunctionError(status: 503, code: "MB875", message: "the tenant's functions are all busy and their queue is full", details: nil)
        }
        defer { gate.release() }
        return try await runner.run(module, invocation)
    }

    /// The call in the log and on `/metrics`: invocations by outcome (`ok` or the error code),
    /// duration and fuel per function.
    public func record(_ entry: FunctionLogEntry) {
        let dimensions = [("tenant", tenant), ("function", entry.function)]
        Counter(label: "minibaas_function_invocations_total", dimensions: dimensions + [("outcome", entry.code ?? "ok")]).increment()
        Metrics.Timer(label: "minibaas_function_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(entry.durationMs * 1e6))
        Counter(label: "minibaas_function_fuel_total", dimensions: dimensions).increment(by: Int(clamping: entry.fuel))
        // In place: copying the log out and back would copy all its entries on every call.
        logs.withLockedValue { logs in logs[entry.function, default: LogRing()].append(entry, capacity: Self.logEntries) }
    }

    /// Newest first.
    public func logs(of function: String, since: Date?, limit: Int) -> [FunctionLogEntry] {
        let entries = logs.withLockedValue { $0[function]?.newestFirst ?? [] }
        return Array(entries.filter { since == nil || $0.at >= since! }.prefix(limit))
    }

    public func activeFunction(_ name: String) -> ActiveFunction? {
        active.withLockedValue { entries in
            guard let entry = entries[name], ContinuousClock.now - entry.at < Self.activeTTL else { return nil }
            return entry.function
        }
    }

    public func remember(_ function: ActiveFunction) {
        active.withLockedValue { $0[function.record.name] = (function, .now) }
    }

    /// A deploy, rollback or delete on this node: the next call reads the function again.
    public func changed(_ function: String) {
        active.withLockedValue { $0[function] = nil }
    }

    public func forget(_ function: String) {
        changed(function)
        logs.withLockedValue { $0[function] = nil }
        modules.forget(tenant: tenant, keyPrefix: function + "@")
    }

    public var cachedModuleCount: Int { modules.count(tenant: tenant) }

    /// On the supervisor endpoint: calls running and waiting, and modules parsed.
    public func details() async -> [String: String] {
        ["inFlight": String(gate.activeCount), "queued": String(gate.queuedCount), "cachedModules": String(cachedModuleCount)]
    }
}

/// A function's recent calls: a fixed number, the oldest overwritten.
struct LogRing {
    private var entries: [FunctionLogEntry] = []
    private var next = 0

    mutating func append(_ entry: FunctionLogEntry, capacity: Int) {
        if entries.count < capacity {
            entries.append(entry)
        } else {
            entries[next] = entry
            next = (next + 1) % capacity
        }
    }

    var newestFirst: [FunctionLogEntry] {
        (Array(entries[next...]) + Array(entries[..<next])).reversed()
    }
}

/// What a call of a function needs from the control plane, read once per `activeTTL`.
public struct ActiveFunction: Sendable {
    public var record: FunctionRecord
    public var version: FunctionVersionRecord
    /// The variables every call gets after the request's own: Supabase's keys as allowed, the
    /// function's env, then its secrets (opened).
    public var fixedEnvironment: [String]

    public init(record: FunctionRecord, version: FunctionVersionRecord, fixedEnvironment: [String]) {
        self.record = record
        self.version = version
        self.fixedEnvironment = fixedEnvironment
    }
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
