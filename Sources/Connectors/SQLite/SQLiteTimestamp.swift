/// Dates and times as SQLite-hosted tables store them: the text PostgREST answers with
/// (`2026-01-02`, `10:30:00`, `2026-01-02T10:30:00.5+00:00`), so stored values are already the
/// answer, and compare and sort as the instants they name. Inputs take PostgreSQL's common forms:
/// `T` or a space between date and time, optional seconds and fraction, `Z` or `±hh[:mm]`.
enum SQLiteTimestamp {
    /// `YYYY-MM-DD`, checked against the calendar.
    static func date(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let (year, month, day, rest) = parseDate(Substring(trimmed)), rest.isEmpty else { return nil }
        return formatDate(year, month, day)
    }

    /// `HH:MM[:SS[.ffffff]]`.
    static func time(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let parsed = parseTime(Substring(trimmed)), parsed.rest.isEmpty else { return nil }
        return formatTime(parsed.hour, parsed.minute, parsed.second, parsed.fraction)
    }

    /// A timestamp; `withZone`: converted to UTC (`+00:00`, as a UTC server answers); without, an
    /// offset is ignored, as PostgreSQL ignores it for `timestamp without time zone`.
    static func timestamp(_ text: String, withZone: Bool) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let (year, month, day, afterDate) = parseDate(Substring(trimmed)) else { return nil }
        var hour = 0, minute = 0, second = 0
        var fraction = ""
        var offsetMinutes = 0
        var rest = afterDate
        if let separator = rest.first, separator == "T" || separator == "t" || separator == " " {
            rest = rest.dropFirst()
            guard let parsed = parseTime(rest) else { return nil }
            (hour, minute, second, fraction, rest) = parsed
        }
        rest = rest.drop { $0 == " " }
        if rest == "Z" || rest == "z" || rest.uppercased() == "UTC" {
            rest = ""
        } else if let sign = rest.first, sign == "+" || sign == "-" {
            let digits = rest.dropFirst().filter { $0 != ":" }
            guard digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.count == 2 || digits.count == 4,
                let hours = Int(digits.prefix(2)), let minutes = Int(digits.dropFirst(2).isEmpty ? "0" : String(digits.dropFirst(2))),
                hours <= 15, minutes < 60
            else { return nil }
            offsetMinutes = (hours * 60 + minutes) * (sign == "-" ? -1 : 1)
            rest = ""
        }
        guard rest.isEmpty else { return nil }
        guard withZone else { return formatDate(year, month, day) + "T" + formatTime(hour, minute, second, fraction) }
        // To UTC through days since the epoch, so the date rolls over correctly.
        var days = daysFromCivil(year, month, day)
        var minutesOfDay = hour * 60 + minute - offsetMinutes
        while minutesOfDay < 0 {
            minutesOfDay += 1440
            days -= 1
        }
        while minutesOfDay >= 1440 {
            minutesOfDay -= 1440
            days += 1
        }
        let (y, m, d) = civilFromDays(days)
        return formatDate(y, m, d) + "T" + formatTime(minutesOfDay / 60, minutesOfDay % 60, second, fraction) + "+00:00"
    }

    // MARK: - Pieces

    private static func parseDate(_ text: Substring) -> (Int, Int, Int, Substring)? {
        let parts = text.prefix(10)
        guard parts.count == 10, parts.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (48...57).contains($0) }) else { return nil }
        let fields = parts.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0].count == 4, fields[1].count == 2, fields[2].count == 2,
            let year = Int(fields[0]), let month = Int(fields[1]), let day = Int(fields[2]),
            (1...12).contains(month), day >= 1, day <= daysIn(month, year)
        else { return nil }
        return (year, month, day, text.dropFirst(10))
    }

    private static func parseTime(_ text: Substring) -> (hour: Int, minute: Int, second: Int, fraction: String, rest: Substring)? {
        var rest = text
        func number(_ count: Int) -> Int? {
            let digits = rest.prefix(count)
            guard digits.count == count, digits.utf8.allSatisfy({ (48...57).contains($0) }), let value = Int(digits) else { return nil }
            rest = rest.dropFirst(count)
            return value
        }
        guard let hour = number(2), rest.first == ":" else { return nil }
        rest = rest.dropFirst()
        guard let minute = number(2) else { return nil }
        var second = 0
        var fraction = ""
        if rest.first == ":" {
            rest = rest.dropFirst()
            guard let value = number(2) else { return nil }
            second = value
            if rest.first == "." {
                rest = rest.dropFirst()
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty else { return nil }
                rest = rest.dropFirst(digits.count)
                // Microseconds, as PostgreSQL keeps them.
                fraction = String(digits.prefix(6))
            }
        }
        guard hour < 24 || (hour == 24 && minute == 0 && second == 0), minute < 60, second < 60 else { return nil }
        return (hour, minute, second, fraction, rest)
    }

    private static func formatDate(_ year: Int, _ month: Int, _ day: Int) -> String {
        pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }

    /// PostgreSQL drops trailing zeros of the fraction, and the fraction when it is zero.
    private static func formatTime(_ hour: Int, _ minute: Int, _ second: Int, _ fraction: String) -> String {
        var text = pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2)
        var digits = Substring(fraction)
        while digits.last == "0" { digits = digits.dropLast() }
        if !digits.isEmpty { text += "." + digits }
        return text
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    private static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Howard Hinnant's days-from-civil and its inverse (proleptic Gregorian).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

import Foundation
