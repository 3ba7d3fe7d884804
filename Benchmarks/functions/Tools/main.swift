// Benchmarks/functions' CPU-bound measurement: runs an exported function of a module in WasmKit,
// the way the node's runner does (a fresh store and instance per run), with fuel metering on or
// off, and prints the median milliseconds of RUNS runs.
// Usage: functions-bench cpu MODULE.wasm EXPORT ARGUMENT RUNS fuel|nofuel
import Foundation
import WasmKit

let arguments = CommandLine.arguments
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
