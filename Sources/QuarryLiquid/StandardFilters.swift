import Foundation
import QuarryCore

/// Shopify Liquid's standard filters, with its behaviour for odd inputs (a number where a string was expected,
/// nil, nested arrays), since stories imported from Tines rely on it.
enum StandardFilters {
    static let all: [String: LiquidFilter] = {
        var filters: [String: LiquidFilter] = [:]
        addStringFilters(to: &filters)
        addNumberFilters(to: &filters)
        addArrayFilters(to: &filters)
        addEncodingFilters(to: &filters)
        filters["default"] = defaultValue
        filters["date"] = DateFilter.date
        filters["size"] = { input, arguments in
            try arguments.expect(0)
            switch input {
            case .string(let text): return .int(Int64(text.unicodeScalars.count))
            case .array(let values): return .int(Int64(values.count))
            case .object(let object): return .int(Int64(object["size"]?.intValue ?? Int64(object.count)))
            default: return .int(0)
            }
        }
        return filters
    }()

    // MARK: Helpers

    static func text(_ value: JSON) -> String { value.liquidText }

    /// Shopify's `InputIterator`: arrays flattened, nil as nothing, anything else as one item.
    static func items(_ value: JSON) -> [JSON] {
        switch value {
        case .array(let values):
            if !values.contains(where: { if case .array = $0 { true } else { false } }) { return values }
            var flat: [JSON] = []
            func flatten(_ values: [JSON]) {
                for value in values {
                    if case .array(let inner) = value { flatten(inner) } else { flat.append(value) }
                }
            }
            flatten(values)
            return flat
        case .null: return []
        default: return [value]
        }
    }

    /// A string argument: required (`minimum` > index) or defaulted.
    static func stringArgument(
        _ arguments: FilterArguments,
        _ index: Int,
        default value: String? = nil
    )
        throws(LiquidError) -> String
    {
        if let argument = arguments[index] { return argument.liquidText }
        if let value { return value }
        throw LiquidError(.argument, "\(arguments.filterName) expects an argument")
    }

    static func integerArgument(_ value: JSON?, name: String) throws(LiquidError) -> Int? {
        guard let value, !value.isNull else { return nil }
        switch value {
        case .int(let number): return Int(clamping: number)
        case .double(let number) where number.isFinite:
            return Int(clamping: Int64.clamping(number, rounding: .towardZero))
        case .string(let text):
            guard let number = Int(Substring(text).trimmingWhitespace()) else {
                throw LiquidError(.argument, "\(name): '\(text)' is not an integer")
            }
            return number
        default: throw LiquidError(.argument, "\(name): \(value.liquidInspect) is not an integer")
        }
    }

    /// An integer argument that may be left out (nil) but, when given, must not be nil.
    static func requiredInteger(_ value: JSON?, name: String) throws(LiquidError) -> Int? {
        guard let value else { return nil }
        if value.isNull { throw LiquidError(.argument, "\(name) expects an integer, got nil") }
        return try integerArgument(value, name: name)
    }

    /// `item[property]` for objects; nil for anything else.
    static func property(_ item: JSON, _ key: String) -> JSON? {
        if case .object(let object) = item { return object[key] }
        return nil
    }

    // MARK: Strings

    private static func addStringFilters(to filters: inout [String: LiquidFilter]) {
        filters["append"] = { input, arguments in
            try arguments.expect(1)
            return .string(text(input) + text(arguments[0]!))
        }
        filters["prepend"] = { input, arguments in
            try arguments.expect(1)
            return .string(text(arguments[0]!) + text(input))
        }
        filters["capitalize"] = { input, arguments in
            try arguments.expect(0)
            let value = text(input)
            guard let first = value.first else { return .string("") }
            return .string(first.uppercased() + value.dropFirst().lowercased())
        }
        filters["downcase"] = { input, arguments in
            try arguments.expect(0)
            return .string(text(input).lowercased())
        }
        filters["upcase"] = { input, arguments in
            try arguments.expect(0)
            return .string(text(input).uppercased())
        }
        filters["strip"] = { input, arguments in
            try arguments.expect(0)
            return .string(String(Substring(text(input)).trimmingWhitespace()))
        }
        filters["lstrip"] = { input, arguments in
            try arguments.expect(0)
            return .string(String(text(input).drop(while: \.isWhitespace)))
        }
        filters["rstrip"] = { input, arguments in
            try arguments.expect(0)
            var value = Substring(text(input))
            while let last = value.last, last.isWhitespace { value = value.dropLast() }
            return .string(String(value))
        }
        filters["strip_newlines"] = { input, arguments in
            try arguments.expect(0)
            return .string(String(text(input).unicodeScalars.filter { $0 != "\n" && $0 != "\r" }.map(Character.init)))
        }
        filters["newline_to_br"] = { input, arguments in
            try arguments.expect(0)
            var result = ""
            for scalar in text(input).unicodeScalars {
                switch scalar {
                case "\r": continue
                case "\n": result += "<br />\n"
                default: result.unicodeScalars.append(scalar)
                }
            }
            return .string(result)
        }
        filters["remove"] = { input, arguments in
            try arguments.expect(1)
            return .string(text(input).replacingAll(try stringArgument(arguments, 0), with: ""))
        }
        filters["remove_first"] = { input, arguments in
            try arguments.expect(1)
            return .string(text(input).replacingFirst(try stringArgument(arguments, 0), with: ""))
        }
        filters["remove_last"] = { input, arguments in
            try arguments.expect(1)
            return .string(text(input).replacingLast(try stringArgument(arguments, 0), with: ""))
        }
        filters["replace"] = { input, arguments in
            try arguments.expect(1, 2)
            let replacement = try stringArgument(arguments, 1, default: "")
            return .string(text(input).replacingAll(try stringArgument(arguments, 0), with: replacement))
        }
        filters["replace_first"] = { input, arguments in
            try arguments.expect(1, 2)
            let replacement = try stringArgument(arguments, 1, default: "")
            return .string(text(input).replacingFirst(try stringArgument(arguments, 0), with: replacement))
        }
        filters["replace_last"] = { input, arguments in
            try arguments.expect(2)
            let replacement = try stringArgument(arguments, 1)
            return .string(text(input).replacingLast(try stringArgument(arguments, 0), with: replacement))
        }
        filters["split"] = { input, arguments in
            try arguments.expect(1)
            return .array(rubySplit(text(input), text(arguments[0]!)).map { .string($0) })
        }
        filters["slice"] = { input, arguments in
            try arguments.expect(1, 2)
            for argument in arguments.positional where argument.doubleValue != nil && argument.intValue == nil {
                throw LiquidError(.argument, "slice expects integers, got \(argument.liquidText)")
            }
            guard let start = try integerArgument(arguments[0], name: "slice") else {
                throw LiquidError(.argument, "slice expects an integer offset")
            }
            let length = try integerArgument(arguments[1], name: "slice") ?? 1
            switch input {
            case .array(let values):
                return .array(slice(values, start: start, length: length) ?? [])
            default:
                let scalars = Array(text(input).unicodeScalars)
                let part = slice(scalars, start: start, length: length) ?? []
                var result = ""
                result.unicodeScalars.append(contentsOf: part)
                return .string(result)
            }
        }
        filters["truncate"] = { input, arguments in
            try arguments.expect(0, 2)
            guard !input.isNull else { return .null }
            let value = Array(text(input).unicodeScalars)
            let length = try requiredInteger(arguments[0], name: "truncate") ?? 50
            let ellipsis = Array(try stringArgument(arguments, 1, default: "...").unicodeScalars)
            guard value.count > length else { return .string(text(input)) }
            let keep = max(length - ellipsis.count, 0)
            var result = ""
            result.unicodeScalars.append(contentsOf: value.prefix(keep))
            result.unicodeScalars.append(contentsOf: ellipsis)
            return .string(result)
        }
        filters["truncatewords"] = { input, arguments in
            try arguments.expect(0, 2)
            guard !input.isNull else { return .null }
            let value = text(input)
            var count = try requiredInteger(arguments[0], name: "truncatewords") ?? 15
            let ellipsis = try stringArgument(arguments, 1, default: "...")
            count = max(count, 1)
            let words = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            guard words.count > count else { return .string(value) }
            return .string(words.prefix(count).joined(separator: " ") + ellipsis)
        }
        filters["strip_html"] = { input, arguments in
            try arguments.expect(0)
            return .string(stripHTML(text(input)))
        }
        filters["escape"] = { input, arguments in
            try arguments.expect(0)
            guard !input.isNull else { return .null }
            return .string(escapeHTML(text(input)))
        }
        filters["h"] = filters["escape"]
        filters["escape_once"] = { input, arguments in
            try arguments.expect(0)
            return .string(escapeHTML(text(input), once: true))
        }
        filters["url_encode"] = { input, arguments in
            try arguments.expect(0)
            guard !input.isNull else { return .null }
            return .string(urlEncode(text(input)))
        }
        filters["url_decode"] = { input, arguments in
            try arguments.expect(0)
            guard !input.isNull else { return .null }
            return .string(urlDecode(text(input)))
        }
    }

    /// Ruby's `String#split`: a single space splits on runs of whitespace, an empty separator splits characters,
    /// and trailing empty fields are dropped.
    static func rubySplit(_ value: String, _ separator: String) -> [String] {
        var parts: [String]
        if separator == " " {
            return value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
        } else if separator.isEmpty {
            parts = value.unicodeScalars.map { String($0) }
        } else {
            parts = value.components(separatedBy: separator)
        }
        while let last = parts.last, last.isEmpty { parts.removeLast() }
        return parts
    }

    static func slice<T>(_ values: [T], start: Int, length: Int) -> [T]? {
        let begin = start < 0 ? values.count + start : start
        guard begin >= 0, begin <= values.count, length >= 0 else { return nil }
        let end = min(values.count, begin + length)
        return Array(values[begin..<end])
    }

    static func escapeHTML(_ value: String, once: Bool = false) -> String {
        // Most values (host names, addresses) need no escaping: return them as they are.
        if !value.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) {
            return value
        }
        var result = ""
        result.reserveCapacity(value.utf8.count)
        let scalars = Array(value.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "&":
                if once, isEntity(scalars, at: index) {
                    result += "&"
                } else {
                    result += "&amp;"
                }
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(scalar)
            }
            index += 1
        }
        return result
    }

    /// Whether `&` at `index` starts an entity such as `&amp;`, `&#39;` or `&#x27;`.
    private static func isEntity(_ scalars: [Unicode.Scalar], at index: Int) -> Bool {
        var cursor = index + 1
        var length = 0
        if cursor < scalars.count && scalars[cursor] == "#" {
            cursor += 1
            if cursor < scalars.count && (scalars[cursor] == "x" || scalars[cursor] == "X") { cursor += 1 }
        }
        while cursor < scalars.count, scalars[cursor].properties.isAlphabetic || ("0"..."9").contains(scalars[cursor]) {
            cursor += 1
            length += 1
        }
        return length > 0 && cursor < scalars.count && scalars[cursor] == ";"
    }

    static func stripHTML(_ value: String) -> String {
        var result = ""
        var rest = Substring(value)
        while let open = rest.firstIndex(of: "<") {
            result += rest[..<open]
            let after = rest[open...]
            let lower = after.prefix(9).lowercased()
            let terminator: String
            if after.hasPrefix("<!--") {
                terminator = "-->"
            } else if lower.hasPrefix("<script") {
                terminator = "</script>"
            } else if lower.hasPrefix("<style") {
                terminator = "</style>"
            } else {
                terminator = ">"
            }
            if let end = after.range(of: terminator, options: terminator == ">" ? [] : .caseInsensitive) {
                rest = after[end.upperBound...]
            } else {
                result += after
                rest = ""
            }
        }
        return result + rest
    }

    /// Ruby's `CGI.escape`: unreserved characters stay, spaces become `+`, everything else is percent-encoded.
    static func urlEncode(_ value: String) -> String {
        var result = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"), UInt8(ascii: "*"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): result += "+"
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                result.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
            }
        }
        return result
    }

    static func urlDecode(_ value: String) -> String {
        var bytes: [UInt8] = []
        let input = Array(value.utf8)
        var index = 0
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < input.count, let high = hexValue(input[index + 1]),
                let low = hexValue(input[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Numbers

    private static func addNumberFilters(to filters: inout [String: LiquidFilter]) {
        filters["plus"] = arithmetic {
            $0.addingReportingOverflow($1)
        } decimal: {
            $0 + $1
        }
        filters["minus"] = arithmetic {
            $0.subtractingReportingOverflow($1)
        } decimal: {
            $0 - $1
        }
        filters["times"] = arithmetic {
            $0.multipliedReportingOverflow(by: $1)
        } decimal: {
            $0 * $1
        }
        filters["divided_by"] = { input, arguments in
            try arguments.expect(1)
            let dividend = LiquidNumber(input)
            let divisor = LiquidNumber(arguments[0]!)
            guard !divisor.isZero else { throw LiquidError(.argument, "divided by 0") }
            if case .integer(let a) = dividend, case .integer(let b) = divisor {
                if a == Int64.min && b == -1 { return .double(-Double(a)) }
                // Ruby's integer division rounds toward negative infinity.
                let quotient = a / b
                return .int((a % b != 0) && ((a < 0) != (b < 0)) ? quotient - 1 : quotient)
            }
            return LiquidNumber.decimal(dividend.decimalValue / divisor.decimalValue).json
        }
        filters["modulo"] = { input, arguments in
            try arguments.expect(1)
            let dividend = LiquidNumber(input)
            let divisor = LiquidNumber(arguments[0]!)
            guard !divisor.isZero else { throw LiquidError(.argument, "divided by 0") }
            if case .integer(let a) = dividend, case .integer(let b) = divisor {
                if b == -1 { return .int(0) }
                let remainder = a % b
                return .int(remainder != 0 && (remainder < 0) != (b < 0) ? remainder + b : remainder)
            }
            let a = dividend.decimalValue
            let b = divisor.decimalValue
            let floored = LiquidNumber.rounded(a / b, places: 0, mode: .down)
            return LiquidNumber.decimal(a - b * floored).json
        }
        filters["abs"] = { input, arguments in
            try arguments.expect(0)
            switch LiquidNumber(input) {
            case .integer(let value): return value == Int64.min ? .double(-Double(value)) : .int(Swift.abs(value))
            case .decimal(let value): return LiquidNumber.decimal(value < 0 ? -value : value).json
            }
        }
        filters["ceil"] = rounding(.up)
        filters["floor"] = rounding(.down)
        filters["round"] = { input, arguments in
            try arguments.expect(0, 1)
            var places = 0
            if let argument = arguments[0] {
                switch LiquidNumber(argument) {
                case .integer(let value): places = Int(clamping: value)
                case .decimal(let value):
                    places = Int(
                        clamping: LiquidNumber.truncatedInteger(LiquidNumber.rounded(value, places: 0, mode: .down))
                    )
                }
            }
            switch LiquidNumber(input) {
            case .integer(let value):
                guard places < 0 else { return .int(value) }
                return .int(
                    LiquidNumber.truncatedInteger(LiquidNumber.rounded(Decimal(value), places: places, mode: .plain))
                )
            case .decimal(let value):
                let rounded = LiquidNumber.rounded(value, places: places, mode: .plain)
                return places <= 0 ? .int(LiquidNumber.truncatedInteger(rounded)) : LiquidNumber.decimal(rounded).json
            }
        }
        filters["at_least"] = { input, arguments in
            try arguments.expect(1)
            let a = LiquidNumber(input)
            let b = LiquidNumber(arguments[0]!)
            return (a.decimalValue >= b.decimalValue ? a : b).json
        }
        filters["at_most"] = { input, arguments in
            try arguments.expect(1)
            let a = LiquidNumber(input)
            let b = LiquidNumber(arguments[0]!)
            return (a.decimalValue <= b.decimalValue ? a : b).json
        }
    }

    private static func arithmetic(
        _ integer: @escaping @Sendable (Int64, Int64) -> (Int64, Bool),
        decimal: @escaping @Sendable (Decimal, Decimal) -> Decimal
    ) -> LiquidFilter {
        { input, arguments in
            try arguments.expect(1)
            let result = LiquidNumber.combine(
                LiquidNumber(input),
                LiquidNumber(arguments[0]!),
                integer: { integer($0, $1) },
                decimal: { decimal($0, $1) }
            )
            return result.json
        }
    }

    private static func rounding(_ mode: NSDecimalNumber.RoundingMode) -> LiquidFilter {
        { input, arguments in
            try arguments.expect(0)
            switch LiquidNumber(input) {
            case .integer(let value): return .int(value)
            case .decimal(let value):
                return .int(LiquidNumber.truncatedInteger(LiquidNumber.rounded(value, places: 0, mode: mode)))
            }
        }
    }

    // MARK: Arrays

    private static func addArrayFilters(to filters: inout [String: LiquidFilter]) {
        filters["join"] = { input, arguments in
            try arguments.expect(0, 1)
            let separator = try stringArgument(arguments, 0, default: " ")
            guard case .array = input else { return input }
            return .string(items(input).map(\.liquidText).joined(separator: separator))
        }
        filters["first"] = { input, arguments in
            try arguments.expect(0)
            if case .array(let values) = input { return values.first ?? .null }
            if case .object(let object) = input, let first = object.first {
                return .array([.string(first.key), first.value])
            }
            return .null
        }
        filters["last"] = { input, arguments in
            try arguments.expect(0)
            if case .array(let values) = input { return values.last ?? .null }
            return .null
        }
        filters["reverse"] = { input, arguments in
            try arguments.expect(0)
            return .array(items(input).reversed())
        }
        filters["concat"] = { input, arguments in
            try arguments.expect(1)
            guard case .array(let other) = arguments[0]! else {
                throw LiquidError(.argument, "concat expects an array argument")
            }
            return .array(items(input) + other)
        }
        filters["compact"] = { input, arguments in
            try arguments.expect(0, 1)
            let values = items(input)
            if let key = arguments[0]?.liquidText {
                return .array(values.filter { !(property($0, key) ?? .null).isNull })
            }
            return .array(values.filter { !$0.isNull })
        }
        filters["uniq"] = { input, arguments in
            try arguments.expect(0, 1)
            let key = arguments[0]?.liquidText
            var seen: [JSON] = []
            var result: [JSON] = []
            for item in items(input) {
                let identity = key.map { property(item, $0) ?? .null } ?? item
                if !seen.contains(where: { $0.liquidEquals(identity) && $0.rubyClassName == identity.rubyClassName }) {
                    seen.append(identity)
                    result.append(item)
                }
            }
            return .array(result)
        }
        filters["map"] = { input, arguments in
            try arguments.expect(1)
            let key = text(arguments[0]!)
            return .array(
                try items(input).map { item throws(LiquidError) -> JSON in
                    switch item {
                    case .object(let object): return object[key] ?? .null
                    case .null, .string, .array: return .null
                    default: throw LiquidError(.argument, "map: cannot read '\(key)' of \(item.rubyClassName)")
                    }
                }
            )
        }
        filters["sum"] = { input, arguments in
            try arguments.expect(0, 1)
            var total = LiquidNumber.integer(0)
            for item in items(input) {
                var value = item
                if let key = arguments[0]?.liquidText {
                    guard case .object(let object) = item else {
                        throw LiquidError(.argument, "sum: cannot read '\(key)' of \(item.rubyClassName)")
                    }
                    value = object[key] ?? .int(0)
                }
                if case .object = value { continue }
                total = LiquidNumber.combine(
                    total,
                    LiquidNumber(value),
                    integer: { $0.addingReportingOverflow($1) },
                    decimal: { $0 + $1 }
                )
            }
            return total.json
        }
        filters["sort"] = { input, arguments in
            try arguments.expect(0, 1)
            return .array(
                try sorted(items(input), key: arguments[0].flatMap { $0.isNull ? nil : $0.liquidText }, natural: false)
            )
        }
        filters["sort_natural"] = { input, arguments in
            try arguments.expect(0, 1)
            return .array(
                try sorted(items(input), key: arguments[0].flatMap { $0.isNull ? nil : $0.liquidText }, natural: true)
            )
        }
        filters["where"] = { input, arguments in
            guard let tests = try testItems(input, arguments) else { return .null }
            return .array(zip(items(input), tests).filter(\.1).map(\.0))
        }
        filters["reject"] = { input, arguments in
            guard let tests = try testItems(input, arguments) else { return .null }
            return .array(zip(items(input), tests).filter { !$0.1 }.map(\.0))
        }
        filters["find"] = { input, arguments in
            guard let tests = try testItems(input, arguments) else { return .null }
            return zip(items(input), tests).first(where: \.1)?.0 ?? .null
        }
        filters["find_index"] = { input, arguments in
            guard let tests = try testItems(input, arguments), let index = tests.firstIndex(of: true) else {
                return .null
            }
            return .int(Int64(index))
        }
        filters["has"] = { input, arguments in
            guard let tests = try testItems(input, arguments) else { return .null }
            return .bool(tests.contains(true))
        }
    }

    /// What Ruby's `item[property]` gives, which `where`, `reject`, `find`, `find_index` and `has` test.
    enum Probe {
        case value(JSON?)
        /// The item has no `[]` (nil, booleans, floats): Shopify's filter then returns nil.
        case notIndexable
    }

    static func probe(_ item: JSON, _ key: JSON) throws(LiquidError) -> Probe {
        switch (item, key) {
        case (.object(let object), .string(let name)): return .value(object[name])
        case (.object, _): return .value(nil)
        case (.string(let text), .string(let part)): return .value(text.contains(part) ? .string(part) : nil)
        case (.array(let values), .int(let index)):
            return .value(RenderContext.property(of: .array(values), .int(index)))
        case (.int(let number), .int(let bit)): return .value(.int(bit < 0 || bit > 63 ? 0 : (number >> bit) & 1))
        case (.null, _), (.bool, _), (.double, _), (.string, .null): return .notIndexable
        default: throw LiquidError(.argument, "cannot select the property '\(key.liquidText)' of \(item.rubyClassName)")
        }
    }

    /// Shopify's `filter_array`: each item tested by `item[property]` (truthy, or equal to `value`); nil when an
    /// item cannot be indexed at all.
    static func testItems(_ input: JSON, _ arguments: FilterArguments) throws(LiquidError) -> [Bool]? {
        try arguments.expect(1, 2)
        let key = arguments[0]!
        // An explicit nil value means "truthy", like a missing one.
        var target = arguments[1]
        if target?.isNull == true { target = nil }
        var results: [Bool] = []
        for item in items(input) {
            switch try probe(item, key) {
            case .notIndexable: return nil
            case .value(let found):
                if let target {
                    results.append(found.map { $0.liquidEquals(target) } ?? false)
                } else {
                    results.append(found?.isLiquidTruthy ?? false)
                }
            }
        }
        return results
    }

    static func sorted(_ values: [JSON], key: String?, natural: Bool) throws(LiquidError) -> [JSON] {
        var failure: LiquidError?
        func sortKey(_ item: JSON) -> JSON {
            guard let key else { return item }
            return property(item, key) ?? .null
        }
        if natural {
            // Shopify compares the text of each value, ignoring case; nil last.
            let keyed = values.map { (item: $0, key: sortKey($0)) }
            return keyed.sorted { left, right in
                if left.key.isNull { return false }
                if right.key.isNull { return true }
                return left.key.liquidText.lowercased().utf8.lexicographicallyPrecedes(
                    right.key.liquidText.lowercased().utf8
                )
            }.map(\.item)
        }
        let result = values.sorted { left, right in
            let a = sortKey(left)
            let b = sortKey(right)
            // nil sorts last, as in Shopify Liquid.
            if a.isNull { return false }
            if b.isNull { return true }
            guard let order = a.liquidCompare(b) else {
                failure = LiquidError(.argument, "comparison of \(a.rubyClassName) with \(b.rubyClassName) failed")
                return false
            }
            return order < 0
        }
        if let failure { throw failure }
        return result
    }

    // MARK: Encodings

    private static func addEncodingFilters(to filters: inout [String: LiquidFilter]) {
        filters["base64_encode"] = { input, arguments in
            try arguments.expect(0)
            return .string(Data(text(input).utf8).base64EncodedString())
        }
        filters["base64_decode"] = { input, arguments in
            try arguments.expect(0)
            return .string(try base64Decode(text(input), urlSafe: false))
        }
        filters["base64_url_safe_encode"] = { input, arguments in
            try arguments.expect(0)
            let encoded = Data(text(input).utf8).base64EncodedString()
            return .string(encoded.replacingAll("+", with: "-").replacingAll("/", with: "_"))
        }
        filters["base64_url_safe_decode"] = { input, arguments in
            try arguments.expect(0)
            return .string(try base64Decode(text(input), urlSafe: true))
        }
    }

    static func base64Decode(_ value: String, urlSafe: Bool) throws(LiquidError) -> String {
        var normalized = value
        if urlSafe { normalized = normalized.replacingAll("-", with: "+").replacingAll("_", with: "/") }
        let remainder = normalized.utf8.count % 4
        if remainder != 0 { normalized += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: normalized) else {
            throw LiquidError(.argument, "invalid base64 provided to base64_decode")
        }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Default

    static let defaultValue: LiquidFilter = { input, arguments in
        try arguments.expect(0, 1)
        let fallback = arguments[0] ?? .string("")
        if arguments[keyword: "allow_false"]?.isLiquidTruthy == true, input == .bool(false) { return input }
        if !input.isLiquidTruthy || input.isLiquidEmpty { return fallback }
        return input
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else {
            // Ruby's gsub with an empty pattern inserts the replacement between every character.
            var result = replacement
            for character in self { result += String(character) + replacement }
            return result
        }
        return components(separatedBy: target).joined(separator: replacement)
    }

    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return replacement + self }
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }

    func replacingLast(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self + replacement }
        guard let range = range(of: target, options: .backwards) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
