import Crypto
import Foundation
import NIOCore
import XCTest

@testable import Storage

final class LocalBlobStoreTests: XCTestCase {
    var root: String!

    override func setUp() {
        root = NSTemporaryDirectory() + "blobs-" + UUID().uuidString
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: root)
    }

    func testWrittenBlobIsVisibleOnlyAfterCommitAndReadsBackInRanges() async throws {
        try await writeAndReadBack(PosixFileIO())
    }

    func testTheSameThroughIOURing() async throws {
        let made = UringFileIO.make()
        guard let uring = made.io else {
            // Not skipped silently: a kernel that refuses io_uring is a fact worth failing on here,
            // where it has always been available; the node itself falls back to POSIX.
            return XCTFail("io_uring refused (errno \(made.error))")
        }
        try await writeAndReadBack(uring)
    }

    func writeAndReadBack(_ io: any BlobFileIO) async throws {
        let store = try LocalBlobStore(root: root + "-" + io.name, io: io)
        let writer = try await store.create(tenant: "acme")
        let bytes = (0..<300_000).map { UInt8($0 % 251) }
        for start in stride(from: 0, to: bytes.count, by: 65_536) {
            try await writer.append(ByteBuffer(bytes: bytes[start..<min(bytes.count, start + 65_536)]))
        }
        await assertThrowsNotFound { _ = try await store.open(writer.key) }
        let md5 = try await writer.commit()
        XCTAssertEqual(md5, Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined())
        let reader = try await store.open(writer.key)
        XCTAssertEqual(reader.size, bytes.count)
        let middle = try await reader.read(offset: 1000, length: 5000)
        XCTAssertEqual(Array(middle.readableBytesView), Array(bytes[1000..<6000]))
        let tail = try await reader.read(offset: bytes.count - 10, length: 100)
        XCTAssertEqual(tail.readableBytes, 10)
        await reader.close()
        await store.delete(writer.key)
        await assertThrowsNotFound { _ = try await store.open(writer.key) }
    }

    func testAbortLeavesNothingAndKeysThatAreNotOursNeverTouchDisk() async throws {
        let store = try LocalBlobStore(root: root, io: PosixFileIO())
        let writer = try await store.create(tenant: "acme")
        try await writer.append(ByteBuffer(string: "half an upload"))
        await writer.abort()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/.tmp"), [])
        for crafted in ["../../etc/passwd", "acme/../../x", "/etc/passwd", "acme/ab", ".tmp/x/y"] {
            await assertThrowsNotFound { _ = try await store.open(crafted) }
        }
    }

    /// After a crash: temporary files and blobs no row points at are removed once old enough;
    /// young ones may be uploads in flight and stay; blobs with rows always stay.
    func testSweepRemovesOldOrphansOnly() async throws {
        let store = try LocalBlobStore(root: root, io: PosixFileIO())
        func blob(_ text: String) async throws -> String {
            let writer = try await store.create(tenant: "acme")
            try await writer.append(ByteBuffer(string: text))
            _ = try await writer.commit()
            return writer.key
        }
        let kept = try await blob("kept"), orphan = try await blob("orphan"), young = try await blob("young")
        let interrupted = try await store.create(tenant: "acme")
        try await interrupted.append(ByteBuffer(string: "cut off by kill -9"))
        let old = Date(timeIntervalSinceNow: -7200)
        let temporary: [String] = try FileManager.default.contentsOfDirectory(atPath: root + "/.tmp").map { "\(root!)/.tmp/\($0)" }
        let aged: [String] = ["\(root!)/\(kept)", "\(root!)/\(orphan)"] + temporary
        for path in aged {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: path)
        }
        let removed = try await store.sweep(keeping: [kept], olderThan: .seconds(3600))
        XCTAssertEqual(removed, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/" + kept))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/" + young))
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/" + orphan))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/.tmp"), [])
    }

    func testUnwritableDirectoryIsRefusedWithItsCode() throws {
        XCTAssertThrowsError(try LocalBlobStore(root: "/proc/minibaas-storage", io: PosixFileIO()))
    }

    private func assertThrowsNotFound(_ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            try await body()
            XCTFail("expected NoSuchKey", file: file, line: line)
        } catch {
            XCTAssertEqual((error as? StorageError)?.code, "NoSuchKey", file: file, line: line)
        }
    }
}
