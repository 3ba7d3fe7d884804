import Crypto
import Foundation
@_spi(Fuzzing) import WasmKit

/// A deployable function module: parsed once, checked at deploy (contract "Admin") — WebAssembly,
/// imports from `wasi_snapshot_preview1` only, `_start` and `memory` exported, within the size and
/// initial-memory limits — and kept parsed for every call of its version.
public struct FunctionModule: Sendable {
    /// What runs: a WebAssembly command, or JavaScript source run by the node's QuickJS.
    public enum Code: Sendable {
        case wasm(Module)
        case javaScript(String)
    }

    public let code: Code
    public let sha256: String
    public let sizeBytes: Int
    /// The memory the module starts with, in bytes.
    public let initialMemoryBytes: Int

    public static let pageBytes = 65_536

    /// Parses and checks `bytes`; `maxBytes` is the tenant's module size limit, `memoryLimitBytes`
    /// the function's memory limit.
    public init(bytes: [UInt8], maxBytes: Int, memoryLimitBytes: Int) throws(FunctionError) {
        guard bytes.count <= maxBytes else { throw FunctionError.tooLarge(bytes.count, limit: maxBytes) }
        guard bytes.starts(with: [0x00, 0x61, 0x73, 0x6D]) else { throw FunctionError.notWasm("it does not start with \\0asm") }
        let parsed: Module
        do {
            parsed = try parseWasm(bytes: bytes)
        } catch {
            throw FunctionError.notWasm("\(error)")
        }
        var problems: [String] = []
        for entry in parsed.imports {
            if entry.module != WASICall.moduleName {
                problems.append("import \(entry.module).\(entry.name) (only \(WASICall.moduleName) is available)")
            } else if WASICall.signatures[entry.name] == nil {
                problems.append("import \(entry.module).\(entry.name) is not a WASI preview 1 function")
            } else if case .function = entry.descriptor {
            } else {
                problems.append("import \(entry.module).\(entry.name) is not a function")
            }
        }
        let exports = Dictionary(parsed.exports.map { ($0.name, $0.descriptor) }, uniquingKeysWith: { first, _ in first })
        if case .function? = exports["_start"] {} else { problems.append("no exported function _start") }
        if case .memory? = exports["memory"] {} else { problems.append("no exported memory") }
        guard problems.isEmpty else { throw FunctionError.badInterface(problems.joined(separator: "; ")) }
        // The initial memory, read from an instance made without running anything (no start
        // function, every import a stub).
        var probe = parsed
        probe.dropStartFunction()
        let initial: Int
        do {
            let store = Store(engine: Engine())
            var imports = Imports()
            for entry in parsed.imports {
                guard let signature = WASICall.signatures[entry.name] else { continue }
                imports.define(
                    module: entry.module, name: entry.name,
                    Function(store: store, parameters: signature.parameters, results: signature.results) { _, _ in signature.results.map { _ in .i32(0) } })
            }
            let instance = try probe.instantiate(store: store, imports: imports)
            initial = instance.exports[memory: "memory"]?.byteCount ?? 0
        } catch {
            throw FunctionError.badInterface("the module cannot be instantiated: \(error)")
        }
        guard initial <= memoryLimitBytes else { throw FunctionError.memoryTooLarge(initial, limit: memoryLimitBytes) }
        self.code = .wasm(parsed)
        self.sizeBytes = bytes.count
        self.initialMemoryBytes = initial
        self.sha256 = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// JavaScript source (UTF-8, no NUL), within the tenant's module size limit. Whether it loads
    /// is checked by running it once (`FunctionRunner.check`).
    public init(javaScript source: [UInt8], maxBytes: Int) throws(FunctionError) {
        guard source.count <= maxBytes else { throw FunctionError.tooLarge(source.count, limit: maxBytes) }
        guard !source.contains(0), let text = String(validating: source, as: UTF8.self) else {
            throw FunctionError.scriptDoesNotLoad("the source must be UTF-8 text without NUL")
        }
        self.code = .javaScript(text)
        self.sizeBytes = source.count
        self.initialMemoryBytes = 0
        self.sha256 = SHA256.hash(data: source).map { String(format: "%02x", $0) }.joined()
    }
}
