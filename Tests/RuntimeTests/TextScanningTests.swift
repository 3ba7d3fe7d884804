import XCTest
@testable import Runtime

final class TextScanningTests: XCTestCase {
    func testByteSearchAndTrimming() {
        XCTAssertTrue("application/vnd.pgrst.object+json".containsBytes("pgrst.object"))
        XCTAssertFalse("application/json".containsBytes("csv"))
        XCTAssertTrue("anything".containsBytes(""))
        XCTAssertFalse("ab".containsBytes("abc"), "a needle longer than the text")
        XCTAssertTrue("aab".containsBytes("ab"), "a partial match does not hide the real one")
        let key = "details->>lang"
        let arrow = key.rangeOfBytes("->")
        XCTAssertEqual(arrow.map { String(key[..<$0.lowerBound]) }, "details")
        XCTAssertEqual(arrow.map { String(key[$0.upperBound...]) }, ">lang")
        XCTAssertNil("naïve".rangeOfBytes("->"))
        XCTAssertEqual("é->x".rangeOfBytes("->").map { String("é->x"[$0.upperBound...]) }, "x", "after multi-byte characters")
        XCTAssertEqual("  \tBearer abc \t".trimmingSpaces, "Bearer abc")
        XCTAssertEqual("   ".trimmingSpaces, "")
        XCTAssertEqual(Hex.encode([0x00, 0x0f, 0xa5, 0xff]), "000fa5ff")
    }
}
