import Foundation
import XCTest

@testable import Jobs

final class CronScheduleTests: XCTestCase {
    func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    func testWeekdaysInAZoneAcrossItsSpringChange() throws {
        let schedule = try CronSchedule("0 9 * * 1-5", timeZone: "Europe/Paris")
        // Friday 27 March 2026, 11:00 in Paris (UTC+1): next is Monday 30th, 09:00 summer time.
        XCTAssertEqual(schedule.next(after: date("2026-03-27T10:00:00Z")), date("2026-03-30T07:00:00Z"))
    }

    func testATimeInTheSpringGapRunsAfterIt() throws {
        let schedule = try CronSchedule("30 2 * * *", timeZone: "Europe/Paris")
        // 29 March 2026 has no 02:30 in Paris: the run comes at 03:30 summer time.
        XCTAssertEqual(schedule.next(after: date("2026-03-28T23:00:00Z")), date("2026-03-29T01:30:00Z"))
        XCTAssertEqual(schedule.next(after: date("2026-03-29T01:30:00Z")), date("2026-03-30T00:30:00Z"))
    }

    func testATimeTheAutumnChangeRepeatsRunsOnce() throws {
        let schedule = try CronSchedule("30 1 * * *", timeZone: "America/New_York")
        // 1 November 2026: 01:30 happens at 05:30Z (EDT) and again at 06:30Z (EST).
        let first = schedule.next(after: date("2026-11-01T04:00:00Z"))
        XCTAssertEqual(first, date("2026-11-01T05:30:00Z"))
        XCTAssertEqual(schedule.next(after: first!), date("2026-11-02T06:30:00Z"))
        let every15 = try CronSchedule("*/15 * * * *", timeZone: "America/New_York")
        var runs: [Date] = []
        var at = date("2026-11-01T05:00:00Z")
        while at < date("2026-11-01T07:00:00Z"), let next = every15.next(after: at) {
            runs.append(next)
            at = next
        }
        XCTAssertEqual(runs.count, 8, "every quarter of an hour of real time, none twice")
    }

    func testFieldsMacrosSecondsAndIntervals() throws {
        XCTAssertEqual(try CronSchedule("*/20 * * * * *").next(after: date("2026-01-01T00:00:05Z")), date("2026-01-01T00:00:20Z"))
        XCTAssertEqual(try CronSchedule("@daily").next(after: date("2026-01-01T00:00:00Z")), date("2026-01-02T00:00:00Z"))
        XCTAssertEqual(try CronSchedule("@hourly").next(after: date("2026-01-01T00:59:59Z")), date("2026-01-01T01:00:00Z"))
        XCTAssertEqual(try CronSchedule("15 seconds").next(after: date("2026-01-01T00:00:16Z")), date("2026-01-01T00:00:30Z"))
        XCTAssertEqual(try CronSchedule("0 0 1 jan,jul *").next(after: date("2026-02-01T00:00:00Z")), date("2026-07-01T00:00:00Z"))
        // Day of month or day of week when both are given: the 13th, or any Friday.
        XCTAssertEqual(try CronSchedule("0 0 13 * fri").next(after: date("2026-03-01T00:00:00Z")), date("2026-03-06T00:00:00Z"))
        XCTAssertEqual(try CronSchedule("0 12 * * 7").next(after: date("2026-03-02T00:00:00Z")), date("2026-03-08T12:00:00Z"), "7 is Sunday")
        XCTAssertNil(try CronSchedule("0 0 30 2 *").next(after: date("2026-01-01T00:00:00Z")), "30 February never comes")
    }

    func testBadSchedulesAndZonesAreRefused() {
        for bad in ["61 * * * *", "* * *", "@often", "*/0 * * * *", "5-1 * * * *", "a b c d e", "90 seconds", "* * * * * * *", ""] {
            XCTAssertThrowsError(try CronSchedule(bad), bad)
        }
        XCTAssertThrowsError(try CronSchedule("* * * * *", timeZone: "Mars/Olympus")) { error in
            XCTAssertEqual(error as? CronError, .unknownZone("Mars/Olympus"))
        }
    }
}
