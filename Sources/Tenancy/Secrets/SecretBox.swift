import Crypto
import Foundation

/// Seals secrets at rest with AES-256-GCM under the node's master key. Every ciphertext is bound to
/// the place it belongs (`context`, e.g. "tenant:acme:jwt:k1") as associated data, so a sealed value
/// copied into another row does not open.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    public init(masterKey: SymmetricKey) {
        self.key = masterKey
    }

    public func seal(_ plaintext: some DataProtocol, context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw SecretBoxError.sealFailed }
        return Self.version + Array(combined)
    }

    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        guard sealed.count > Self.version.count + 28, Array(sealed.prefix(Self.version.count)) == Self.version else {
            throw SecretBoxError.malformed
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.dropFirst(Self.version.count))
            return Array(try AES.GCM.open(box, using: key, authenticating: Data(context.utf8)))
        } catch {
            throw SecretBoxError.authenticationFailed
        }
    }

    /// A format tag in front of each ciphertext so the scheme can change without guessing.
    private static let version: [UInt8] = Array("mb1:".utf8)
}

public enum SecretBoxError: Error, CustomStringConvertible {
    case sealFailed, malformed, authenticationFailed
    public var description: String {
        switch self {
        case .sealFailed: "sealing a secret failed"
        case .malformed: "a stored secret is malformed"
        case .authenticationFailed: "a stored secret does not open with this master key (wrong key or tampered data)"
        }
    }
}
