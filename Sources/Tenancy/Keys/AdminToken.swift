import Crypto
import Foundation
import Runtime

/// The node's admin token. Only its SHA-256 digest is stored; the token is high-entropy, so a slow
/// password hash adds nothing. Comparison is constant-time.
public struct AdminToken: Sendable {
    public let digest: [UInt8]

    public init(digest: [UInt8]) { self.digest = digest }
    public init(token: String) { self.digest = Self.hash(token) }

    public static func generate() -> String {
        "mbadm_" + Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    public static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }

    public func matches(_ presented: String) -> Bool {
        let candidate = Self.hash(presented)
        guard candidate.count == digest.count else { return false }
        var difference: UInt8 = 0
        for index in digest.indices { difference |= digest[index] ^ candidate[index] }
        return difference == 0
    }

    public var hexDigest: String { Hex.encode(digest) }

    public init?(hexDigest: String) {
        let chars = Array(hexDigest.utf8)
        guard chars.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: chars[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.digest = bytes
    }
}
