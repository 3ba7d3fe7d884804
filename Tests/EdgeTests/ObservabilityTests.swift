import Runtime
import XCTest
@testable import Edge

/// The parts of tracing and error reporting that need no collector: DSNs, W3C trace headers,
/// what is blanked from a report, and how a supervisor's problems are tagged.
final class ObservabilityTests: XCTestCase {
    func testSentryDSNsNameTheirEnvelopeEndpoint() throws {
        XCTAssertEqual(try SentryDSN("https://abc123@o1.ingest.sentry.io/4505").envelopeURL, "https://o1.ingest.sentry.io/api/4505/envelope/")
        XCTAssertEqual(try SentryDSN("https://abc123@o1.ingest.sentry.io/4505").publicKey, "abc123")
        XCTAssertEqual(try SentryDSN("http://key@127.0.0.1:9000/sentry/42").envelopeURL, "http://127.0.0.1:9000/sentry/api/42/envelope/")
        for bad in ["", "not a dsn", "http://127.0.0.1/42", "ftp://k@h/1", "https://k@h/", "https://k@/1", "https://k@h/a%20b"] {
            XCTAssertThrowsError(try SentryDSN(bad), bad)
        }
    }

    func testTraceparentIsParsedAsW3CSays() {
        let trace = String(repeating: "a1", count: 16), span = String(repeating: "b2", count: 8)
        XCTAssertEqual(RequestTrace.parse("00-\(trace)-\(span)-01")?.traceID, trace)
        XCTAssertEqual(RequestTrace.parse("00-\(trace.uppercased())-\(span)-00")?.spanID, span)
        XCTAssertNil(RequestTrace.parse("00-\(String(repeating: "0", count: 32))-\(span)-01"), "all-zero trace id")
        XCTAssertNil(RequestTrace.parse("00-\(trace)-0000000000000000-01"), "all-zero parent id")
        XCTAssertNil(RequestTrace.parse("ff-\(trace)-\(span)-01"), "version ff")
        XCTAssertNil(RequestTrace.parse("00-\(trace.dropLast())-\(span)-01"))
        XCTAssertNil(RequestTrace.parse("00-\(trace)-\(span)"))
        XCTAssertNil(RequestTrace.parse("00-zz\(trace.dropFirst(2))-\(span)-01"))
    }

    func testReportsBlankSecrets() {
        let message = "cannot connect to postgresql://app:hunter2@db:5432/x with apikey=eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl and password: swordfish"
        let scrubbed = SentryReporter.scrub(message)
        for secret in ["hunter2", "eyJhbGci", "swordfish"] { XCTAssertFalse(scrubbed.contains(secret), scrubbed) }
        XCTAssertTrue(scrubbed.contains("postgresql://app:***@db:5432/x"), scrubbed)
        XCTAssertEqual(SentryReporter.scrub(String(repeating: "x", count: 5000)).count, 1024)
    }

    func testSupervisorProblemsNameTheirTenant() {
        XCTAssertEqual(ProblemReports.tags(supervisor: "tenant:acme:data"), ["supervisor": "tenant:acme:data", "tenant": "acme", "subsystem": "data"])
        XCTAssertEqual(ProblemReports.tags(supervisor: "node"), ["supervisor": "node"])
    }

    func testAReportReachesTheInstalledSinkOnly() {
        let seen = Counted()
        ProblemReports.report(Problem(kind: "before", message: "dropped"))
        ProblemReports.install { problem in seen.add(problem.kind) }
        ProblemReports.report(Problem(kind: "supervisor.child_failed", message: "x"))
        ProblemReports.install(nil)
        ProblemReports.report(Problem(kind: "after", message: "dropped"))
        XCTAssertEqual(seen.kinds, ["supervisor.child_failed"])
    }

    func testLogMetadataKeysSetOneByOneReadBackAsADictionary() {
        var handler = StderrLogHandler(label: "test", level: .error, metadataProvider: nil)
        handler.metadata = ["node": "n1"]
        handler[metadataKey: "tenant"] = "acme"
        handler[metadataKey: "role"] = "anon"
        handler[metadataKey: "role"] = "service_role"
        var copy = handler
        copy[metadataKey: "tenant"] = nil
        XCTAssertEqual(handler.metadata, ["node": "n1", "tenant": "acme", "role": "service_role"])
        XCTAssertEqual(copy.metadata, ["node": "n1", "role": "service_role"], "a copy's keys are its own")
        XCTAssertNil(copy[metadataKey: "tenant"])
        XCTAssertEqual(handler[metadataKey: "node"], "n1")
        for round in 0..<1_000 { handler[metadataKey: "round"] = "\(round)" }
        XCTAssertEqual(handler[metadataKey: "round"], "999")
        XCTAssertEqual(handler.metadata.count, 4, "re-setting one key does not pile up")
    }

    func testRequestIdentifiersAre32HexDigitsAndDistinct() {
        XCTAssertEqual(RequestIdentifier.format(high: 0xABC, low: 1), "0000000000000abc0000000000000001")
        XCTAssertEqual(RequestIdentifier.format(high: .max, low: 0), "ffffffffffffffff0000000000000000")
        let ids = (0..<1_000).map { _ in RequestIdentifier.next() }
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertTrue(ids.allSatisfy { $0.utf8.count == 32 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } })
    }
}

private final class Counted: @unchecked Sendable {
    private let lock = Lock()
    private var seen: [String] = []
    func add(_ kind: String) { lock.withLock { seen.append(kind) } }
    var kinds: [String] { lock.withLock { seen } }
}
