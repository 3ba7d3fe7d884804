import Crypto
import Foundation
import Tenancy

/// Signatures per the Standard Webhooks specification: `webhook-id`, `webhook-timestamp` (Unix
/// seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`, one
/// per secret, space-separated while a rotated secret still co-signs. Secrets are `whsec_` and
/// the base64 of their bytes; receivers verify with any Standard Webhooks library.
public struct WebhookSigner: Sendable {
    public let secrets: [[UInt8]]

    public init(secrets: [[UInt8]]) {
        self.secrets = secrets
    }

    /// The signer of stored secrets: the sealed ones not yet retired, opened (a rotated-out secret
    /// co-signs until `retiresAt`).
    public init(opening sealed: [SealedWebhookSecret], context: String, secretBox: SecretBox, now: Date = Date()) throws {
        let live = sealed.filter { secret in secret.retiresAt.map { $0 > now } ?? true }
        self.init(secrets: try live.map { try secretBox.open($0.sealed, context: context) })
    }

    /// A new secret as the admin API shows it once, and sealed for the store.
    public static func newSealedSecret(context: String, secretBox: SecretBox) throws -> (shown: String, sealed: SealedWebhookSecret) {
        let secret = newSecret()
        return (secret, SealedWebhookSecret(sealed: try secretBox.seal(decode(secret) ?? [], context: context), retiresAt: nil))
    }

    /// From `whsec_…` texts; nil when one is not a secret.
    public init?(encoded: [String]) {
        var secrets: [[UInt8]] = []
        for text in encoded {
            guard let bytes = Self.decode(text) else { return nil }
            secrets.append(bytes)
        }
        self.init(secrets: secrets)
    }

    /// A new 32-byte secret, as shown once to its owner.
    public static func newSecret() -> String {
        "whsec_" + Data(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }).base64EncodedString()
    }

    public static func decode(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("whsec_"), let data = Data(base64Encoded: String(text.dropFirst(6))), !data.isEmpty else { return nil }
        return Array(data)
    }

    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        let content = Array("\(id).\(timestamp).".utf8) + body
        return secrets.map { secret in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: secret))).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The three headers of a signed request.
    public func headers(id: String, timestamp: Int64, body: [UInt8]) -> [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature(id: id, timestamp: timestamp, body: body))]
    }
}
