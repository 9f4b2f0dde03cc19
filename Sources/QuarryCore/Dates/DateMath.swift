public import Foundation

/// Elasticsearch date math: `now-4h/h`, `2026-11-29||+1d/d`, as accepted by `range` queries.
///
/// Rounding follows ES: when `roundUp` is true (`lte`, `gt`) a rounded value moves to the last millisecond of its
/// unit, so `lte: now/d` includes the whole of today.
public enum DateMath {
    /// Resolves an expression to epoch milliseconds.
    /// - Parameters:
    ///   - expression: `now…` or `anchor||ops`, or a plain date in `format`.
    ///   - format: how to read an anchor date.
    ///   - timeZone: the zone for rounding and for anchors without a zone.
    ///   - now: the current time in epoch milliseconds.
    ///   - roundUp: round to the end of the unit instead of the start.
    /// - Throws: ``DateFormatError`` with ES's reason when the expression cannot be read.
    public static func resolve(
        _ expression: String,
        format: DateFormat = .defaultFormat,
        timeZone: TimeZone? = nil,
        now: Int64,
        roundUp: Bool
    ) throws(DateFormatError) -> Int64 {
        var value: Int64
        var operations: Substring
        if expression.hasPrefix("now") {
            value = now
            operations = expression.dropFirst(3)
        } else if let separator = expression.range(of: "||") {
            let anchor = String(expression[..<separator.lowerBound])
            guard let parsed = format.parse(anchor, timeZone: timeZone) else {
                throw failure(anchor, format)
            }
            value = parsed
            operations = expression[separator.upperBound...]
        } else {
            guard let parsed = format.parse(expression, timeZone: timeZone) else { throw failure(expression, format) }
            return parsed
        }
        let zone = timeZone ?? .gmt
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var rest = Array(operations)
        while !rest.isEmpty {
            let op = rest.removeFirst()
            switch op {
            case "/":
                guard let unitCharacter = rest.first, let unit = Unit(rawValue: unitCharacter) else {
                    throw DateFormatError(
                        reason: "rounding `/` can only be used on a single unit types [\(expression)]"
                    )
                }
                rest.removeFirst()
                guard let rounded = round(value, to: unit, calendar: calendar, up: roundUp) else {
                    throw outOfRange(expression)
                }
                value = rounded
            case "+", "-":
                var digits = ""
                while let c = rest.first, c.isNumber {
                    digits.append(c)
                    rest.removeFirst()
                }
                guard let amount = digits.isEmpty ? 1 : Int64(digits) else { throw outOfRange(expression) }
                guard let unitCharacter = rest.first, let unit = Unit(rawValue: unitCharacter) else {
                    throw DateFormatError(
                        reason: "unit [\(rest.first.map(String.init) ?? "")] not supported for "
                            + "date math [\(operations)]"
                    )
                }
                rest.removeFirst()
                guard let moved = add(op == "-" ? -amount : amount, unit, to: value, calendar: calendar) else {
                    throw outOfRange(expression)
                }
                value = moved
            default:
                throw DateFormatError(reason: "operator not supported for date math [\(operations)]")
            }
        }
        return value
    }

    static func failure(_ text: String, _ format: DateFormat) -> DateFormatError {
        DateFormatError(reason: "failed to parse date field [\(text)] with format [\(format)]")
    }

    enum Unit: Character {
        case year = "y"
        case month = "M"
        case week = "w"
        case day = "d"
        case hour = "h"
        case hour24 = "H"
        case minute = "m"
        case second = "s"

        var component: Calendar.Component {
            switch self {
            case .year: .year
            case .month: .month
            case .week: .weekOfYear
            case .day: .day
            case .hour, .hour24: .hour
            case .minute: .minute
            case .second: .second
            }
        }
    }

    static func outOfRange(_ expression: String) -> DateFormatError {
        DateFormatError(reason: "failed to parse date field [\(expression)]: the date is out of the supported range")
    }

    /// The latest instant date math works with, in epoch milliseconds: year 292278994, as Elasticsearch's
    /// millisecond dates (Java's `Long.MAX_VALUE` milliseconds).
    static let limit: Int64 = 9_223_372_036_854_775_000

    /// `millis` moved by `amount` units; `nil` when the result leaves ±``limit``.
    static func add(_ amount: Int64, _ unit: Unit, to millis: Int64, calendar: Calendar) -> Int64? {
        func moved(by factor: Int64) -> Int64? {
            let (offset, overflow) = amount.multipliedReportingOverflow(by: factor)
            let (result, overflow2) = millis.addingReportingOverflow(offset)
            guard !overflow, !overflow2, (-limit...limit).contains(result) else { return nil }
            return result
        }
        switch unit {
        case .second: return moved(by: 1000)
        case .minute: return moved(by: 60_000)
        case .hour, .hour24: return moved(by: 3_600_000)
        default:
            // Calendar arithmetic through Foundation, but only for moves that stay within the range: an estimate
            // with the unit's longest length (a generous margin) is checked first, so Foundation never sees an
            // amount it cannot represent.
            let longest: Double
            switch unit {
            case .year: longest = 366 * 86_400_000
            case .month: longest = 31 * 86_400_000
            case .week: longest = 7 * 86_400_000
            default: longest = 86_400_000
            }
            let estimate = Double(millis) + Double(amount) * longest
            guard abs(estimate) < 0.99 * Double(limit), let value = Int(exactly: amount) else { return nil }
            let date = Date(timeIntervalSince1970: TimeInterval(millis) / 1000)
            guard let moved = calendar.date(byAdding: unit.component, value: value, to: date) else { return nil }
            return Int64(checkedTruncating: (moved.timeIntervalSince1970 * 1000).rounded())
        }
    }

    /// The first (or with `up`, the last) millisecond of the unit that holds `millis`; `nil` out of range.
    static func round(_ millis: Int64, to unit: Unit, calendar: Calendar, up: Bool) -> Int64? {
        let date = Date(timeIntervalSince1970: TimeInterval(millis.floorDivided(by: 1000).quotient))
        let start: Date
        if unit == .week {
            var isoCalendar = Calendar(identifier: .iso8601)
            isoCalendar.timeZone = calendar.timeZone
            start = isoCalendar.dateInterval(of: .weekOfYear, for: date)?.start ?? date
        } else {
            start = calendar.dateInterval(of: unit.component, for: date)?.start ?? date
        }
        guard let startMillis = Int64(checkedTruncating: (start.timeIntervalSince1970 * 1000).rounded()) else {
            return nil
        }
        guard up else { return startMillis }
        return add(1, unit, to: startMillis, calendar: calendar).map { $0 - 1 }
    }
}

/// `to - from` for capture timestamps, saturating instead of trapping: a damaged capture can hold any time.
public func elapsed(from: Int64, to: Int64) -> Int64 {
    let (difference, overflow) = to.subtractingReportingOverflow(from)
    if overflow { return to > from ? Int64.max : Int64.min }
    return difference
}
