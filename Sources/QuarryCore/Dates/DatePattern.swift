import Foundation

/// One element of a Java `DateTimeFormatter` pattern, the subset Elasticsearch users write in mappings and range
/// queries: `y M d H h m s S a Z X x` (numeric fields, month names for `MMM`/`MMMM`) and quoted literals.
enum PatternToken: Sendable, Hashable {
    case year(width: Int)
    case month(width: Int)
    case day(width: Int)
    case hour(width: Int)
    case minute(width: Int)
    case second(width: Int)
    case fraction(width: Int)
    case zone
    case literal(String)

    static func parse(_ pattern: String) throws(DateFormatError) -> [PatternToken] {
        var tokens: [PatternToken] = []
        let characters = Array(pattern)
        var i = 0
        while i < characters.count {
            let c = characters[i]
            if c == "'" {
                var literal = ""
                i += 1
                while i < characters.count, characters[i] != "'" {
                    literal.append(characters[i])
                    i += 1
                }
                i += 1
                tokens.append(.literal(literal.isEmpty ? "'" : literal))
                continue
            }
            var width = 1
            while i + width < characters.count, characters[i + width] == c { width += 1 }
            switch c {
            case "y", "u", "Y": tokens.append(.year(width: width))
            case "M", "L": tokens.append(.month(width: width))
            case "d": tokens.append(.day(width: width))
            case "H", "k": tokens.append(.hour(width: width))
            case "m": tokens.append(.minute(width: width))
            case "s": tokens.append(.second(width: width))
            case "S": tokens.append(.fraction(width: width))
            case "Z", "X", "x", "z", "O": tokens.append(.zone)
            case _ where c.isLetter:
                throw DateFormatError(reason: "Invalid format: [\(pattern)]: Unknown pattern letter: \(c)")
            default: tokens.append(.literal(String(repeating: c, count: width)))
            }
            i += width
        }
        return tokens
    }

    static let monthNames = [
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
        "november", "december",
    ]

    static func parse(_ text: String, _ tokens: [PatternToken], timeZone: TimeZone) -> Int64? {
        let chars = Array(text.unicodeScalars)
        var i = 0
        var year = 1970
        var month = 1
        var day = 1
        var hour = 0
        var minute = 0
        var second = 0
        var millis = 0
        var offset: Int?
        func number(maxWidth: Int) -> Int? {
            var value = 0
            var count = 0
            while i < chars.count, count < maxWidth,
                let digit = chars[i].properties.numericType != nil
                    ? Int(String(chars[i])) : nil
            {
                value = value * 10 + digit
                count += 1
                i += 1
            }
            return count == 0 ? nil : value
        }
        for (index, token) in tokens.enumerated() {
            // A numeric field followed directly by another numeric field takes exactly its width.
            let nextIsNumeric: Bool = {
                guard index + 1 < tokens.count else { return false }
                if case .literal = tokens[index + 1] { return false }
                return true
            }()
            func width(_ w: Int, default d: Int) -> Int { nextIsNumeric ? max(w, d) : 10 }
            switch token {
            case .year(let w):
                guard let v = number(maxWidth: width(w, default: 4)) else { return nil }
                year = v
            case .month(let w) where w >= 3:
                let rest = String(String.UnicodeScalarView(chars[i...])).lowercased()
                guard let match = monthNames.firstIndex(where: { rest.hasPrefix(w == 3 ? String($0.prefix(3)) : $0) })
                else { return nil }
                month = match + 1
                i += w == 3 ? 3 : monthNames[match].count
            case .month(let w):
                guard let v = number(maxWidth: width(w, default: 2)), (1...12).contains(v) else { return nil }
                month = v
            case .day(let w):
                guard let v = number(maxWidth: width(w, default: 2)), (1...31).contains(v) else { return nil }
                day = v
            case .hour(let w):
                guard let v = number(maxWidth: width(w, default: 2)), v < 24 else { return nil }
                hour = v
            case .minute(let w):
                guard let v = number(maxWidth: width(w, default: 2)), v < 60 else { return nil }
                minute = v
            case .second(let w):
                guard let v = number(maxWidth: width(w, default: 2)), v < 60 else { return nil }
                second = v
            case .fraction(let w):
                let start = i
                guard var v = number(maxWidth: nextIsNumeric ? w : 9) else { return nil }
                var digits = i - start
                while digits > 3 {
                    v /= 10
                    digits -= 1
                }
                while digits < 3 {
                    v *= 10
                    digits += 1
                }
                millis = v
            case .zone:
                guard i < chars.count else { return nil }
                if chars[i] == "Z" {
                    i += 1
                    offset = 0
                } else if chars[i] == "+" || chars[i] == "-" {
                    let sign = chars[i] == "-" ? -1 : 1
                    i += 1
                    guard let h = number(maxWidth: 2) else { return nil }
                    var m = 0
                    if i < chars.count, chars[i] == ":" { i += 1 }
                    if let mm = number(maxWidth: 2) { m = mm }
                    offset = sign * (h * 3600 + m * 60)
                } else {
                    return nil
                }
            case .literal(let literal):
                for scalar in literal.unicodeScalars {
                    guard i < chars.count, chars[i] == scalar else { return nil }
                    i += 1
                }
            }
        }
        // Years past Java's (and so Elasticsearch's) range of epoch milliseconds are not dates; the arithmetic below
        // would overflow on them (a pattern of `y` read 23,333,331,650 under the fuzzer).
        guard i == chars.count, abs(year) <= 292_278_994, day <= ISO8601.daysInMonth(year: year, month: month)
        else { return nil }
        let days = ISO8601.daysFromCivil(year: year, month: month, day: day)
        var seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        if let offset {
            seconds -= Int64(offset)
        } else {
            seconds -= Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        let (total, carry) = scaled.addingReportingOverflow(Int64(millis))
        return overflow || carry ? nil : total
    }

    static func format(_ millis: Int64, _ tokens: [PatternToken], timeZone: TimeZone) -> String {
        let offset = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(millis) / 1000)))
        let local = millis + offset * 1000
        let (days, msOfDay) = local.floorDivided(by: 86_400_000)
        let (year, month, day) = ISO8601.civilFromDays(Int(days))
        var out = ""
        for token in tokens {
            switch token {
            case .year(let w): out += ISO8601.pad(w == 2 ? year % 100 : year, w == 2 ? 2 : max(w, 4))
            case .month(let w) where w >= 3:
                let name = monthNames[month - 1].capitalized
                out += w == 3 ? String(name.prefix(3)) : name
            case .month(let w): out += ISO8601.pad(month, w)
            case .day(let w): out += ISO8601.pad(day, w)
            case .hour(let w): out += ISO8601.pad(Int(msOfDay / 3_600_000), w)
            case .minute(let w): out += ISO8601.pad(Int(msOfDay / 60_000 % 60), w)
            case .second(let w): out += ISO8601.pad(Int(msOfDay / 1000 % 60), w)
            case .fraction(let w): out += String(ISO8601.pad(Int(msOfDay % 1000), 3).prefix(w))
            case .zone:
                if offset == 0 {
                    out += "Z"
                } else {
                    let sign = offset < 0 ? "-" : "+"
                    out +=
                        sign + ISO8601.pad(Int(abs(offset) / 3600), 2) + ":"
                        + ISO8601.pad(Int(abs(offset) / 60 % 60), 2)
                }
            case .literal(let literal): out += literal
            }
        }
        return out
    }
}
