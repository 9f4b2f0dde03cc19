public import Foundation

/// A cron expression (minute hour day-of-month month day-of-week, or `@hourly`, `@daily`, `@weekly`, `@monthly`,
/// `@yearly`) evaluated in a time zone, so that "every weekday at 09:00 Europe/Berlin" follows daylight saving.
///
/// Written by hand: no cron package is in the project's package set. Fields take `*`, numbers, ranges `a-b`,
/// steps `*/n` and `a-b/n`, lists `a,b`, and month and weekday names; as in Vixie cron, when both day fields are
/// restricted a day matches if either does.
public struct CronSchedule: Sendable, CustomStringConvertible {
    public let expression: String
    public let timeZone: TimeZone
    private let minutes: Set<Int>
    private let hours: Set<Int>
    private let days: Set<Int>
    private let months: Set<Int>
    private let weekdays: Set<Int>
    private let daysRestricted: Bool
    private let weekdaysRestricted: Bool

    public init(_ expression: String, timeZone name: String = "UTC") throws(CronError) {
        guard let zone = TimeZone(identifier: name) else { throw CronError("unknown time zone '\(name)'") }
        self.expression = expression
        timeZone = zone
        let aliases = [
            "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
        ]
        let text = aliases[expression.trimmingCharacters(in: .whitespaces).lowercased()] ?? expression
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronError("cron expression '\(expression)' needs 5 fields (minute hour day month weekday)")
        }
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        minutes = try Self.field(fields[0], "minute", 0...59, names: [])
        hours = try Self.field(fields[1], "hour", 0...23, names: [])
        days = try Self.field(fields[2], "day of month", 1...31, names: [])
        months = try Self.field(fields[3], "month", 1...12, names: monthNames, nameBase: 1)
        weekdays = Set(try Self.field(fields[4], "day of week", 0...7, names: dayNames).map { $0 % 7 })
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
    }

    private static func field(
        _ text: String,
        _ what: String,
        _ range: ClosedRange<Int>,
        names: [String],
        nameBase: Int = 0
    ) throws(CronError) -> Set<Int> {
        func number(_ token: Substring) throws(CronError) -> Int {
            if let value = Int(token), range.contains(value) { return value }
            if let index = names.firstIndex(of: token.lowercased()) { return index + nameBase }
            throw CronError("'\(token)' is not a valid \(what) (\(range.lowerBound)–\(range.upperBound))")
        }
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronError("'\(part)' is not a valid \(what)") }
            var step = 1
            if pieces.count == 2 {
                guard let value = Int(pieces[1]), value > 0 else { throw CronError("bad step in '\(part)'") }
                step = value
            }
            let lower: Int
            let upper: Int
            if pieces[0] == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = pieces[0].firstIndex(of: "-") {
                lower = try number(pieces[0][..<dash])
                upper = try number(pieces[0][pieces[0].index(after: dash)...])
                guard lower <= upper else { throw CronError("range '\(part)' runs backwards") }
            } else {
                lower = try number(pieces[0])
                upper = pieces.count == 2 ? range.upperBound : lower
            }
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    /// The first time after `date` the schedule fires, or nil if it never does within eight years (`30 2 31 2 *`).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        // The next whole minute, to the millisecond (minutes start at the same instants in every time zone).
        var candidate = Date(timeIntervalSince1970: ((date.timeIntervalSince1970 / 60).rounded(.down) + 1) * 60)
        let limit = date.addingTimeInterval(8 * 366 * 86_400)
        while candidate < limit {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: candidate)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                let weekday = parts.weekday
            else { return nil }
            if !months.contains(month) {
                candidate = startOf(.month, after: candidate, calendar) ?? limit
                continue
            }
            let dayMatches: Bool
            switch (daysRestricted, weekdaysRestricted) {
            case (true, true): dayMatches = days.contains(day) || weekdays.contains(weekday - 1)
            case (true, false): dayMatches = days.contains(day)
            case (false, true): dayMatches = weekdays.contains(weekday - 1)
            case (false, false): dayMatches = true
            }
            if !dayMatches {
                candidate = startOf(.day, after: candidate, calendar) ?? limit
                continue
            }
            if !hours.contains(hour) {
                candidate = startOf(.hour, after: candidate, calendar) ?? limit
                continue
            }
            if !minutes.contains(minute) {
                candidate = candidate.addingTimeInterval(60)
                continue
            }
            return candidate
        }
        return nil
    }

    /// The start of the next month, day or hour after `date`.
    private func startOf(_ component: Calendar.Component, after date: Date, _ calendar: Calendar) -> Date? {
        guard let interval = calendar.dateInterval(of: component, for: date) else { return nil }
        return interval.end
    }

    public var description: String { "\(expression) (\(timeZone.identifier))" }
}

public struct CronError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
