/// Why a function was not deployed or an invocation did not answer, with the HTTP status and the
/// stable code (MB860–MB879, contract ../shared/contracts/functions.md) the API answers with.
public struct FunctionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var details: String?

    public init(status: Int, code: String, message: String, details: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code) \(status): \(message)" + (details.map { " (\($0))" } ?? "") }

    // MARK: JavaScript

    /// The node has no (or a different) QuickJS module: JavaScript functions cannot run here.
    public static func javaScriptUnavailable(_ why: String) -> FunctionError {
        FunctionError(status: 501, code: "MB879", message: "JavaScript functions are not available on this node", details: why)
    }

    /// At deploy: the source does not load (a syntax error, a throw at the top level, no handler).
    public static func scriptDoesNotLoad(_ why: String) -> FunctionError {
        FunctionError(status: 422, code: "MB867", message: "the JavaScript source does not load", details: why)
    }

    /// At a call: the handler threw or rejected, or returned something that is not a Response.
    static func scriptThrew(_ why: String) -> FunctionError {
        FunctionError(status: 500, code: "MB867", message: "the function's JavaScript threw", details: why)
    }

    // MARK: Deploy

    static func notWasm(_ why: String) -> FunctionError {
        FunctionError(status: 400, code: "MB868", message: "the module is not WebAssembly", details: why)
    }
    static func badInterface(_ what: String) -> FunctionError {
        FunctionError(status: 422, code: "MB869", message: "the module's imports or exports are not those of a WASI command", details: what)
    }
    static func tooLarge(_ size: Int, limit: Int) -> FunctionError {
        FunctionError(status: 413, code: "MB870", message: "the module is larger than the tenant's limit", details: "\(size) bytes, limit \(limit)")
    }
    public static func memoryTooLarge(_ bytes: Int, limit: Int) -> FunctionError {
        FunctionError(
            status: 422, code: "MB871", message: "the module's initial memory is over the function's memory limit",
            details: "\(bytes / 1_048_576) MiB, limit \(limit / 1_048_576) MiB")
    }

    // MARK: Invocation

    static func trapped(_ why: String) -> FunctionError {
        FunctionError(status: 500, code: "MB861", message: "the function trapped", details: why)
    }
    static func exited(_ status: Int32) -> FunctionError {
        FunctionError(status: 500, code: "MB862", message: "the function exited with a non-zero status", details: "exit status \(status)")
    }
    static func badHeaders(_ why: String) -> FunctionError {
        FunctionError(status: 502, code: "MB863", message: "the function's output does not start with a valid header block", details: why)
    }
    static func outOfTime(_ timeoutMs: Int) -> FunctionError {
        FunctionError(status: 546, code: "MB864", message: "the function ran out of time", details: "stopped at its \(timeoutMs) ms limit")
    }
    static func outOfMemory(_ limit: Int) -> FunctionError {
        FunctionError(
            status: 546, code: "MB865", message: "the function trapped after its memory limit refused to grow",
            details: "limit \(limit / 1_048_576) MiB")
    }
    static func outputTooLarge(_ limit: Int) -> FunctionError {
        FunctionError(status: 502, code: "MB866", message: "the function wrote more output than allowed", details: "limit \(limit) bytes")
    }
    static func unavailable(_ why: String) -> FunctionError {
        FunctionError(status: 503, code: "MB877", message: "the function runtime is unavailable", details: why)
    }
}
