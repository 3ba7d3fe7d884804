import NIOCore
import XCTest

@testable import Storage

final class MultipartFormReaderTests: XCTestCase {
    let body = Array(
        ("--XyZ\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: image/png\r\n\r\n").utf8)
        // A near-miss of the delimiter inside the content must come out as content.
        + Array(0...255).map(UInt8.init) + Array("\r\n--XyQ".utf8) + Array(0...9).map { _ in UInt8(ascii: "-") }
        + Array("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n".utf8)

    /// Whatever the piece sizes, the file's bytes come out whole and in order, the fields are
    /// read, and the type is known before the first byte.
    func testAnySplitOfTheBodyGivesTheSameFileAndFields() throws {
        let expectedFile = Array(0...255).map(UInt8.init) + Array("\r\n--XyQ".utf8) + Array(repeating: UInt8(ascii: "-"), count: 10)
        for size in [1, 2, 3, 5, 7, 16, 64, 100, 1000, body.count] {
            let reader = MultipartFormReader(boundary: "XyZ")
            var file: [UInt8] = []
            var started: [String?] = []
            var ended = 0
            var offset = 0
            while offset < body.count {
                let piece = ByteBuffer(bytes: body[offset..<min(body.count, offset + size)])
                offset += size
                for event in try reader.feed(piece) {
                    switch event {
                    case .fileStarted(let type):
                        XCTAssertTrue(file.isEmpty)
                        started.append(type)
                    case .fileBytes(let bytes): file += bytes.readableBytesView
                    case .fileEnded: ended += 1
                    }
                }
            }
            XCTAssertEqual(started, ["image/png"], "pieces of \(size)")
            XCTAssertEqual(ended, 1, "pieces of \(size)")
            XCTAssertEqual(file, expectedFile, "pieces of \(size)")
            XCTAssertEqual(reader.fields["cacheControl"], "3600")
            XCTAssertEqual(reader.fields["metadata"], "{\"a\":1}")
        }
    }

    func testBoundaryComesFromTheContentType() throws {
        XCTAssertEqual(try MultipartFormReader.boundary(contentType: "multipart/form-data; boundary=abc"), "abc")
        XCTAssertEqual(try MultipartFormReader.boundary(contentType: "multipart/form-data; charset=utf-8; boundary=\"a b\""), "a b")
        for bad in ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\"\""] {
            XCTAssertThrowsError(try MultipartFormReader.boundary(contentType: bad), bad)
        }
    }

    /// Headers that never end, or a field without bound, are refused instead of held.
    func testEndlessHeadersAndHugeFieldsAreRefused() throws {
        let reader = MultipartFormReader(boundary: "b")
        _ = try reader.feed(ByteBuffer(string: "--b\r\nContent-Disposition: form-data; name=\"x\"; junk="))
        let junk = ByteBuffer(bytes: Array(repeating: UInt8(ascii: "j"), count: 16 << 10))
        XCTAssertThrowsError(try { for _ in 0..<8 { _ = try reader.feed(junk) } }())

        let fields = MultipartFormReader(boundary: "b")
        _ = try fields.feed(ByteBuffer(string: "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"))
        XCTAssertThrowsError(try { for _ in 0..<8 { _ = try fields.feed(junk) } }()) { error in
            XCTAssertEqual((error as? StorageError)?.code, "InvalidRequest")
        }
    }
}
