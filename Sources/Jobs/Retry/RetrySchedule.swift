import Foundation

/// When a failed delivery is tried again: after each entry of `delays` in turn (Svix's default:
/// at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each moved by up to ±20 % so that the
/// deliveries a recovering receiver missed do not all return at the same instant. A receiver's
/// `Retry-After` is honoured when it asks for longer.
public struct RetrySchedule: Sendable, Equatable {
    public let delays: [Duration]
    public static let standard = RetrySchedule(delays: [.zero, .seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18000), .seconds(36000), .seconds(36000)])

    public init(delays: [Duration]) {
        self.delays = delays
    }

    /// From milliseconds, as the admin API takes them: 1 to 20 entries of at most a day each.
    public init(milliseconds: [Int]) throws(RetryScheduleError) {
        guard (1...20).contains(milliseconds.count), milliseconds.allSatisfy({ (0...86_400_000).contains($0) }) else { throw .invalid }
        self.init(delays: milliseconds.map { .milliseconds($0) })
    }

    /// A stored schedule (the delays before each retry, in ms) after a first attempt at once.
    public init(retryDelaysMilliseconds delays: [Int]) {
        self.init(delays: [.zero] + delays.map { .milliseconds($0) })
    }

    /// Attempts in all: the first, then one per delay after the first.
    public var maxAttempts: Int { delays.count }

    /// When attempt `attempt + 1` runs after attempt `attempt` (1-based) failed at `now`; nil
    /// when none is left.
    public func next(after attempt: Int, now: Date, retryAfter: Duration? = nil, jitter: Double = Double.random(in: -0.2...0.2)) -> Date? {
        guard attempt >= 1, attempt < delays.count else { return nil }
        let base = delays[attempt]
        let seconds = Double(base.components.seconds) + Double(base.components.attoseconds) / 1e18
        var delay = seconds * (1 + max(-0.2, min(0.2, jitter)))
        if let retryAfter {
            delay = max(delay, Double(retryAfter.components.seconds))
        }
        return now.addingTimeInterval(delay)
    }
}

public enum RetryScheduleError: Error, Equatable, Sendable {
    case invalid
}
