import Foundation
import WAT
import XCTest

@testable import Functions

/// Function modules from WAT fixtures, run by the real runner: the WAGI response, stdin and the
/// environment through our WASI host, and every way a call can go wrong answered with its code —
/// a runaway loop stopped at its deadline, refused memory growth, traps, non-zero exits, malformed
/// or flooding output — with the next call working.
final class FunctionRunnerTests: XCTestCase {
    static let runner = FunctionRunner(threads: 2)

    static func call(_ module: FunctionModule, _ invocation: Invocation) async throws -> InvocationOutcome {
        try await runner.run(module, invocation)
    }

    static let imports = """
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
        (memory (export "memory") 1)
        """

    /// WAT's string escapes for `text`.
    static func quoted(_ text: String) -> String {
        text.utf8.map { byte in
            switch byte {
            case 0x22: "\\\""
            case 0x5C: "\\\\"
            case 0x20...0x7E: String(UnicodeScalar(byte))
            default: String(format: "\\%02x", byte)
            }
        }.joined()
    }

    /// A module that writes `text` to stdout (at offset 4096), then runs `then`.
    static func writer(_ text: String, then: String = "") -> String {
        """
        (module \(imports)
          (data (i32.const 4096) "\(quoted(text))")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 4096))
            (i32.store (i32.const 4) (i32.const \(text.utf8.count)))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            \(then)))
        """
    }

    func module(_ wat: String, memoryLimit: Int = 64 << 20) throws -> FunctionModule {
        try FunctionModule(bytes: try wat2wasm(wat), maxBytes: 10 << 20, memoryLimitBytes: memoryLimit)
    }

    func run(
        _ wat: String, stdin: String = "", environment: [String] = [], timeoutMs: Int = 2_000, memoryLimit: Int = 64 << 20,
        maxOutput: Int = 1 << 20
    ) async throws -> InvocationOutcome {
        let invocation = Invocation(
            arguments: ["fn"], environment: environment, stdin: Array(stdin.utf8), timeoutMs: timeoutMs, memoryLimitBytes: memoryLimit,
            maxOutputBytes: maxOutput)
        return try await Self.runner.run(try module(wat, memoryLimit: memoryLimit), invocation)
    }

    func code(_ outcome: InvocationOutcome) -> String? {
        if case .failure(let error) = outcome.result { return error.code }
        return nil
    }

    func testAHelloWorldAnswersItsCGIResponse() async throws {
        let outcome = try await run(Self.writer("Content-Type: text/plain\r\nStatus: 201 Created\r\nX-Minibaas-Node: forged\r\nContent-Length: 1\r\n\r\nhello"))
        let response = try outcome.result.get()
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "hello")
        XCTAssertEqual(response.headers.map(\.name), ["Content-Type"], "the node's own headers are dropped")
        XCTAssertGreaterThan(outcome.fuel, 0)
    }

    func testStdinAndTheEnvironmentReachTheGuest() async throws {
        let echo = """
            (module \(Self.imports)
              (data (i32.const 4096) "Content-Type: text/plain\\n\\n")
              (func (export "_start")
                (i32.store (i32.const 0) (i32.const 4096)) (i32.store (i32.const 4) (i32.const 26))
                (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                (i32.store (i32.const 16) (i32.const 8192)) (i32.store (i32.const 20) (i32.const 30000))
                (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
                (i32.store (i32.const 32) (i32.const 8192)) (i32.store (i32.const 36) (i32.load (i32.const 24)))
                (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 8)))
                (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
                (drop (call $environ_get (i32.const 512) (i32.const 40000)))
                (i32.store (i32.const 48) (i32.const 40000)) (i32.store (i32.const 52) (i32.load (i32.const 44)))
                (drop (call $fd_write (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 8)))))
            """
        let outcome = try await run(echo, stdin: "{\"a\":1}", environment: ["MB_ROLE=anon", "REQUEST_METHOD=POST"])
        let body = String(decoding: try outcome.result.get().body, as: UTF8.self)
        XCTAssertEqual(body, "{\"a\":1}MB_ROLE=anon\u{0}REQUEST_METHOD=POST\u{0}")
        XCTAssertEqual(try outcome.result.get().headers.first?.value, "text/plain")
    }

    func testARunawayLoopIsStoppedAtItsDeadline() async throws {
        let started = Date()
        let outcome = try await run("(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))", timeoutMs: 200)
        XCTAssertEqual(code(outcome), "MB864")
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.3 + 0.5, "answered at the deadline (plus this box's slack)")
        // The thread is free again: the next call works.
        let value1 = try await run(Self.writer("Status: 204\n\n")).result.get().status
        XCTAssertEqual(value1, 204)
    }

    func testMemoryGrowthPastTheLimitIsRefused() async throws {
        let greedy = """
            (module (memory (export "memory") 1)
              (func (export "_start")
                (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
                unreachable))
            """
        let outcome = try await run(greedy, memoryLimit: 4 << 20)
        XCTAssertEqual(code(outcome), "MB865")
        XCTAssertLessThanOrEqual(outcome.memoryBytes, 4 << 20)
    }

    func testTrapsExitsAndBadOutputHaveTheirCodes() async throws {
        let value2 = try await run("(module (memory (export \"memory\") 1) (func (export \"_start\") unreachable))")
        XCTAssertEqual(code(value2), "MB861")
        let value3 = try await run(Self.writer("Status: 200\n\nok", then: "(call $proc_exit (i32.const 3))"))
        XCTAssertEqual(code(value3), "MB862")
        let value4 = try await run(Self.writer("Status: 200\n\nok", then: "(call $proc_exit (i32.const 0))")).result.get().status
        XCTAssertEqual(value4, 200)
        let value5 = try await run(Self.writer("no blank line after this"))
        XCTAssertEqual(code(value5), "MB863")
        let value6 = try await run(Self.writer("Status: nine\n\n"))
        XCTAssertEqual(code(value6), "MB863")
        let value7 = try await run(Self.writer("Bad Header Name: x\n\n"))
        XCTAssertEqual(code(value7), "MB863")
        let flood = Self.writer("Content-Type: text/plain\n\n", then: "(loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))) (br $l))")
        let value8 = try await run(flood, maxOutput: 4096)
        XCTAssertEqual(code(value8), "MB866")
        // A pointer outside memory is EFAULT for the guest, not a crash of the host.
        let wild = """
            (module \(Self.imports)
              (func (export "_start")
                (i32.store (i32.const 0) (i32.const 0xFFFFFF00)) (i32.store (i32.const 4) (i32.const 4096))
                (if (i32.ne (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 21)) (then unreachable))))
            """
        let value9 = try await run(wild)
        XCTAssertEqual(code(value9), "MB863", "EFAULT answered, then no output at all")
        let located = try await run(Self.writer("Location: https://example.com/\n\n")).result.get()
        XCTAssertEqual(located.status, 302)
    }

    func testModulesAreCheckedAtDeploy() throws {
        func refusal(_ bytes: [UInt8], memoryLimit: Int = 64 << 20, maxBytes: Int = 10 << 20) -> String? {
            do {
                _ = try FunctionModule(bytes: bytes, maxBytes: maxBytes, memoryLimitBytes: memoryLimit)
                return nil
            } catch {
                return error.code
            }
        }
        XCTAssertEqual(refusal(Array("not wasm".utf8)), "MB868")
        XCTAssertEqual(refusal([0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00, 0xFF]), "MB868")
        XCTAssertEqual(refusal(try wat2wasm("(module (import \"env\" \"f\" (func)) (memory (export \"memory\") 1) (func (export \"_start\")))")), "MB869")
        XCTAssertEqual(refusal(try wat2wasm("(module (memory (export \"memory\") 1))")), "MB869")
        XCTAssertEqual(refusal(try wat2wasm("(module (func (export \"_start\")))")), "MB869")
        XCTAssertEqual(refusal(try wat2wasm("(module (memory (export \"memory\") 100) (func (export \"_start\")))"), memoryLimit: 4 << 20), "MB871")
        XCTAssertEqual(refusal(try wat2wasm(Self.writer("x")), maxBytes: 16), "MB870")
        let good = try FunctionModule(bytes: try wat2wasm(Self.writer("Status: 200\n\n")), maxBytes: 10 << 20, memoryLimitBytes: 64 << 20)
        XCTAssertEqual(good.sha256.count, 64)
        XCTAssertEqual(good.initialMemoryBytes, FunctionModule.pageBytes)
    }

    func testARunawayDoesNotHoldUpAnotherCall() async throws {
        let spinning = try module("(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))")
        let invocation = Invocation(arguments: ["fn"], environment: [], stdin: [], timeoutMs: 1_000, memoryLimitBytes: 64 << 20, maxOutputBytes: 1 << 20)
        async let runaway = Self.call(spinning, invocation)
        try await Task.sleep(for: .milliseconds(50))
        let started = Date()
        let value10 = try await run(Self.writer("Status: 200\n\nfast")).result.get().status
        XCTAssertEqual(value10, 200)
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5, "the other thread answers while the runaway spins")
        let value11 = try await runaway
        XCTAssertEqual(code(value11), "MB864")
    }
    /// The node admits calls while their memory limits fit its budget: a call whose limit does not
    /// fit waits for a running one to finish, and gives up at its deadline with 503 MB875; a limit
    /// larger than the whole budget is refused at once.
    func testTheNodesMemoryAdmitsCallsByTheirLimits() async throws {
        let small = FunctionRunner(threads: 2, memoryBytes: 96 << 20)
        let spin = try module("(module (memory (export \"memory\") 1) (func (export \"_start\") (loop $l (br $l))))")
        let hello = try module(Self.writer("Status: 204\n\n"))
        func invocation(timeoutMs: Int, memory: Int) -> Invocation {
            Invocation(arguments: ["fn"], environment: [], stdin: [], timeoutMs: timeoutMs, memoryLimitBytes: memory, maxOutputBytes: 1 << 20)
        }
        // A 64 MB call spinning to its 600 ms deadline holds 64 of the 96 MB.
        let spinning = Task { try await small.run(spin, invocation(timeoutMs: 600, memory: 64 << 20)) }
        while small.memory.admittedBytes == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // 32 MB fits beside it.
        let beside = try await small.run(hello, invocation(timeoutMs: 1_000, memory: 32 << 20)).result.get().status
        XCTAssertEqual(beside, 204)
        // 64 MB more does not: it gives up at its own 100 ms deadline.
        do {
            _ = try await small.run(hello, invocation(timeoutMs: 100, memory: 64 << 20))
            XCTFail("admitted past the node's budget")
        } catch {
            XCTAssertEqual(error.code, "MB875")
            XCTAssertEqual(error.status, 503)
        }
        // With a longer deadline it waits for the spinning call to end, then runs.
        let waited = try await small.run(hello, invocation(timeoutMs: 3_000, memory: 64 << 20)).result.get().status
        XCTAssertEqual(waited, 204)
        let spun = try await spinning.value
        XCTAssertEqual(code(spun), "MB864")
        XCTAssertEqual(small.memory.admittedBytes, 0, "every call gave its memory back")
        do {
            _ = try await small.run(hello, invocation(timeoutMs: 100, memory: 128 << 20))
            XCTFail("a limit over the whole budget was admitted")
        } catch {
            XCTAssertEqual(error.code, "MB875")
        }
        await small.shutdown()
    }

    /// The parsed modules of every tenant share one bound in bytes; the least recently used go.
    func testTheModuleCacheIsBoundedInBytesForTheNode() throws {
        let one = try module(Self.writer("Status: 200\n\n"))
        let cache = FunctionModuleCache(maxBytes: one.sizeBytes * 2)
        cache.insert(one, tenant: "a", key: "f@1@x")
        cache.insert(one, tenant: "b", key: "f@1@x")
        XCTAssertNotNil(cache.module(tenant: "a", key: "f@1@x"), "a's is now the most recently used")
        cache.insert(one, tenant: "b", key: "g@1@y")
        XCTAssertNotNil(cache.module(tenant: "a", key: "f@1@x"))
        XCTAssertNil(cache.module(tenant: "b", key: "f@1@x"), "the least recently used went")
        XCTAssertEqual(cache.bytes, one.sizeBytes * 2)
        XCTAssertEqual(cache.count(tenant: "b"), 1)
        cache.forget(tenant: "b", keyPrefix: "g@")
        XCTAssertEqual(cache.count(tenant: "b"), 0)
        XCTAssertNil(cache.module(tenant: "a", key: "g@1@y"), "tenants never see each other's modules")
        let tiny = FunctionModuleCache(maxBytes: one.sizeBytes - 1)
        tiny.insert(one, tenant: "a", key: "f@1@x")
        XCTAssertNil(tiny.module(tenant: "a", key: "f@1@x"), "a module larger than the bound is not kept")
        XCTAssertEqual(tiny.bytes, 0)
    }
}
