import XCTest

@testable import Jobs

final class WebhookSignerTests: XCTestCase {
    /// The Standard Webhooks specification's example: this secret, id, timestamp and payload
    /// give this signature.
    func testTheSpecificationsExample() throws {
        let signer = try XCTUnwrap(WebhookSigner(encoded: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]))
        let signature = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8))
        XCTAssertEqual(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    func testRotationSignsWithEverySecretAndNewSecretsDecode() throws {
        let secret = WebhookSigner.newSecret()
        XCTAssertTrue(secret.hasPrefix("whsec_"))
        XCTAssertEqual(WebhookSigner.decode(secret)?.count, 32)
        let both = try XCTUnwrap(WebhookSigner(encoded: [secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]))
        let parts = both.signature(id: "msg_1", timestamp: 1, body: []).split(separator: " ")
        XCTAssertEqual(parts.count, 2)
        XCTAssertTrue(parts.allSatisfy { $0.hasPrefix("v1,") })
        XCTAssertNil(WebhookSigner(encoded: ["plain"]))
        XCTAssertNil(WebhookSigner(encoded: ["whsec_"]))
    }

    func testRetriesFollowTheScheduleWithJitterAndRetryAfter() throws {
        let schedule = RetrySchedule.standard
        let now = Date(timeIntervalSince1970: 0)
        XCTAssertEqual(schedule.maxAttempts, 8)
        XCTAssertEqual(schedule.next(after: 1, now: now, jitter: 0), now.addingTimeInterval(5))
        XCTAssertEqual(schedule.next(after: 2, now: now, jitter: 0.2), now.addingTimeInterval(360))
        XCTAssertEqual(schedule.next(after: 2, now: now, jitter: -5), now.addingTimeInterval(240), "jitter is held to ±20 %")
        XCTAssertEqual(schedule.next(after: 1, now: now, retryAfter: .seconds(60), jitter: 0), now.addingTimeInterval(60))
        XCTAssertNil(schedule.next(after: 8, now: now))
        XCTAssertThrowsError(try RetrySchedule(milliseconds: []))
        XCTAssertThrowsError(try RetrySchedule(milliseconds: [0, -1]))
        XCTAssertEqual(try RetrySchedule(milliseconds: [0, 1000]).maxAttempts, 2)
    }
}
