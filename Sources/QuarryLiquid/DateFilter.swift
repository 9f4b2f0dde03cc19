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
        guard let seconds = timestamp(of: input) else { return input }
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
        guard let year, let month, let day, (1...12).contains(month), (1...31).contains(day) else { return nil }
        let days = ISO8601.daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds)
    }

    /// Ruby's `strftime` in UTC: the C library for the common directives, with `%s`, `%L` and `%N` done here
    /// because the C library's `%s` reads the local time zone and it has no `%L` / `%N`.
    static func strftime(_ format: String, seconds: Double) -> String {
        var time = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        let fraction = seconds - seconds.rounded(.down)
        var result = ""
        var chunk = ""
        func flush() {
            guard !chunk.isEmpty else { return }
            var buffer = [CChar](repeating: 0, count: 256 + chunk.utf8.count * 8)
            let count = chunk.withCString { Glibc.strftime(&buffer, buffer.count, $0, &parts) }
            result += String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            chunk = ""
        }
        var characters = format.makeIterator()
        while let character = characters.next() {
            guard character == "%" else {
                chunk.append(character)
                continue
            }
            guard let directive = characters.next() else {
                chunk.append("%")
                break
            }
            switch directive {
            case "s":
                flush()
                result += String(Int64(seconds.rounded(.down)))
            case "L":
                flush()
                result += String(format: "%03d", Int(fraction * 1000))
            case "N":
                flush()
                result += String(format: "%09d", Int(fraction * 1_000_000_000))
            default:
                chunk.append("%")
                chunk.append(directive)
                // Flags and widths (`%-d`, `%3N`) continue to the conversion letter.
                if "-_0^#".contains(directive) || directive.isNumber, let next = characters.next() {
                    chunk.append(next)
                }
            }
        }
        flush()
        return result
    }
}
