import CCrypt
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOPosix

/// bcrypt (`$2b$`, cost 10 or more) through libxcrypt. Hashing takes tens of milliseconds on
/// purpose, so it runs on NIO's blocking pool rather than on a cooperative thread that other
/// tenants' requests need.
public struct PasswordHasher: Sendable {
    public let cost: Int
    /// bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated.
    public static let maxPasswordBytes = 72

    public init(cost: Int = 10) {
        precondition((4...31).contains(cost))
        self.cost = cost
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive {
            try Self.crypt(password, setting: Self.newSetting(cost: cost))
        }
    }

    /// Compares in constant time. An unknown account is checked against `placeholder` so that
    /// answering "no such user" takes as long as "wrong password".
    public func verify(_ password: String, against stored: String?) async throws -> Bool {
        let cost = self.cost
        let equal = try await NIOThreadPool.singleton.runIfActive {
            let target = try stored ?? Self.placeholder(cost: cost)
            let computed = try Self.crypt(password, setting: Array(target.utf8CString))
            return Self.constantTimeEquals(Array(computed.utf8), Array(target.utf8))
        }
        return equal && stored != nil
    }

    /// A real hash, at this cost, of a random password nobody knows; made once per cost.
    private static func placeholder(cost: Int) throws -> String {
        if let known = placeholders.withLockedValue({ $0[cost] }) { return known }
        let made = try crypt(UUID().uuidString, setting: newSetting(cost: cost))
        placeholders.withLockedValue { $0[cost] = made }
        return made
    }
    private static let placeholders = NIOLockedValueBox<[Int: String]>([:])

    /// A fresh `$2b$` salt; a nil random-bytes argument makes libxcrypt draw it from the kernel.
    private static func newSetting(cost: Int) throws -> [CChar] {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn("$2b$", UInt(cost), nil, 0, &setting, Int32(setting.count)) != nil else {
            throw PasswordHasherError.failed
        }
        return setting
    }

    private static func crypt(_ password: String, setting: [CChar]) throws -> String {
        var data = crypt_data()
        let result = password.withCString { phrase in
            setting.withUnsafeBufferPointer { setting in
                withUnsafeMutableBytes(of: &data) { raw in
                    crypt_rn(phrase, setting.baseAddress, raw.baseAddress, Int32(raw.count)).map { String(cString: $0) }
                }
            }
        }
        // libxcrypt marks failure with a string starting with '*' rather than a nil in some modes.
        guard let result, !result.hasPrefix("*") else { throw PasswordHasherError.failed }
        return result
    }

    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

public enum PasswordHasherError: Error, CustomStringConvertible {
    case failed
    public var description: String { "password hashing failed" }
}
