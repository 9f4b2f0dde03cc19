public import Foundation

/// An Elasticsearch date `format`: one or more alternatives joined by `||`, each a named format
/// (`strict_date_optional_time`, `epoch_millis`, …) or a Java `DateTimeFormatter` pattern (`yyyy/MM/dd HH:mm:ss`).
///
/// Parsing yields milliseconds since the epoch, which is what Elasticsearch indexes for a `date` field. ISO 8601 is
/// parsed by hand on the ingest path because every Packetbeat document carries several timestamps.
public struct DateFormat: Sendable, Hashable, CustomStringConvertible {
    /// The default format of a `date` field.
    public static let defaultFormat = try! DateFormat("strict_date_optional_time||epoch_millis")
    /// The formats dynamic date detection tries on strings (ES's `dynamic_date_formats`).
    public static let dynamicDateFormats = [
        try! DateFormat("strict_date_optional_time"), try! DateFormat("yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"),
    ]

    enum Alternative: Sendable, Hashable {
        case isoOptionalTime(strict: Bool)
        case epochMillis
        case epochSecond
        case pattern([PatternToken])
    }

    let alternatives: [Alternative]
    public let description: String

    /// Parses a format specification.
    /// - Throws: ``DateFormatError`` for an unknown named format or a pattern letter ES does not support.
    public init(_ specification: String) throws(DateFormatError) {
        description = specification
        var alternatives: [Alternative] = []
        for part in specification.components(separatedBy: "||") {
            let name = part.trimmingCharacters(in: .whitespaces)
            switch name {
            case "strict_date_optional_time", "strict_date_optional_time_nanos", "strict_date_time",
                "strict_date_time_no_millis", "strict_date", "strict_date_hour_minute_second",
                "strict_date_hour_minute_second_millis", "strict_date_hour_minute_second_fraction",
                "strict_year_month_day", "strict_year_month", "strict_year":
                alternatives.append(.isoOptionalTime(strict: true))
            case "date_optional_time", "date_time", "date_time_no_millis", "date", "date_hour_minute_second",
                "date_hour_minute_second_millis", "date_hour_minute_second_fraction", "year_month_day", "year_month",
                "year", "iso8601":
                alternatives.append(.isoOptionalTime(strict: false))
            case "epoch_millis": alternatives.append(.epochMillis)
            case "epoch_second": alternatives.append(.epochSecond)
            case "basic_date": alternatives.append(.pattern(try PatternToken.parse("yyyyMMdd")))
            case "basic_date_time": alternatives.append(.pattern(try PatternToken.parse("yyyyMMdd'T'HHmmss.SSSZ")))
            case "basic_date_time_no_millis":
                alternatives.append(.pattern(try PatternToken.parse("yyyyMMdd'T'HHmmssZ")))
            case "": throw DateFormatError(reason: "Invalid format: [\(specification)]: empty format")
            default: alternatives.append(.pattern(try PatternToken.parse(name)))
            }
        }
        self.alternatives = alternatives
    }

    /// Parses `text` to epoch milliseconds. A text without a zone is read in `timeZone` (UTC when `nil`).
    public func parse(_ text: String, timeZone: TimeZone? = nil) -> Int64? {
        for alternative in alternatives {
            if let value = Self.parse(text, alternative, timeZone: timeZone) { return value }
        }
        return nil
    }

    /// Parses a JSON number for this format (only the epoch formats accept numbers).
    public func parse(number: Double) -> Int64? {
        for alternative in alternatives {
            switch alternative {
            case .epochMillis: return Int64(checkedTruncating: number.rounded(.down))
            case .epochSecond: return Int64(checkedTruncating: (number * 1000).rounded(.down))
            default: continue
            }
        }
        return nil
    }

    /// Formats epoch milliseconds with the first alternative (ISO 8601 in UTC for the named ISO formats).
    public func format(_ millis: Int64, timeZone: TimeZone? = nil) -> String {
        switch alternatives.first {
        case .epochMillis: return String(millis)
        case .epochSecond: return String(millis / 1000)
        case .pattern(let tokens): return PatternToken.format(millis, tokens, timeZone: timeZone ?? .gmt)
        case .isoOptionalTime, nil: return ISO8601.format(millis)
        }
    }

    static func parse(_ text: String, _ alternative: Alternative, timeZone: TimeZone?) -> Int64? {
        switch alternative {
        case .isoOptionalTime(let strict): return ISO8601.parse(text, strict: strict, timeZone: timeZone)
        case .epochMillis:
            guard let value = Double(text), value.isFinite, !text.contains("e"), !text.contains("E") else {
                return nil
            }
            return Int64(checkedTruncating: value.rounded(.down))
        case .epochSecond:
            guard let value = Double(text), value.isFinite else { return nil }
            return Int64(checkedTruncating: (value * 1000).rounded(.down))
        case .pattern(let tokens): return PatternToken.parse(text, tokens, timeZone: timeZone ?? .gmt)
        }
    }
}

/// An invalid date format or date value.
public struct DateFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// ISO 8601 as ES's `strict_date_optional_time` reads it: `yyyy[-MM[-dd[THH[:mm[:ss[.fraction]]]]]][zone]`.
public enum ISO8601 {
    /// Parses to epoch milliseconds; `nil` when the text is not such a date.
    public static func parse(_ text: String, strict: Bool = true, timeZone: TimeZone? = nil) -> Int64? {
        var text = text
        return text.withUTF8 { parse($0, strict: strict, timeZone: timeZone) }
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, strict: Bool, timeZone: TimeZone?) -> Int64? {
        var i = 0
        let n = bytes.count
        func digits(_ count: Int) -> Int? {
            guard i + count <= n else { return nil }
            var value = 0
            for k in 0..<count {
                let b = bytes[i + k]
                guard b >= 48 && b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
            }
            i += count
            return value
        }
        func peek(_ c: UInt8) -> Bool { i < n && bytes[i] == c }
        var negativeYear = false
        if !strict, peek(UInt8(ascii: "-")) {
            negativeYear = true
            i += 1
        }
        guard var year = digits(4) else { return nil }
        if negativeYear { year = -year }
        var month = 1
        var day = 1
        var hour = 0
        var minute = 0
        var second = 0
        var millis = 0
        var offsetSeconds: Int?
        if peek(UInt8(ascii: "-")) {
            i += 1
            guard let m = digits(2), (1...12).contains(m) else { return nil }
            month = m
            if peek(UInt8(ascii: "-")) {
                i += 1
                guard let d = digits(2), d >= 1, d <= daysInMonth(year: year, month: month) else { return nil }
                day = d
                if peek(UInt8(ascii: "T")) || (!strict && peek(UInt8(ascii: " "))) {
                    i += 1
                    guard let h = digits(2), h < 24 else { return nil }
                    hour = h
                    if peek(UInt8(ascii: ":")) {
                        i += 1
                        guard let mi = digits(2), mi < 60 else { return nil }
                        minute = mi
                        if peek(UInt8(ascii: ":")) {
                            i += 1
                            guard let s = digits(2), s < 60 else { return nil }
                            second = s
                            if peek(UInt8(ascii: ".")) || peek(UInt8(ascii: ",")) {
                                i += 1
                                var count = 0
                                var fraction = 0
                                while i < n, bytes[i] >= 48, bytes[i] <= 57 {
                                    if count < 3 { fraction = fraction * 10 + Int(bytes[i] - 48) }
                                    count += 1
                                    i += 1
                                }
                                guard count >= 1, count <= 9 else { return nil }
                                var scale = min(count, 3)
                                while scale < 3 {
                                    fraction *= 10
                                    scale += 1
                                }
                                millis = fraction
                            }
                        }
                    }
                    if peek(UInt8(ascii: "Z")) {
                        i += 1
                        offsetSeconds = 0
                    } else if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) {
                        let sign = bytes[i] == UInt8(ascii: "-") ? -1 : 1
                        i += 1
                        guard let oh = digits(2), oh <= 18 else { return nil }
                        var om = 0
                        if peek(UInt8(ascii: ":")) {
                            i += 1
                            guard let m = digits(2) else { return nil }
                            om = m
                        } else if i < n {
                            guard let m = digits(2) else { return nil }
                            om = m
                        }
                        offsetSeconds = sign * (oh * 3600 + om * 60)
                    }
                }
            }
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        var seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        if let offsetSeconds {
            seconds -= Int64(offsetSeconds)
        } else if let timeZone, timeZone != .gmt {
            seconds -= Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        }
        return seconds * 1000 + Int64(millis)
    }

    /// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC.
    public static func format(_ millis: Int64) -> String {
        let (days, msOfDay) = millis.floorDivided(by: 86_400_000)
        let (year, month, day) = civilFromDays(Int(days))
        let hour = Int(msOfDay / 3_600_000)
        let minute = Int(msOfDay / 60_000 % 60)
        let second = Int(msOfDay / 1000 % 60)
        let ms = Int(msOfDay % 1000)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))."
            + "\(pad(ms, 3))Z"
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(abs(value))
        let padded = text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        return value < 0 ? "-" + padded : padded
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a count of days since 1970-01-01.
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
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

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

extension Int64 {
    /// Division rounding toward negative infinity, with a non-negative remainder.
    public func floorDivided(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var q = self / divisor
        var r = self % divisor
        if r < 0 {
            q -= 1
            r += divisor
        }
        return (q, r)
    }
}
