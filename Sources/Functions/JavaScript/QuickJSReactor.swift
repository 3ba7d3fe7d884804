import Crypto
import Foundation
import NIOConcurrencyHelpers
@_spi(Fuzzing) import WasmKit

/// QuickJS-NG built for WASI as a reactor (PyPI `qjs-wasi-reactor.wasm` 0.17.0, MIT licence): the
/// JavaScript engine tenants' JavaScript functions run in, inside the same WasmKit sandbox and
/// WASI host as WebAssembly functions. Not in the repository: `scripts/serve` and `scripts/test`
/// fetch the pinned version and check its SHA-256; the node checks the digest again before
/// using it. Parsed once per node, on the first JavaScript call or deploy.
public final class QuickJSReactor: Sendable {
    public static let version = "0.17.0"
    public static let sha256 = "1a4e0bce82f2faed14f5e2620174e3daf33e161bad75ce955ceeaca1f7c82572"
    public static let fileName = "qjs-wasi-reactor-\(version).wasm"

    let module: Module

    init(module: Module) {
        self.module = module
    }

    /// Where the module is looked for: `MINIBAAS_QUICKJS_WASM`, beside the executable, then the
    /// checkout's `.cache/quickjs/` for a node run from its build folder (`.build/debug/minibaas`).
    public static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let path = environment["MINIBAAS_QUICKJS_WASM"], !path.isEmpty { return [path] }
        let executable = URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0]).resolvingSymlinksInPath()
        let directory = executable.deletingLastPathComponent()
        var paths = [directory.appendingPathComponent(fileName).path, directory.appendingPathComponent("qjs-wasi-reactor.wasm").path]
        // .build/<triple>/debug/minibaas or .build/debug/minibaas: walk up to the checkout.
        var folder = directory
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent()
            paths.append(folder.appendingPathComponent(".cache/quickjs/\(fileName)").path)
        }
        return paths
    }

    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(FunctionError) -> QuickJSReactor {
        let tried = candidates(environment: environment)
        guard let path = tried.first(where: { FileManager.default.isReadableFile(atPath: $0) }),
            let bytes = FileManager.default.contents(atPath: path)
        else {
            throw FunctionError.javaScriptUnavailable(
                "the QuickJS module \(fileName) was not found (set MINIBAAS_QUICKJS_WASM; looked in \(tried.joined(separator: ", ")))")
        }
        let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        guard digest == sha256 else {
            throw FunctionError.javaScriptUnavailable("\(path) is not QuickJS-NG \(version) (SHA-256 \(digest), expected \(sha256))")
        }
        do {
            return QuickJSReactor(module: try parseWasm(bytes: Array(bytes)))
        } catch {
            throw FunctionError.javaScriptUnavailable("\(path) cannot be parsed: \(error)")
        }
    }
}

/// The node's QuickJS, loaded on first use; a failure is remembered (and answered MB879) rather
/// than retried on every call.
final class LazyQuickJS: Sendable {
    private let state = NIOLockedValueBox<Result<QuickJSReactor, FunctionError>?>(nil)

    func get() throws(FunctionError) -> QuickJSReactor {
        let result = state.withLockedValue { state in
            if let state { return state }
            let loaded = Result { () throws(FunctionError) -> QuickJSReactor in try QuickJSReactor.load() }
            state = loaded
            return loaded
        }
        return try result.get()
    }
}
