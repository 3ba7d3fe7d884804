import Crypto
import Foundation
import NIOCore
import XCTest

@testable import Storage

/// AWS's published Signature Version 4 examples for S3 (Authenticating Requests, "Examples"):
/// the same secret, dates and requests, and the signatures AWS documents for them.
final class SigV4Tests: XCTestCase {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    let signedAt = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func lookup(_ id: String) -> String? { id == "AKIAIOSFODNN7EXAMPLE" ? secret : nil }

    func testGetObjectExampleVerifies() async throws {
        var headers = [
            "host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9", "x-amz-content-sha256": SigV4.emptyHash, "x-amz-date": "20130524T000000Z",
        ]
        headers["authorization"] =
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        let request = SigV4.Request(method: "GET", rawPath: "/test.txt", rawQuery: "", headers: headers)
        let verified = try await SigV4.verify(request, now: signedAt) { lookup($0) }
        XCTAssertEqual(verified.accessKeyID, "AKIAIOSFODNN7EXAMPLE")
        // One byte of the signature different, a wrong secret, an altered header: refused.
        var tampered = request
        tampered.headers["range"] = "bytes=0-10"
        await assertRefused("SignatureDoesNotMatch") { _ = try await SigV4.verify(tampered, now: self.signedAt) { self.lookup($0) } }
        await assertRefused("SignatureDoesNotMatch") { _ = try await SigV4.verify(request, now: self.signedAt) { _ in "not the secret" } }
        await assertRefused("InvalidAccessKeyId") { _ = try await SigV4.verify(request, now: self.signedAt) { _ in nil } }
        await assertRefused("RequestTimeTooSkewed") { _ = try await SigV4.verify(request, now: self.signedAt.addingTimeInterval(3600)) { self.lookup($0) } }
    }

    func testPresignedExampleVerifiesUntilItExpires() async throws {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        let request = SigV4.Request(method: "GET", rawPath: "/test.txt", rawQuery: query, headers: ["host": "examplebucket.s3.amazonaws.com"])
        let verified = try await SigV4.verify(request, now: signedAt.addingTimeInterval(3600)) { lookup($0) }
        XCTAssertTrue(verified.presigned)
        await assertRefused("AccessDenied") { _ = try await SigV4.verify(request, now: self.signedAt.addingTimeInterval(86_401)) { self.lookup($0) } }
    }

    func testChunkedUploadExampleVerifiesAndDecodesInAnySplit() async throws {
        let headers = [
            "content-encoding": "aws-chunked", "content-length": "66824", "host": "s3.amazonaws.com",
            "x-amz-content-sha256": SigV4.streamingSigned, "x-amz-date": "20130524T000000Z", "x-amz-decoded-content-length": "66560",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "authorization":
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        ]
        let request = SigV4.Request(method: "PUT", rawPath: "/examplebucket/chunkObject.txt", rawQuery: "", headers: headers)
        let verified = try await SigV4.verify(request, now: signedAt) { lookup($0) }
        var body: [UInt8] = Array("10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n".utf8)
        body += Array(repeating: UInt8(ascii: "a"), count: 65_536)
        body += Array("\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n".utf8)
        body += Array(repeating: UInt8(ascii: "a"), count: 1024)
        body += Array("\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n".utf8)
        XCTAssertEqual(body.count, 66_824)
        for size in [1, 7, 1000, 65_536, body.count] {
            var decoder = AWSChunkedDecoder(signing: .init(verified: verified))
            var data: [UInt8] = []
            var offset = 0
            while offset < body.count {
                for piece in try decoder.feed(ByteBuffer(bytes: body[offset..<min(body.count, offset + size)])) { data += piece.readableBytesView }
                offset += size
            }
            XCTAssertTrue(decoder.isDone, "pieces of \(size)")
            XCTAssertEqual(data, Array(repeating: UInt8(ascii: "a"), count: 66_560), "pieces of \(size)")
        }
        // One byte of content changed: the chunk's signature no longer matches.
        var altered = body
        altered[200] = UInt8(ascii: "b")
        var decoder = AWSChunkedDecoder(signing: .init(verified: verified))
        XCTAssertThrowsError(try decoder.feed(ByteBuffer(bytes: altered))) { error in
            XCTAssertEqual((error as? S3Error)?.code, "SignatureDoesNotMatch")
        }
    }

    func testSigningAndVerifyingAgree() async throws {
        let now = Date()
        let amzDate = SigV4.amzDate(now)
        var request = SigV4.Request(
            method: "PUT", rawPath: "/t/acme/storage/v1/s3/bucket/a%20b/%C3%A9.txt", rawQuery: "partNumber=1&uploadId=x%2By",
            headers: ["host": "127.0.0.1:8080", "x-amz-date": amzDate, "x-amz-content-sha256": SigV4.unsignedPayload])
        request.headers["authorization"] = SigV4.authorization(
            request, accessKeyID: "AKID", secret: "s3cr3t", region: "eu-west-3", amzDate: amzDate, payloadHash: SigV4.unsignedPayload)
        let verified = try await SigV4.verify(request, now: now) { $0 == "AKID" ? "s3cr3t" : nil }
        XCTAssertEqual(verified.payloadHash, SigV4.unsignedPayload)
    }

    func testDeclaredDigestsAreChecked() throws {
        let data = Array("The quick brown fox jumps over the lazy dog".utf8)
        XCTAssertEqual(String(CRC32.ieee(data), radix: 16), "414fa339")
        XCTAssertEqual(String(CRC32.castagnoli(data), radix: 16), "22620404")
        var good = try BodyChecksums(
            payloadHash: SigV4.hex(SHA256.hash(data: data)), contentMD5: Data(Insecure.MD5.hash(data: data)).base64EncodedString(),
            checksumHeaders: ["x-amz-checksum-crc32": BodyChecksums.base64(CRC32.ieee(data))])
        data.withUnsafeBytes { good.update($0) }
        XCTAssertNoThrow(try good.verify())
        var bad = try BodyChecksums(payloadHash: nil, contentMD5: nil, checksumHeaders: ["x-amz-checksum-crc32c": BodyChecksums.base64(1)])
        data.withUnsafeBytes { bad.update($0) }
        XCTAssertThrowsError(try bad.verify()) { error in XCTAssertEqual((error as? S3Error)?.code, "BadDigest") }
        var wrongSHA = try BodyChecksums(payloadHash: String(repeating: "0", count: 64), contentMD5: nil, checksumHeaders: [:])
        data.withUnsafeBytes { wrongSHA.update($0) }
        XCTAssertThrowsError(try wrongSHA.verify()) { error in XCTAssertEqual((error as? S3Error)?.code, "XAmzContentSHA256Mismatch") }
    }

    private func assertRefused(_ code: String, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void) async {
        do {
            try await body()
            XCTFail("expected \(code)", file: file, line: line)
        } catch {
            XCTAssertEqual((error as? S3Error)?.code, code, "\(error)", file: file, line: line)
        }
    }
}
