import Foundation
import QuarryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `date` filter: Ruby's `strftime` over a timestamp, `"now"` / `"today"`, or a date string, in UTC.
enum DateFilter {
    static let date: LiquidFilter = { input, arguments in
        try arguments.expect(1)
        guard case .string(let format)? = arguments[0], !format.isEmpty else { return input }
        // Past ±10^14 seconds (three million years) the calendar arithmetic would overflow: such a value is not a
        // date the filter formats, so it is returned as it came, as other inputs that are not dates are.
        guard let seconds = timestamp(of: input), seconds.isFinite, abs(seconds) < 1e14 else { return input }
        return .string(strftime(format, seconds: seconds))
    }

    /// Seconds since the epoch for the filter's input, or nil when it is not a date (the input is then returned).
    static func timestamp(of value: JSON) -> Double? {
        switch value {
        case .int(let seconds): return Double(seconds)
        case .double(let seconds): return seconds
        case .string(let text):
            let trimmed = String(Substring(text).trimmingWhitespace())
            switch trimmed.lowercased() {
            case "now", "today": return Date().timeIntervalSince1970
            default: break
            }
            if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seconds = Double(trimmed) {
                return seconds
            }
            return parse(trimmed)
        default: return nil
        }
    }

    private static let monthNames = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]

    /// Parses the date strings people write: ISO 8601, RFC 2822 (`Mon, 14 Mar 2016 10:00:00 +0000`),
    /// `March 14, 2016`, `14 March 2016 10:30`, `2016/03/14`.
    static func parse(_ text: String) -> Double? {
        if let millis = ISO8601.parse(text, strict: false) { return Double(millis) / 1000 }
        var year: Int?
        var month: Int?
        var day: Int?
        var hour = 0
        var minute = 0
        var second = 0
        var offsetSeconds = 0
        var numbers: [Int] = []
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" })
        for token in tokens {
            let lower = token.lowercased()
            if lower.contains(":") {
                let parts = lower.split(separator: ":").map { Int($0.prefix(2)) }
                guard parts.count >= 2, let h = parts[0], let m = parts[1] else { return nil }
                hour = h
                minute = m
                second = parts.count > 2 ? parts[2] ?? 0 : 0
                if lower.hasSuffix("pm") && hour < 12 { hour += 12 }
                if lower.hasSuffix("am") && hour == 12 { hour = 0 }
            } else if (lower.hasPrefix("+") || lower.hasPrefix("-")) && lower.count == 5,
                let zone = Int(lower.dropFirst())
            {
                offsetSeconds = (zone / 100 * 3600 + zone % 100 * 60) * (lower.hasPrefix("-") ? -1 : 1)
            } else if let index = monthNames.firstIndex(where: { lower.hasPrefix($0) }), lower.allSatisfy(\.isLetter) {
                month = index + 1
            } else if lower.contains("/") || lower.contains("-") {
                let parts = lower.split(whereSeparator: { $0 == "/" || $0 == "-" }).compactMap { Int($0) }
                guard parts.count == 3 else { return nil }
                if parts[0] > 31 {
                    (year, month, day) = (parts[0], parts[1], parts[2])
                } else {
                    (month, day, year) = (parts[0], parts[1], parts[2])
                }
            } else if let number = Int(lower.filter(\.isNumber)), lower.first?.isNumber == true {
                numbers.append(number)
            } else if ["utc", "gmt", "z"].contains(lower) || lower.allSatisfy(\.isLetter) {
                continue
            } else {
                return nil
            }
        }
        for number in numbers {
            if number > 31 || (day != nil && year == nil) {
                year = number
            } else if day == nil {
                day = number
            }
        }
        // A year past a million is not a date people write, and its seconds would overflow (found by fuzzing).
        guard let year, abs(year) <= 1_000_000, let month, let day, (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        let days = ISO8601.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds)
    }

    private static let fullMonths = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]
    private static let fullDays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Ruby's `strftime` in UTC, written here (not the C library's) because Ruby's `%s`, `%L`, `%N`, `%P` and flags
    /// differ from it, and because the date filter runs once per row of a report. Directives it does not know fall
    /// back to the C library.
    static func strftime(_ format: String, seconds: Double) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(format.utf8.count + 16)
        strftime(Array(format.utf8), seconds: seconds, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The widest field a directive pads to (Ruby's limit is memory).
    static let maximumWidth = 1_024

    private static func strftime(_ format: [UInt8], seconds: Double, into output: inout [UInt8]) {
        let whole = Int(seconds.rounded(.down))
        let fraction = seconds - seconds.rounded(.down)
        let days = whole >= 0 ? whole / 86_400 : (whole - 86_399) / 86_400
        let secondOfDay = whole - days * 86_400
        let (year, month, day) = ISO8601.civilFromDays(days)
        let hour = secondOfDay / 3600
        let minute = secondOfDay / 60 % 60
        let second = secondOfDay % 60
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4).
        let dayOfYear = days - ISO8601.daysFromCivil(year: year, month: 1, day: 1) + 1
        let hour12 = hour % 12 == 0 ? 12 : hour % 12

        var index = 0
        while index < format.count {
            let byte = format[index]
            index += 1
            guard byte == UInt8(ascii: "%"), index < format.count else {
                output.append(byte)
                continue
            }
            // Flags and width, then the conversion.
            let start = index - 1
            var flag: UInt8 = 0
            var width = -1
            while index < format.count,
                [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "0"), UInt8(ascii: "^"), UInt8(ascii: "#")]
                    .contains(format[index])
            {
                flag = format[index]
                index += 1
            }
            while index < format.count, format[index] >= UInt8(ascii: "0"), format[index] <= UInt8(ascii: "9") {
                // Clamped: a width is request data (`%2888…8d` overflowed), and padding is allocated before the
                // output limit can see it.
                width = min(max(width, 0) * 10 + Int(format[index] - UInt8(ascii: "0")), maximumWidth)
                index += 1
            }
            guard index < format.count else { break }
            let conversion = format[index]
            index += 1

            func number(_ value: Int, _ defaultWidth: Int, pad: UInt8 = UInt8(ascii: "0")) {
                var digits:
                    (
                        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
                    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
                var count = 0
                var magnitude = value.magnitude
                withUnsafeMutableBytes(of: &digits) { buffer in
                    repeat {
                        buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                        magnitude /= 10
                        count += 1
                    } while magnitude > 0
                }
                let size = width >= 0 ? width : defaultWidth
                let padding: UInt8? =
                    flag == UInt8(ascii: "-")
                    ? nil
                    : flag == UInt8(ascii: "_")
                        ? UInt8(ascii: " ") : flag == UInt8(ascii: "0") ? UInt8(ascii: "0") : pad
                if value < 0 { output.append(UInt8(ascii: "-")) }
                if let padding, count < size {
                    output.append(contentsOf: repeatElement(padding, count: size - count - (value < 0 ? 1 : 0)))
                }
                withUnsafeBytes(of: &digits) { buffer in
                    for position in stride(from: count - 1, through: 0, by: -1) { output.append(buffer[position]) }
                }
            }
            func word(_ text: String) {
                switch flag {
                case UInt8(ascii: "^"): output.append(contentsOf: text.uppercased().utf8)
                case UInt8(ascii: "#"):
                    output.append(contentsOf: (text == text.uppercased() ? text.lowercased() : text.uppercased()).utf8)
                default: output.append(contentsOf: text.utf8)
                }
            }
            func nested(_ text: StaticString) {
                strftime(
                    Array(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)),
                    seconds: seconds,
                    into: &output
                )
            }
            switch conversion {
            case UInt8(ascii: "Y"): number(year, 1)
            case UInt8(ascii: "C"): number(year / 100, 2)
            case UInt8(ascii: "y"): number(year % 100, 2)
            case UInt8(ascii: "m"): number(month, 2)
            case UInt8(ascii: "B"): word(fullMonths[month - 1])
            case UInt8(ascii: "b"), UInt8(ascii: "h"): word(String(fullMonths[month - 1].prefix(3)))
            case UInt8(ascii: "d"): number(day, 2)
            case UInt8(ascii: "e"): number(day, 2, pad: UInt8(ascii: " "))
            case UInt8(ascii: "j"): number(dayOfYear, 3)
            case UInt8(ascii: "H"): number(hour, 2)
            case UInt8(ascii: "k"): number(hour, 2, pad: UInt8(ascii: " "))
            case UInt8(ascii: "I"): number(hour12, 2)
            case UInt8(ascii: "l"): number(hour12, 2, pad: UInt8(ascii: " "))
            case UInt8(ascii: "M"): number(minute, 2)
            case UInt8(ascii: "S"): number(second, 2)
            case UInt8(ascii: "L"): number(Int(fraction * 1000), 3)
            case UInt8(ascii: "N"):
                let digits = width >= 0 ? width : 9
                let nanos = String(Int(fraction * 1_000_000_000))
                let padded = String(repeating: "0", count: max(0, 9 - nanos.count)) + nanos
                output.append(
                    contentsOf: (padded + String(repeating: "0", count: max(0, digits - 9))).prefix(digits).utf8
                )
            case UInt8(ascii: "p"):
                output.append(
                    contentsOf: (flag == UInt8(ascii: "#") ? (hour < 12 ? "am" : "pm") : (hour < 12 ? "AM" : "PM")).utf8
                )
            case UInt8(ascii: "P"): output.append(contentsOf: (hour < 12 ? "am" : "pm").utf8)
            case UInt8(ascii: "A"): word(fullDays[weekday])
            case UInt8(ascii: "a"): word(String(fullDays[weekday].prefix(3)))
            case UInt8(ascii: "u"): number(weekday == 0 ? 7 : weekday, 1)
            case UInt8(ascii: "w"): number(weekday, 1)
            case UInt8(ascii: "s"): output.append(contentsOf: String(whole).utf8)
            case UInt8(ascii: "z"): output.append(contentsOf: "+0000".utf8)
            case UInt8(ascii: "Z"): output.append(contentsOf: "UTC".utf8)
            case UInt8(ascii: "%"): output.append(UInt8(ascii: "%"))
            case UInt8(ascii: "n"): output.append(UInt8(ascii: "\n"))
            case UInt8(ascii: "t"): output.append(UInt8(ascii: "\t"))
            case UInt8(ascii: "D"), UInt8(ascii: "x"): nested("%m/%d/%y")
            case UInt8(ascii: "F"): nested("%Y-%m-%d")
            case UInt8(ascii: "T"), UInt8(ascii: "X"): nested("%H:%M:%S")
            case UInt8(ascii: "R"): nested("%H:%M")
            case UInt8(ascii: "r"): nested("%I:%M:%S %p")
            case UInt8(ascii: "c"): nested("%a %b %e %H:%M:%S %Y")
            default:
                output.append(
                    contentsOf: cStrftime(String(decoding: format[start..<index], as: UTF8.self), seconds: seconds).utf8
                )
            }
        }
    }

    /// The C library's `strftime` in UTC, for directives written above does not cover (`%U`, `%V`, `%G`, …).
    private static func cStrftime(_ format: String, seconds: Double) -> String {
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 256)
        let count = format.withCString { Glibc.strftime(&buffer, buffer.count, $0, &parts) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
