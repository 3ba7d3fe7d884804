import Crypto
import Foundation
import Runtime
import XCTest
@testable import Tenancy

final class HS256Tests: XCTestCase {
    let secret = Array(repeating: UInt8(7), count: 32)
    let other = Array(repeating: UInt8(9), count: 32)

    func testSignedTokenVerifiesAndCarriesItsClaims() throws {
        let token = HS256.sign(["role": "anon", "sub": "u1"], secret: secret, kid: "a")
        let claims = try HS256.verify(token, secrets: [("a", secret)])
        XCTAssertEqual(claims["role"], "anon")
        XCTAssertEqual(claims["sub"], "u1")
    }

    func testWrongSecretIsRefused() {
        let token = HS256.sign(["role": "anon"], secret: other)
        XCTAssertThrowsError(try HS256.verify(token, secrets: [("a", secret)])) { XCTAssertEqual($0 as? JWTError, .invalidSignature) }
    }

    func testTamperedPayloadIsRefused() {
        let token = HS256.sign(["role": "anon"], secret: secret)
        let parts = token.split(separator: ".")
        let forged = Base64URL.encode(Array(#"{"role":"service_role"}"#.utf8))
        let tampered = "\(parts[0]).\(forged).\(parts[2])"
        XCTAssertThrowsError(try HS256.verify(tampered, secrets: [("a", secret)])) { XCTAssertEqual($0 as? JWTError, .invalidSignature) }
    }

    func testAlgorithmIsPinned() {
        let payload = Base64URL.encode(Array(#"{"role":"service_role"}"#.utf8))
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
            // alg=none tokens come with an empty signature; the others with a valid-looking HMAC.
            let input = "\(header).\(payload)"
            let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
            for token in ["\(input).", "\(input).\(Base64URL.encode(Array(mac)))"] {
                XCTAssertThrowsError(try HS256.verify(token, secrets: [("a", secret)]), alg) {
                    XCTAssertEqual($0 as? JWTError, .unsupportedAlgorithm(alg))
                }
            }
        }
    }

    func testExpiryAndNotBeforeAreChecked() {
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        let expired = HS256.sign(["exp": .integer(2_000_000_000 - 60)], secret: secret)
        XCTAssertThrowsError(try HS256.verify(expired, secrets: [("a", secret)], now: now)) { XCTAssertEqual($0 as? JWTError, .expired) }
        let early = HS256.sign(["nbf": .integer(2_000_000_000 + 120)], secret: secret)
        XCTAssertThrowsError(try HS256.verify(early, secrets: [("a", secret)], now: now)) { XCTAssertEqual($0 as? JWTError, .notYetValid) }
        let skewed = HS256.sign(["exp": .integer(2_000_000_000 - 5)], secret: secret)
        XCTAssertNoThrow(try HS256.verify(skewed, secrets: [("a", secret)], now: now), "small clock skew is tolerated")
        let badType = HS256.sign(["exp": "tomorrow"], secret: secret)
        XCTAssertThrowsError(try HS256.verify(badType, secrets: [("a", secret)], now: now)) {
            XCTAssertEqual($0 as? JWTError, .invalidClaims("exp must be a number"))
        }
    }

    func testMalformedTokensAreRefusedWithoutCrashing() {
        let junk = ["", ".", "..", "a.b", "a.b.c.d", "!!!.???.***", String(repeating: "a", count: 20_000),
                    "eyJhbGciOiJIUzI1NiJ9.\u{0}.x", "e30.e30.e30"]
        for token in junk {
            XCTAssertThrowsError(try HS256.verify(token, secrets: [("a", secret)]), token.prefix(20).description)
        }
    }

    func testRotationVerifiesBothSecretsAndSignsWithTheNewest() throws {
        let oldRing = TenantKeyRing(slug: "acme", secrets: [("old", secret)])
        let rotated = TenantKeyRing(slug: "acme", secrets: [("new", other), ("old", secret)])
        let oldToken = oldRing.sign(["role": "anon"])
        XCTAssertNoThrow(try rotated.verify(oldToken))
        let newToken = rotated.sign(["role": "anon"])
        XCTAssertThrowsError(try oldRing.verify(newToken))
        XCTAssertNoThrow(try HS256.verify(newToken, secrets: [("new", other)]))
    }

    func testAPIKeysAreDerivedDeterministically() throws {
        let ring = TenantKeyRing(slug: "acme", secrets: [("k", secret)])
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        XCTAssertEqual(ring.apiKey(role: "anon", issuedAt: created), ring.apiKey(role: "anon", issuedAt: created))
        XCTAssertNotEqual(ring.apiKey(role: "anon", issuedAt: created), ring.apiKey(role: "service_role", issuedAt: created))
        let claims = try ring.verify(ring.apiKey(role: "service_role", issuedAt: created), now: created)
        XCTAssertEqual(claims["role"], "service_role")
        XCTAssertEqual(claims["ref"], "acme")
        XCTAssertGreaterThan(claims["exp"]?.intValue ?? 0, 1_800_000_000 + 365 * 24 * 3600)
    }

    func testAdminTokenMatchesOnlyItself() {
        let token = AdminToken.generate()
        let stored = AdminToken(token: token)
        XCTAssertTrue(stored.matches(token))
        XCTAssertFalse(stored.matches(token + "x"))
        XCTAssertFalse(stored.matches(""))
        XCTAssertEqual(AdminToken(hexDigest: stored.hexDigest)?.digest, stored.digest)
        XCTAssertNil(AdminToken(hexDigest: "zz"))
    }
}

final class SecretBoxTests: XCTestCase {
    let box = SecretBox(masterKey: SymmetricKey(size: .bits256))

    func testRoundTripsWithinItsContext() throws {
        let sealed = try box.seal(Array("postgres://u:p@h/db".utf8), context: "tenant:a:source:main")
        XCTAssertFalse(String(decoding: sealed, as: UTF8.self).contains("postgres"))
        XCTAssertEqual(try box.open(sealed, context: "tenant:a:source:main"), Array("postgres://u:p@h/db".utf8))
    }

    func testOtherContextTamperingOrKeyDoNotOpen() throws {
        let sealed = try box.seal(Array("secret".utf8), context: "tenant:a")
        XCTAssertThrowsError(try box.open(sealed, context: "tenant:b"))
        var flipped = sealed
        flipped[flipped.count - 1] ^= 1
        XCTAssertThrowsError(try box.open(flipped, context: "tenant:a"))
        XCTAssertThrowsError(try SecretBox(masterKey: SymmetricKey(size: .bits256)).open(sealed, context: "tenant:a"))
        XCTAssertThrowsError(try box.open([1, 2, 3], context: "tenant:a"))
    }

    func testMasterKeyFileIsCreatedPrivateAndReloaded() throws {
        let dir = NSTemporaryDirectory() + "mk-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/master.key"
        let (first, created) = try MasterKey.loadOrCreate(at: path)
        XCTAssertTrue(created)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let (second, createdAgain) = try MasterKey.loadOrCreate(at: path)
        XCTAssertFalse(createdAgain)
        XCTAssertEqual(first.withUnsafeBytes { Array($0) }, second.withUnsafeBytes { Array($0) })
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        XCTAssertThrowsError(try MasterKey.loadOrCreate(at: path)) { XCTAssertTrue("\($0)".contains("chmod 600")) }
    }

    func testMasterKeyTextMustBe32Bytes() throws {
        XCTAssertNoThrow(try MasterKey.parse(String(repeating: "ab", count: 32)))
        XCTAssertNoThrow(try MasterKey.parse(Data(repeating: 1, count: 32).base64EncodedString()))
        XCTAssertThrowsError(try MasterKey.parse("short"))
        XCTAssertThrowsError(try MasterKey.parse(Data(repeating: 1, count: 16).base64EncodedString()))
    }
}

final class ModelTests: XCTestCase {
    func testSlugRules() {
        for good in ["abc", "acme-corp", "a1b", String(repeating: "a", count: 40)] { XCTAssertTrue(Slug.isValid(good), good) }
        for bad in ["ab", "Abc", "1abc", "abc-", "a_b", "a.b", "ab c", String(repeating: "a", count: 41), "", "ünï", "abc\u{0}"] {
            XCTAssertFalse(Slug.isValid(bad), bad)
        }
    }

    func testLimitsNameTheirProblems() {
        var limits = TenantLimits.default
        XCTAssertEqual(limits.problems(), [])
        limits.burst = 0
        limits.requestsPerSecond = -1
        XCTAssertEqual(limits.problems().count, 2)
        XCTAssertTrue(limits.problems().contains { $0.hasPrefix("burst") })
    }

    func testPostgresURLParsing() throws {
        let url = try PostgresURL("postgresql://us%40er:p%3Ass@db.example.com:6543/app?sslmode=require&application_name=x")
        XCTAssertEqual(url.host, "db.example.com")
        XCTAssertEqual(url.port, 6543)
        XCTAssertEqual(url.username, "us@er")
        XCTAssertEqual(url.password, "p:ss")
        XCTAssertEqual(url.database, "app")
        XCTAssertEqual(url.sslMode, .require)
        XCTAssertFalse(url.redacted.contains("p:ss"))
        XCTAssertEqual(try PostgresURL("postgres://[::1]/x").host, "::1")
        XCTAssertEqual(try PostgresURL("postgres://bob@h").database, "bob")
        for bad in ["mysql://h/db", "postgres://", "not a url", "postgres://h:99999/db", "postgres://h/db?sslmode=sometimes"] {
            XCTAssertThrowsError(try PostgresURL(bad), bad)
        }
    }
}

/// The claims' text the read cache keys entries by: made once per verified token, the same as
/// spelling the claims out on the spot, and never kept once the claims change.
final class CallerClaimsKeyTests: XCTestCase {
    func testAVerifiedTokensClaimsKeyIsTheirTextAndIsDroppedWhenTheyChange() {
        let claims: JSONObject = ["role": .string("authenticated"), "sub": .string("u1"), "exp": .integer(2_000_000_000)]
        let verified = VerifiedClaims(claims)
        XCTAssertEqual(verified.key, String(decoding: JSONValue.object(claims).encoded(), as: UTF8.self))
        var caller = Caller(role: "authenticated", claims: verified.claims, claimsKey: verified.key)
        XCTAssertEqual(caller.claimsText, verified.key)
        caller.claims["sub"] = .string("u2")
        XCTAssertNil(caller.claimsKey, "a changed claim set must not keep the old key")
        XCTAssertEqual(caller.claimsText, VerifiedClaims.key(of: caller.claims))
        XCTAssertNotEqual(caller.claimsText, verified.key)
        XCTAssertEqual(Caller(role: "anon", claims: [:]).claimsText, "{}")
    }
}
