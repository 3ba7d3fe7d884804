import XCTest
@testable import Tenancy

final class PasswordHasherTests: XCTestCase {
    func testHashesAreBcryptSaltedAndVerify() async throws {
        let hasher = PasswordHasher()
        let first = try await hasher.hash("correct horse")
        let second = try await hasher.hash("correct horse")
        XCTAssertTrue(first.hasPrefix("$2b$10$"), first)
        XCTAssertEqual(first.count, 60)
        XCTAssertNotEqual(first, second, "each hash has its own salt")
        let rightPassword = try await hasher.verify("correct horse", against: first)
        let wrongPassword = try await hasher.verify("correct horsE", against: first)
        let noAccount = try await hasher.verify("correct horse", against: nil)
        XCTAssertTrue(rightPassword)
        XCTAssertFalse(wrongPassword)
        XCTAssertFalse(noAccount, "a missing account never verifies")
    }

    func testAHashFromAnotherBcryptImplementationVerifies() async throws {
        // Made by PyPI's bcrypt: bcrypt.hashpw(b"hunter22", bcrypt.gensalt(10)); and a $2a$ vector
        // from OpenBSD's test suite, as hashes imported from other systems look.
        let foreign = "$2b$10$BiDjFngToFqn8Wc0MCcAf.h.6rwLwKijSBo9tfBizVTruvd/9CG4W"
        let matches = try await PasswordHasher().verify("hunter22", against: foreign)
        XCTAssertTrue(matches)
        let legacy = try await PasswordHasher().verify("abc", against: "$2a$06$If6bvum7DFjUnE9p2uDeDu0YHzrHM6tf.iqN8.yx.jNN1ILEf7h0i")
        XCTAssertTrue(legacy)
    }

    func testConstantTimeComparison() {
        XCTAssertTrue(PasswordHasher.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(PasswordHasher.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(PasswordHasher.constantTimeEquals([1, 2], [1, 2, 3]))
    }
}
