import Foundation
import NIOConcurrencyHelpers
import NIOPosix
@_spi(Fuzzing) import WasmKit

/// One call of a function: what the guest sees (arguments, `NAME=value` environment, the body on
/// stdin) and its limits.
public struct Invocation: Sendable {
    public var arguments: [String]
    public var environment: [String]
    public var stdin: [UInt8]
    public var timeoutMs: Int
    public var memoryLimitBytes: Int
    public var maxOutputBytes: Int

    public init(arguments: [String], environment: [String], stdin: [UInt8], timeoutMs: Int, memoryLimitBytes: Int, maxOutputBytes: Int) {
        self.arguments = arguments
        self.environment = environment
        self.stdin = stdin
        self.timeoutMs = timeoutMs
        self.memoryLimitBytes = memoryLimitBytes
        self.maxOutputBytes = maxOutputBytes
    }
}

/// How a call went: its response or why there is none, and what the log keeps of it.
public struct InvocationOutcome: Sendable {
    public var result: Result<CGIResponse, FunctionError>
    /// The guest's stderr (at most 10,000 bytes), for the function's log only.
    public var stderr: String
    public var durationMs: Double
    public var fuel: UInt64
    public var memoryBytes: Int
}

/// Runs function calls in WasmKit, each in a fresh instance of its parsed module, on threads of
/// its own (never NIO's event loops: a call blocks its thread until it returns). A call is
/// metered with fuel (`timeoutMs` × 3 M, an upper bound) and watched: at its deadline a watchdog
/// drains the store's fuel every millisecond until the guest stops, since WasmKit has no other
/// way to interrupt a running call. Memory growth past the function's limit is refused.
public final class FunctionRunner: Sendable {
    /// Fuel per millisecond of `timeoutMs`: more than the fastest code burns (~2,500 M/s), so the
    /// watchdog, not the fuel, is what stops a call on time; fuel only bounds a call whose
    /// watchdog could not run.
    public static let fuelPerMillisecond: UInt64 = 3_000_000

    let engine: Engine
    let threads: NIOThreadPool
    let quickJS = LazyQuickJS()
    let javaScriptInstances = JavaScriptInstances()
    /// The node's memory for running calls (`MINIBAAS_FUNCTION_MEMORY_MB`).
    public let memory: MemoryAdmission

    public init(threads count: Int, memoryBytes: Int = 1_024 << 20) {
        self.memory = MemoryAdmission(totalBytes: memoryBytes)
        self.engine = Engine(configuration: EngineConfiguration(fuelMetering: true))
        self.threads = NIOThreadPool(numberOfThreads: max(1, count))
        self.threads.start()
    }

    public func shutdown() async {
        try? await threads.shutdownGracefully()
    }

    /// Runs one call on the runner's threads once its memory limit is admitted (503 MB875 when the
    /// node's memory for calls stays taken until the call's deadline); throws otherwise only when
    /// the runner is shut down (MB877).
    public func run(_ module: FunctionModule, _ invocation: Invocation) async throws(FunctionError) -> InvocationOutcome {
        try await memory.acquire(invocation.memoryLimitBytes, within: .milliseconds(invocation.timeoutMs))
        defer { memory.release(invocation.memoryLimitBytes) }
        return try await admitted(module, invocation)
    }

    private func admitted(_ module: FunctionModule, _ invocation: Invocation) async throws(FunctionError) -> InvocationOutcome {
        let engine = self.engine
        switch module.code {
        case .wasm(let wasm):
            return try await onThreads { Self.call(wasm, invocation, engine: engine) }
        case .javaScript(let source):
            let reactor = try await onThreads { Result { () throws(FunctionError) in try self.quickJS.get() } }.get()
            let instances = javaScriptInstances
            // Instances are never shared between tenants or functions, even for the same source: a
            // kept instance's memory still holds the previous call's script and data.
            let key = JavaScriptInstances.key(invocation.environment, sha256: module.sha256, memoryLimitBytes: invocation.memoryLimitBytes)
            return try await onThreads {
                JavaScriptCall.run(source, key: key, invocation, reactor: reactor, instances: instances, engine: engine)
            }
        }
    }

    /// Runs `source` once without a request, as a deploy's check: its top level must load and
    /// register a handler with `Deno.serve`. Throws MB867 with the error when it does not.
    /// `environment`: what calls will see of the function's env and secrets, so top-level code that
    /// reads them loads as it will at a call.
    public func check(javaScript module: FunctionModule, environment: [String], timeoutMs: Int, memoryLimitBytes: Int) async throws(FunctionError) {
        let invocation = Invocation(
            arguments: [], environment: environment + ["MB_CHECK_ONLY=1", "REQUEST_METHOD=GET"], stdin: [], timeoutMs: timeoutMs,
            memoryLimitBytes: memoryLimitBytes, maxOutputBytes: 1 << 16)
        let outcome = try await run(module, invocation)
        // Loaded, a handler registered, nothing written: no header block is the expected answer (MB863).
        if case .failure(let error) = outcome.result, error.code != "MB863" {
            guard error.code == "MB867" else { throw FunctionError.scriptDoesNotLoad(error.details ?? error.message) }
            throw FunctionError.scriptDoesNotLoad(error.details ?? "it threw")
        }
    }

    private func onThreads<Value: Sendable>(_ work: @escaping @Sendable () -> Value) async throws(FunctionError) -> Value {
        do {
            return try await threads.runIfActive(work)
        } catch {
            throw FunctionError.unavailable("the function threads are stopped")
        }
    }

    /// The call itself, blocking the calling thread.
    static func call(_ module: Module, _ invocation: Invocation, engine: Engine) -> InvocationOutcome {
        let started = DispatchTime.now()
        let deadline = started + .milliseconds(invocation.timeoutMs)
        let store = Store(engine: engine)
        let cap = MemoryCap(limit: invocation.memoryLimitBytes)
        store.resourceLimiter = cap
        let budget = UInt64(invocation.timeoutMs) * fuelPerMillisecond
        store.fuel = Fuel(remaining: budget)
        let host = WASICall(
            arguments: invocation.arguments, environment: invocation.environment, stdin: invocation.stdin,
            maxOutputBytes: invocation.maxOutputBytes, deadline: deadline)
        let watchdog = Watchdog(store: store, deadline: deadline)
        var memoryBytes = 0
        var failure: FunctionError?
        do {
            let instance = try module.instantiate(store: store, imports: host.imports(for: module, store: store))
            defer { memoryBytes = instance.exports[memory: "memory"]?.byteCount ?? 0 }
            guard let start = instance.exports[function: "_start"] else { throw FunctionError.badInterface("no exported function _start") }
            watchdog.arm()
            defer { watchdog.disarm() }
            do {
                _ = try start()
            } catch let exit as WASICall.Exit {
                if exit.status != 0 { failure = .exited(exit.status) }
            }
        } catch let error as FunctionError {
            failure = error
        } catch {
            failure = .stopped(by: error, host: host, watchdog: watchdog, store: store, cap: cap, invocation: invocation)
        }
        return .finished(failure, host: host, started: started, budget: budget, store: store, memoryBytes: memoryBytes)
    }
}

extension FunctionError {
    /// Why a call that threw stopped: past its output cap, its deadline (or fuel), its memory cap,
    /// or a trap of its own.
    static func stopped(by error: any Error, host: WASICall, watchdog: Watchdog, store: Store, cap: MemoryCap, invocation: Invocation) -> FunctionError {
        if host.outputOverflowed { return .outputTooLarge(invocation.maxOutputBytes) }
        if watchdog.fired || store.fuel?.remaining == 0 || "\(error)".contains("out of fuel") { return .outOfTime(invocation.timeoutMs) }
        if cap.refused { return .outOfMemory(invocation.memoryLimitBytes) }
        return .trapped(String("\(error)".split(separator: "\n").first ?? "trap"))
    }
}

extension InvocationOutcome {
    /// A finished call: its failure, or the CGI answer it wrote; its stderr, time, fuel and memory.
    static func finished(
        _ failure: FunctionError?, host: WASICall, started: DispatchTime, budget: UInt64, store: Store, memoryBytes: Int
    ) -> InvocationOutcome {
        let result: Result<CGIResponse, FunctionError>
        if let failure {
            result = .failure(failure)
        } else {
            do {
                result = .success(try CGIResponse(parsing: host.stdout))
            } catch {
                result = .failure(error)
            }
        }
        let used = budget - min(budget, store.fuel?.remaining ?? budget)
        return InvocationOutcome(
            result: result, stderr: String(decoding: host.stderr, as: UTF8.self),
            durationMs: Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6, fuel: used, memoryBytes: memoryBytes)
    }
}

/// Refuses memory growth past the function's limit, and remembers that it did (a trap that
/// follows is answered as out of memory, 546 MB865).
final class MemoryCap: ResourceLimiter, @unchecked Sendable {
    let limit: Int
    private let refusedBox = NIOLockedValueBox(false)

    init(limit: Int) { self.limit = limit }

    var refused: Bool { refusedBox.withLockedValue { $0 } }

    /// A kept instance's next call starts with no refusal on record.
    func reset() { refusedBox.withLockedValue { $0 = false } }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard desired <= limit else {
            refusedBox.withLockedValue { $0 = true }
            return false
        }
        return true
    }
}

/// Stops a call at its deadline: WasmKit has no interrupt, so from the deadline on the store's
/// fuel is set to zero every millisecond until the call returns (the guest reads its fuel as it
/// runs; a single write could be overwritten by the guest's own accounting).
final class Watchdog: @unchecked Sendable {
    private let store: Store
    private let deadline: DispatchTime
    /// `disarmed`: a tick already running when the call ended must not zero the fuel of the next
    /// call on the same (kept) store.
    private let state = NIOLockedValueBox<(timer: (any DispatchSourceTimer)?, fired: Bool, disarmed: Bool)>((nil, false, false))

    init(store: Store, deadline: DispatchTime) {
        self.store = store
        self.deadline = deadline
    }

    var fired: Bool { state.withLockedValue { $0.fired } }

    func arm() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .userInitiated))
        timer.schedule(deadline: deadline, repeating: .milliseconds(1))
        timer.setEventHandler { [self] in
            state.withLockedValue { state in
                guard !state.disarmed else { return }
                state.fired = true
                store.fuel = Fuel(remaining: 0)
            }
        }
        state.withLockedValue { $0.timer = timer }
        timer.resume()
    }

    func disarm() {
        let timer = state.withLockedValue { state -> (any DispatchSourceTimer)? in
            defer {
                state.timer = nil
                state.disarmed = true
            }
            return state.timer
        }
        timer?.cancel()
    }
}
