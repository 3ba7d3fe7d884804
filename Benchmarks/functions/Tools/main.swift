// Benchmarks/functions' CPU-bound measurement: runs an exported function of a module in WasmKit,
// the way the node's runner does (a fresh store and instance per run), with fuel metering on or
// off, and prints the median milliseconds of RUNS runs.
// Usage: functions-bench cpu MODULE.wasm EXPORT ARGUMENT RUNS fuel|nofuel
//        functions-bench js RUNS   (a warm JavaScript hello-world through the node's runner: cold, p50, p99 ms)
import Foundation
import Functions
import WasmKit

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "js", let runs = Int(arguments[2]) {
    let runner = FunctionRunner(threads: 1)
    // QJS_SOURCE: another handler to time (the shim is always around it).
    let source = ProcessInfo.processInfo.environment["QJS_SOURCE"] ?? #"Deno.serve(async (req) => Response.json({ hello: (await req.json()).name }))"#
    let module = try FunctionModule(javaScript: Array(source.utf8), maxBytes: 1 << 20)
    let invocation = Invocation(
        arguments: [], environment: ["REQUEST_METHOD=POST", "X_FULL_URL=http://localhost/functions/v1/hello", "CONTENT_TYPE=application/json"],
        stdin: Array(#"{"name":"ada"}"#.utf8), timeoutMs: 60_000, memoryLimitBytes: 64 << 20, maxOutputBytes: 1 << 20)
    var times: [Double] = []
    for _ in 0..<(runs + 1) {
        let outcome = try await runner.run(module, invocation)
        _ = try outcome.result.get()
        times.append(outcome.durationMs)
    }
    let cold = times.removeFirst()
    times.sort()
    print(String(format: "cold %.2f p50 %.2f p99 %.2f", cold, times[times.count / 2], times[min(times.count - 1, times.count * 99 / 100)]))
    exit(0)
}
guard arguments.count == 7, arguments[1] == "cpu", let argument = Int32(arguments[4]), let runs = Int(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: functions-bench cpu MODULE.wasm EXPORT ARGUMENT RUNS fuel|nofuel\n".utf8))
    exit(2)
}
let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: arguments[2])))
let module = try parseWasm(bytes: bytes)
let metered = arguments[6] == "fuel"
let engine = Engine(configuration: EngineConfiguration(fuelMetering: metered))
var times: [Double] = []
var result: [Value] = []
for _ in 0..<runs {
    let started = DispatchTime.now()
    let store = Store(engine: engine)
    if metered { store.fuel = Fuel(remaining: .max - 1) }
    let instance = try module.instantiate(store: store)
    result = try instance.exports[function: arguments[3]]!([.i32(UInt32(bitPattern: argument))])
    times.append(Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e6)
}
times.sort()
print(String(format: "%.2f", times[times.count / 2]), result.first.map { "\($0)" } ?? "")
