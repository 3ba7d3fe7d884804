import Crypto
import Foundation

/// The digests an S3 client may declare for a body (`x-amz-content-sha256`, `Content-MD5`,
/// `x-amz-checksum-crc32|crc32c|sha1|sha256`), computed as the body streams and compared at its
/// end, before anything is committed.
public struct BodyChecksums: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable { case crc32, crc32c, sha1, sha256 }

    private var sha256: SHA256?
    private var md5: Insecure.MD5?
    private var sha1: Insecure.SHA1?
    private var crc32: UInt32?
    private var crc32c: UInt32?
    private let expectedSHA256: String?
    private let expectedMD5: String?
    private var expectedChecksum: (Algorithm, String)?

    /// `payloadHash`: the signed `x-amz-content-sha256` (hex), or a non-hash mode.
    public init(payloadHash: String?, contentMD5: String?, checksumHeaders: [String: String]) throws(S3Error) {
        if let payloadHash, payloadHash.count == 64, payloadHash.allSatisfy(\.isHexDigit) {
            expectedSHA256 = payloadHash.lowercased()
            sha256 = SHA256()
        } else {
            expectedSHA256 = nil
        }
        if let contentMD5 {
            guard let bytes = Data(base64Encoded: contentMD5), bytes.count == 16 else { throw .invalidArgument("Content-MD5 is not a base64 MD5 digest") }
            expectedMD5 = contentMD5
            md5 = Insecure.MD5()
        } else {
            expectedMD5 = nil
        }
        for algorithm in Algorithm.allCases {
            if let value = checksumHeaders["x-amz-checksum-\(algorithm.rawValue)"] { try expect(algorithm, value) }
        }
    }

    /// A checksum announced later (an aws-chunked trailer).
    public mutating func expect(_ algorithm: Algorithm, _ base64: String) throws(S3Error) {
        guard expectedChecksum == nil || expectedChecksum?.0 == algorithm else { throw .invalidRequest("only one x-amz-checksum-* may be given") }
        expectedChecksum = (algorithm, base64)
        switch algorithm {
        case .crc32: crc32 = crc32 ?? 0
        case .crc32c: crc32c = crc32c ?? 0
        case .sha1: sha1 = sha1 ?? Insecure.SHA1()
        case .sha256: if sha256 == nil { sha256 = SHA256() }
        }
    }

    /// A trailer may name its checksum before the body: start computing it from the first byte.
    public mutating func prepare(_ algorithm: Algorithm) {
        switch algorithm {
        case .crc32: crc32 = crc32 ?? 0
        case .crc32c: crc32c = crc32c ?? 0
        case .sha1: sha1 = sha1 ?? Insecure.SHA1()
        case .sha256: if sha256 == nil { sha256 = SHA256() }
        }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha256?.update(bufferPointer: bytes)
        md5?.update(bufferPointer: bytes)
        sha1?.update(bufferPointer: bytes)
        if let value = crc32 { crc32 = CRC32.update(value, bytes, table: CRC32.ieee) }
        if let value = crc32c { crc32c = CRC32.update(value, bytes, table: CRC32.castagnoli) }
    }

    /// Throws BadDigest (or XAmzContentSHA256Mismatch) when a declared digest differs.
    public func verify() throws(S3Error) {
        let sha = sha256?.finalize()
        if let expectedSHA256, let sha, SigV4.hex(sha) != expectedSHA256 {
            throw S3Error(status: 400, code: "XAmzContentSHA256Mismatch", message: "The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        if let expectedMD5, let md5, Data(md5.finalize()).base64EncodedString() != expectedMD5 {
            throw S3Error(status: 400, code: "BadDigest", message: "The Content-MD5 you specified did not match what we received.")
        }
        guard let (algorithm, expected) = expectedChecksum else { return }
        let actual: String
        switch algorithm {
        case .crc32: actual = Self.base64(crc32 ?? 0)
        case .crc32c: actual = Self.base64(crc32c ?? 0)
        case .sha1: actual = Data(sha1!.finalize()).base64EncodedString()
        case .sha256: actual = Data(sha!).base64EncodedString()
        }
        guard actual == expected else {
            throw S3Error.badDigest("The \(algorithm.rawValue.uppercased()) you specified did not match the calculated checksum.")
        }
    }

    static func base64(_ value: UInt32) -> String {
        Data([UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]).base64EncodedString()
    }
}

/// CRC-32 (IEEE, as zlib) and CRC-32C (Castagnoli), table-driven.
public enum CRC32 {
    static let ieee = table(0xEDB8_8320)
    static let castagnoli = table(0x82F6_3B78)

    static func table(_ polynomial: UInt32) -> [UInt32] {
        (0..<256).map { index in
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ polynomial : value >> 1 }
            return value
        }
    }

    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer, table: [UInt32]) -> UInt32 {
        var value = ~crc
        table.withUnsafeBufferPointer { table in
            for byte in bytes { value = table[Int((value ^ UInt32(byte)) & 0xFF)] ^ (value >> 8) }
        }
        return ~value
    }

    public static func ieee(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { update(0, $0, table: ieee) } }
    public static func castagnoli(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { update(0, $0, table: castagnoli) } }
}
