import XCTest

@testable import Storage

final class StorageNamesTests: XCTestCase {
    func testObjectNamesAcceptUTF8AndFolders() throws {
        XCTAssertEqual(try StorageNames.object("folder/sub/ünïcødé 名前.png"), "folder/sub/ünïcødé 名前.png")
        XCTAssertEqual(try StorageNames.object(".emptyFolderPlaceholder"), ".emptyFolderPlaceholder")
        XCTAssertEqual(try StorageNames.object("a..b/c."), "a..b/c.")
    }

    func testObjectNamesRefuseDotSegmentsEmptySegmentsControlsAndLength() {
        for bad in ["", "..", ".", "a/../b", "a/./b", "a//b", "/a", "a/", "a\u{0}b", "line\nbreak", "tab\there", String(repeating: "é", count: 513)] {
            XCTAssertThrowsError(try StorageNames.object(bad), "\(bad.debugDescription) should be refused") { error in
                XCTAssertEqual((error as? StorageError)?.code, "InvalidKey")
                XCTAssertEqual((error as? StorageError)?.status, 400)
            }
        }
        XCTAssertNoThrow(try StorageNames.object(String(repeating: "a", count: 1024)))
        XCTAssertThrowsError(try StorageNames.object(String(repeating: "a", count: 1025)))
    }

    func testBucketNames() {
        XCTAssertNoThrow(try StorageNames.bucket("avatars"))
        XCTAssertNoThrow(try StorageNames.bucket("my-bucket_2.0"))
        for bad in ["", ".", "..", "a/b", "a b", "naïve", String(repeating: "b", count: 101)] {
            XCTAssertThrowsError(try StorageNames.bucket(bad), bad) { error in
                XCTAssertEqual((error as? StorageError)?.code, "InvalidBucketName")
            }
        }
    }

    func testRanges() throws {
        XCTAssertEqual(try ByteRange.parse("bytes=0-9", size: 100), ByteRange(start: 0, end: 9))
        XCTAssertEqual(try ByteRange.parse("bytes=90-", size: 100), ByteRange(start: 90, end: 99))
        XCTAssertEqual(try ByteRange.parse("bytes=-10", size: 100), ByteRange(start: 90, end: 99))
        XCTAssertEqual(try ByteRange.parse("bytes=-500", size: 100), ByteRange(start: 0, end: 99))
        XCTAssertEqual(try ByteRange.parse("bytes=50-500", size: 100), ByteRange(start: 50, end: 99))
        // Not a byte range, or several: the whole object.
        XCTAssertNil(try ByteRange.parse(nil, size: 100))
        XCTAssertNil(try ByteRange.parse("items=0-1", size: 100))
        XCTAssertNil(try ByteRange.parse("bytes=0-1,5-6", size: 100))
        XCTAssertNil(try ByteRange.parse("bytes=9-3", size: 100))
        XCTAssertNil(try ByteRange.parse("bytes=x-3", size: 100))
        for unsatisfiable in ["bytes=100-", "bytes=200-300", "bytes=-0"] {
            XCTAssertThrowsError(try ByteRange.parse(unsatisfiable, size: 100)) { error in
                XCTAssertEqual((error as? StorageError)?.status, 416)
            }
        }
        XCTAssertThrowsError(try ByteRange.parse("bytes=0-", size: 0))
    }
}
