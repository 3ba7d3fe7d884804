import Foundation
import NIOConcurrencyHelpers
@_spi(Fuzzing) import WasmKit

/// One QuickJS instance kept between calls of one function version: instantiating and
/// initialising QuickJS costs far more than a call, so an instance serves call after call, each
/// in a fresh JavaScript runtime (`qjs_init_argv` … `qjs_destroy`: nothing of one call's globals
/// survives into the next). An instance that trapped, ran out of time or memory is dropped.
final class JavaScriptInstance: @unchecked Sendable {
    let store: Store
    let instance: Instance
    let host: WASICall
    let cap: MemoryCap

    init(reactor: QuickJSReactor, engine: Engine, memoryLimitBytes: Int) throws {
        let store = Store(engine: engine)
        let cap = MemoryCap(limit: memoryLimitBytes)
        store.resourceLimiter = cap
        let host = WASICall(arguments: [], environment: [], stdin: [], maxOutputBytes: 0, deadline: .distantFuture)
        store.fuel = Fuel(remaining: 5_000_000_000)
        let instance = try reactor.module.instantiate(store: store, imports: host.imports(for: reactor.module, store: store))
        guard let initialize = instance.exports[function: "_initialize"] else { throw FunctionError.badInterface("QuickJS has no _initialize") }
        _ = try initialize()
        self.store = store
        self.instance = instance
        self.host = host
        self.cap = cap
    }
}

/// Idle QuickJS instances by function version (and memory limit): at most `perKey` each and
/// `total` in all, the least recently used dropped first.
final class JavaScriptInstances: @unchecked Sendable {
    static let perKey = 4
    static let perTenant = 8
    static let total = 32

    /// Tenant, function and version (from the call's `MB_*` variables), source digest and memory
    /// limit. A call without a tenant (a deploy's check) gets a key of its own and is not kept.
    static func key(_ environment: [String], sha256: String, memoryLimitBytes: Int) -> String {
        func value(_ name: String) -> String? {
            environment.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        guard let tenant = value("MB_TENANT"), let function = value("MB_FUNCTION") else { return "" }
        return "\(tenant)/\(function)@\(value("MB_VERSION") ?? "?")/\(sha256)/\(memoryLimitBytes)"
    }
    private let lock = NIOLock()
    private var idle: [(key: String, instance: JavaScriptInstance)] = []

    func take(_ key: String) -> JavaScriptInstance? {
        lock.withLock {
            guard let index = idle.lastIndex(where: { $0.key == key }) else { return nil }
            return idle.remove(at: index).instance
        }
    }

    func give(_ instance: JavaScriptInstance, key: String) {
        guard !key.isEmpty else { return }
        let tenant = key.prefix { $0 != "/" }
        lock.withLock {
            guard idle.filter({ $0.key == key }).count < Self.perKey,
                idle.filter({ $0.key.prefix(while: { $0 != "/" }) == tenant }).count < Self.perTenant
            else { return }
            idle.append((key, instance))
            if idle.count > Self.total { idle.removeFirst(idle.count - Self.total) }
        }
    }

    var count: Int { lock.withLock { idle.count } }
}

/// A JavaScript function's call: the tenant's source inside `DenoShim`, evaluated as a module by
/// QuickJS with `--std` (for the CGI environment and stdin) under the same fuel, watchdog, memory
/// cap and output cap as a WebAssembly call.
enum JavaScriptCall {
    static func run(
        _ source: String, key: String, _ invocation: Invocation, reactor: QuickJSReactor, instances: JavaScriptInstances, engine: Engine
    ) -> InvocationOutcome {
        let started = DispatchTime.now()
        let budget = UInt64(invocation.timeoutMs) * FunctionRunner.fuelPerMillisecond
        let lease: JavaScriptInstance
        do {
            lease = try instances.take(key) ?? JavaScriptInstance(reactor: reactor, engine: engine, memoryLimitBytes: invocation.memoryLimitBytes)
        } catch {
            let why = "\(error)".contains("memory")
                ? FunctionError.outOfMemory(invocation.memoryLimitBytes)
                : FunctionError.javaScriptUnavailable("QuickJS cannot be instantiated: \(error)")
            return InvocationOutcome(result: .failure(why), stderr: "", durationMs: 0, fuel: 0, memoryBytes: 0)
        }
        // The call's time starts once it has an instance: a cold node's first instantiation is the
        // node's cost, not the function's.
        let deadline = DispatchTime.now() + .milliseconds(invocation.timeoutMs)
        lease.cap.reset()
        let host = lease.host
        host.reset(environment: invocation.environment, stdin: invocation.stdin, maxOutputBytes: invocation.maxOutputBytes, deadline: deadline)
        lease.store.fuel = Fuel(remaining: budget)
        let watchdog = Watchdog(store: lease.store, deadline: deadline)
        var failure: FunctionError?
        var healthy = true
        do {
            // QuickJS's own heap limit (KiB), below the linear memory cap so that an allocation
            // failure is a JavaScript `InternalError`, not a refused memory growth.
            let heapKiB = max(2_048, invocation.memoryLimitBytes / 1024 - 8_192)
            let script = DenoShim.script(for: source, environment: invocation.environment)
            let arguments = ["qjs", "--std", "--memory-limit", String(heapKiB), "-m", "-e", script]
            watchdog.arm()
            defer { watchdog.disarm() }
            let status = try evaluate(arguments, in: lease)
            if status != 0 {
                // libc's buffers may hold this call's unwritten output or unread input: not kept.
                healthy = false
                failure = .scriptThrew(firstLine(of: host.stderr) ?? "exception")
            }
        } catch let exit as WASICall.Exit {
            // `std.exit(status)`: the call ends as a WebAssembly command's would; the instance's libc is done.
            healthy = false
            if exit.status != 0 { failure = .exited(exit.status) }
        } catch {
            healthy = false
            failure = .stopped(by: error, host: host, watchdog: watchdog, store: lease.store, cap: lease.cap, invocation: invocation)
        }
        let memoryBytes = lease.instance.exports[memory: "memory"]?.byteCount ?? 0
        let outcome = InvocationOutcome.finished(failure, host: host, started: started, budget: budget, store: lease.store, memoryBytes: memoryBytes)
        // A call that grew the memory far past QuickJS's start does not keep it for the next one.
        if healthy && memoryBytes <= 64 << 20 {
            host.reset(environment: [], stdin: [], maxOutputBytes: 0, deadline: .distantFuture)
            instances.give(lease, key: key)
        }
        return outcome
    }

    /// `qjs_init_argv(argc, argv)` with the arguments copied into the instance's memory, then
    /// `qjs_destroy()` (QuickJS frees the runtime itself when evaluation failed). The status:
    /// 0 evaluated, non-zero an uncaught exception (printed on stderr).
    private static func evaluate(_ arguments: [String], in lease: JavaScriptInstance) throws -> Int32 {
        let exports = lease.instance.exports
        guard let malloc = exports[function: "malloc"], let free = exports[function: "free"], let initArgv = exports[function: "qjs_init_argv"],
            let destroy = exports[function: "qjs_destroy"], let memory = exports[memory: "memory"]
        else { throw FunctionError.badInterface("QuickJS lacks malloc, free, qjs_init_argv, qjs_destroy or memory") }
        let guest = GuestMemoryView(memory: memory)
        var pointers: [UInt32] = []
        defer { for pointer in pointers { _ = try? free([.i32(pointer)]) } }
        func allocate(_ bytes: [UInt8]) throws -> UInt32 {
            guard case .i32(let pointer)? = try malloc([.i32(UInt32(bytes.count))]).first, pointer != 0 else {
                throw FunctionError.outOfMemory(memory.byteCount)
            }
            pointers.append(pointer)
            guard guest.write(pointer, bytes) else { throw FunctionError.trapped("QuickJS gave an allocation outside its memory") }
            return pointer
        }
        var table: [UInt8] = []
        for argument in arguments {
            let pointer = try allocate(Array(argument.utf8) + [0])
            withUnsafeBytes(of: pointer.littleEndian) { table += $0 }
        }
        let argv = try allocate(table)
        guard case .i32(let status)? = try initArgv([.i32(UInt32(arguments.count)), .i32(argv)]).first else {
            throw FunctionError.badInterface("qjs_init_argv answered no status")
        }
        let signed = Int32(bitPattern: status)
        if signed == 0 { _ = try destroy([]) }
        return signed
    }

    /// The uncaught error's own line: QuickJS prints it, then its stack lines (indented), after
    /// whatever the function logged.
    private static func firstLine(of bytes: [UInt8]) -> String? {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        return lines.last { !$0.isEmpty && !($0.first?.isWhitespace ?? true) }.map { String($0.prefix(500)) }
    }
}
