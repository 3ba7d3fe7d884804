import Foundation
import XCTest
@testable import Functions

/// JavaScript functions in QuickJS (skipped with a failure naming the file when the pinned module
/// has not been fetched: `python3 scripts/lib/fetch_quickjs.py .`).
final class JavaScriptFunctionTests: XCTestCase {
    static let runner = FunctionRunner(threads: 2)

    func invocation(_ body: String, timeoutMs: Int = 30_000) -> Invocation {
        Invocation(
            arguments: [], environment: ["REQUEST_METHOD=POST", "X_FULL_URL=http://localhost/functions/v1/f", "CONTENT_TYPE=application/json", "GREETING=hi"],
            stdin: Array(body.utf8), timeoutMs: timeoutMs, memoryLimitBytes: 64 << 20, maxOutputBytes: 1 << 20)
    }

    func testAHandlerAnswersAndWarmCallsAreTimed() async throws {
        let module = try FunctionModule(
            javaScript: Array(#"Deno.serve(async (req) => Response.json({ hi: (await req.json()).name, g: Deno.env.get("GREETING") }))"#.utf8),
            maxBytes: 1 << 20)
        var durations: [Double] = []
        for round in 0..<6 {
            let outcome = try await Self.runner.run(module, invocation(#"{"name":"ada"}"#))
            let response = try outcome.result.get()
            XCTAssertEqual(response.status, 200, "round \(round): \(outcome.stderr)")
            XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String], ["hi": "ada", "g": "hi"])
            durations.append(outcome.durationMs)
        }
        print("JavaScript call durations (ms), first cold: \(durations.map { String(format: "%.1f", $0) })")
    }

    /// The call's variables are written into the script as a JSON object: every value must stay
    /// one string literal, whatever it holds (quotes, newlines, U+2028, control characters).
    func testVariablesAreQuotedAsJavaScriptLiterals() throws {
        let hostile = "a\"b\\c\nd\u{2028}e\u{1}f</script>"
        let script = DenoShim.script(for: "", environment: ["X=\(hostile)", "NOEQUALS", "EMPTY="])
        let line = try XCTUnwrap(script.split(separator: "\n").first)
        XCTAssertEqual(line, #"const __mbEnviron = {"X":"a\"b\\c\nd\u2028e\u0001f</script>","EMPTY":""};"#)
        let json = try XCTUnwrap(line.dropFirst("const __mbEnviron = ".count).dropLast().data(using: .utf8))
        XCTAssertEqual(try JSONSerialization.jsonObject(with: json) as? [String: String], ["X": hostile, "EMPTY": ""])
    }
}
