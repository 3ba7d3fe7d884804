import Foundation
import Runtime
import Tenancy
import XCTest

@testable import Storage

final class StorageURLSignerTests: XCTestCase {
    let ring = TenantKeyRing(slug: "acme", secrets: [(kid: "k1", secret: TenantKeyRing.newSecret())])

    func testTokensSignOneObjectForOnePurposeUntilTheyExpire() throws {
        let signer = StorageURLSigner(keyRing: ring)
        let now = Date()
        let token = signer.sign(url: "docs/a.txt", purpose: .download, expiresIn: 60, now: now)
        XCTAssertNoThrow(try signer.verify(token, url: "docs/a.txt", purpose: .download, now: now))
        XCTAssertThrowsError(try signer.verify(token, url: "docs/b.txt", purpose: .download, now: now))
        XCTAssertThrowsError(try signer.verify(token, url: "docs/a.txt", purpose: .upload, now: now))
        // Exact expiry: one second past is too late, with no leeway.
        XCTAssertThrowsError(try signer.verify(token, url: "docs/a.txt", purpose: .download, now: now.addingTimeInterval(61)))
    }

    /// A URL token is signed with a key derived for URLs only: it never verifies as an API token,
    /// and an API token never verifies as a URL token.
    func testURLTokensAndAPITokensAreNeverInterchangeable() {
        let signer = StorageURLSigner(keyRing: ring)
        let token = signer.sign(url: "docs/a.txt", purpose: .download, expiresIn: 60)
        XCTAssertThrowsError(try ring.verify(token))
        let apiToken = ring.sign(["url": "docs/a.txt", "purpose": "download", "exp": .integer(Int64(Date().timeIntervalSince1970) + 60)])
        XCTAssertThrowsError(try signer.verify(apiToken, url: "docs/a.txt", purpose: .download))
    }
}
