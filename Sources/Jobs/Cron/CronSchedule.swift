import Foundation

/// When a scheduled job runs: a cron expression of 5 fields (minute hour day-of-month month
/// day-of-week) or 6 with leading seconds, a macro (`@yearly`, `@monthly`, `@weekly`, `@daily`,
/// `@midnight`, `@hourly`), or pg_cron's interval form `N seconds` (1 to 59), read in an IANA time
/// zone. Times are matched on the zone's wall clock: a time that a DST change skips runs right
/// after the gap, a time that the change repeats runs once (its first occurrence). As in cron, a
/// day matches when the day-of-month or the day-of-week matches if both are restricted.
public struct CronSchedule: Sendable, Equatable {
    public let expression: String
    public let timeZone: TimeZone
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    /// 0 = Sunday.
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// `N seconds`: every N seconds from the epoch, whatever the zone.
    let interval: Int?

    public init(_ expression: String, timeZone zone: String = "UTC") throws(CronError) {
        // Foundation knows more names than it lists (Asia/Kolkata is not in its list on Linux).
        guard let timeZone = TimeZone(identifier: zone) else { throw .unknownZone(zone) }
        self.expression = expression
        self.timeZone = timeZone
        let text = expression.trimmingCharacters(in: .whitespaces)
        let macros = [
            "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0", "@daily": "0 0 * * *",
            "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
        ]
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        if words.count == 2, ["second", "seconds"].contains(words[1].lowercased()) {
            guard let n = Int(words[0]), (1...59).contains(n) else { throw .invalid(expression, "an interval is 1 to 59 seconds") }
            interval = n
            (seconds, minutes, hours, daysOfMonth, months, daysOfWeek) = ([], [], [], [], [], [])
            (dayOfMonthRestricted, dayOfWeekRestricted) = (false, false)
            return
        }
        interval = nil
        var fields = text.hasPrefix("@") ? (macros[text.lowercased()].map { $0.split(separator: " ").map(String.init) } ?? []) : words
        if text.hasPrefix("@"), fields.isEmpty { throw .invalid(expression, "unknown macro") }
        guard fields.count == 5 || fields.count == 6 else { throw .invalid(expression, "expected 5 fields (or 6 with seconds first)") }
        if fields.count == 5 { fields.insert("0", at: 0) }
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        seconds = try Self.field(fields[0], 0...59, name: "second", expression: expression)
        minutes = try Self.field(fields[1], 0...59, name: "minute", expression: expression)
        hours = try Self.field(fields[2], 0...23, name: "hour", expression: expression)
        daysOfMonth = try Self.field(fields[3], 1...31, name: "day of month", expression: expression)
        months = try Self.field(fields[4], 1...12, name: "month", expression: expression, names: monthNames, firstName: 1)
        // 7 is Sunday too.
        daysOfWeek = Set(try Self.field(fields[5], 0...7, name: "day of week", expression: expression, names: dayNames, firstName: 0).map { $0 % 7 })
        dayOfMonthRestricted = !["*", "?"].contains(fields[3])
        dayOfWeekRestricted = !["*", "?"].contains(fields[5])
    }

    /// One field: `*`, `?`, `a`, `a-b`, `*/n`, `a-b/n`, `a/n`, lists of them; names where given.
    static func field(
        _ text: String, _ range: ClosedRange<Int>, name: String, expression: String, names: [String] = [], firstName: Int = 0
    ) throws(CronError) -> Set<Int> {
        func number(_ part: Substring) throws(CronError) -> Int {
            if let value = Int(part), range.contains(value) { return value }
            if let index = names.firstIndex(of: part.lowercased()) { return index + firstName }
            throw .invalid(expression, "\(name) '\(part)' is not in \(range.lowerBound)-\(range.upperBound)")
        }
        var values: Set<Int> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = item.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !pieces[0].isEmpty else { throw .invalid(expression, "\(name) '\(item)' is not a cron field") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0, parsed <= range.upperBound + 1 else {
                    throw .invalid(expression, "\(name) step '\(pieces[1])' is not a positive number in range")
                }
                step = parsed
            }
            let lower: Int
            var upper: Int
            if pieces[0] == "*" || pieces[0] == "?" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = pieces[0].firstIndex(of: "-") {
                lower = try number(pieces[0][..<dash])
                upper = try number(pieces[0][pieces[0].index(after: dash)...])
                guard lower <= upper else { throw .invalid(expression, "\(name) range '\(pieces[0])' runs backwards") }
            } else {
                lower = try number(pieces[0])
                upper = pieces.count == 2 ? range.upperBound : lower
            }
            upper = min(upper, range.upperBound)
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    /// The first run strictly after `date`; nil if none within five years (e.g. 30 February).
    public func next(after date: Date) -> Date? {
        guard let onWallClock = nextOnWallClock(after: date) else { return nil }
        // A schedule that runs every hour follows real time through an hour the clock repeats
        // (as cron does): the repeated hour's runs come between the walk's two neighbours.
        if interval == nil, hours.count == 24, let change = timeZone.nextDaylightSavingTimeTransition(after: date.addingTimeInterval(-7200)), change < onWallClock {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let step: TimeInterval = seconds == [0] ? 60 : 1
            var instant = (floor(date.timeIntervalSince1970 / step) + 1) * step
            let end = min(onWallClock.timeIntervalSince1970, date.timeIntervalSince1970 + 7200)
            while instant < end {
                let candidate = Date(timeIntervalSince1970: instant)
                if matches(calendar.dateComponents([.month, .day, .weekday, .hour, .minute, .second], from: candidate)) { return candidate }
                instant += step
            }
        }
        return onWallClock
    }

    private func matches(_ parts: DateComponents) -> Bool {
        guard let month = parts.month, let day = parts.day, let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute,
            let second = parts.second
        else { return false }
        return months.contains(month) && dayMatches(day, weekday) && hours.contains(hour) && minutes.contains(minute) && seconds.contains(second)
    }

    private func dayMatches(_ dayOfMonth: Int, _ weekday: Int) -> Bool {
        let domMatch = daysOfMonth.contains(dayOfMonth), dowMatch = daysOfWeek.contains(weekday - 1)
        return dayOfMonthRestricted && dayOfWeekRestricted ? (domMatch || dowMatch) : (domMatch && dowMatch)
    }

    private func nextOnWallClock(after date: Date) -> Date? {
        if let interval {
            let seconds = floor(date.timeIntervalSince1970)
            return Date(timeIntervalSince1970: (floor(seconds / Double(interval)) + 1) * Double(interval))
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // Wall-clock components of the first second after `date`; candidates are walked on the
        // wall clock, so a repeated hour is not run twice.
        let start = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date.addingTimeInterval(1 - date.timeIntervalSince1970.truncatingRemainder(dividingBy: 1)))
        guard var day = calendar.date(from: DateComponents(year: start.year, month: start.month, day: start.day, hour: 12)) else { return nil }
        let sortedHours = hours.sorted(), sortedMinutes = minutes.sorted(), sortedSeconds = seconds.sorted()
        for dayIndex in 0..<(366 * 5) {
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            defer { day = calendar.date(byAdding: .day, value: 1, to: day) ?? day.addingTimeInterval(86_400) }
            guard let month = parts.month, let dayOfMonth = parts.day, let weekday = parts.weekday, months.contains(month),
                dayMatches(dayOfMonth, weekday)
            else { continue }
            let sameDay = dayIndex == 0
            for hour in sortedHours where !sameDay || hour >= start.hour! {
                for minute in sortedMinutes where !(sameDay && hour == start.hour!) || minute >= start.minute! {
                    for second in sortedSeconds where !(sameDay && hour == start.hour! && minute == start.minute!) || second >= start.second! {
                        var wanted = DateComponents(year: parts.year, month: month, day: dayOfMonth, hour: hour, minute: minute, second: second)
                        wanted.timeZone = timeZone
                        // Foundation moves a wall time inside a DST gap forward past it, and
                        // takes the first of a repeated one.
                        guard let candidate = calendar.date(from: wanted), candidate > date else { continue }
                        return candidate
                    }
                }
            }
        }
        return nil
    }
}

public enum CronError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String, String)
    case unknownZone(String)

    public var description: String {
        switch self {
        case .invalid(let expression, let why): "'\(expression)' is not a schedule: \(why)"
        case .unknownZone(let zone): "'\(zone)' is not an IANA time zone"
        }
    }
}
