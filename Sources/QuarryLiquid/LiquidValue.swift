public import QuarryCore

/// Liquid's view of JSON values: truthiness, output text, equality and ordering as Shopify's reference
/// implementation (Ruby) defines them.
///
/// Templates work on ``QuarryCore/JSON`` directly, so story events flow into templates without conversion.
extension JSON {
    /// Only `nil` and `false` are falsy in Liquid; `0`, `""` and `[]` are truthy.
    public var isLiquidTruthy: Bool {
        switch self {
        case .null, .bool(false): return false
        default: return true
        }
    }

    /// The text `{{ value }}` writes: Ruby's `to_s` with Liquid's rules (nil is empty, arrays are joined).
    public var liquidText: String {
        switch self {
        case .null: return ""
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .double(let value): return Self.rubyFloatText(value)
        case .string(let value): return value
        case .array(let values):
            var text = ""
            for value in values { text += value.liquidText }
            return text
        case .object(let object):
            // Ruby's Hash#inspect, which is what Shopify Liquid prints for a hash.
            var text = "{"
            var first = true
            for (key, value) in object {
                if !first { text += ", " }
                first = false
                text += "\"\(key)\"=>" + value.liquidInspect
            }
            return text + "}"
        }
    }

    /// Ruby's `inspect`, used inside printed hashes.
    var liquidInspect: String {
        switch self {
        case .null: return "nil"
        case .string(let value): return "\"\(value)\""
        case .array(let values): return "[" + values.map(\.liquidInspect).joined(separator: ", ") + "]"
        default: return liquidText
        }
    }

    /// Ruby's `Float#to_s`: the shortest digits that round-trip, fixed notation for decimal exponents from -4 to 16,
    /// scientific (`1.0e+20`) outside them, and always a fractional part (`1.0`).
    static func rubyFloatText(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is also the shortest round-trip form; take its digits and exponent apart.
        var description = "\(value.magnitude)"
        var exponent = 0
        if let e = description.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(description[description.index(after: e)...]) ?? 0
            description = String(description[..<e])
        }
        var digits = ""
        var pointPosition = description.count
        for (offset, character) in description.enumerated() {
            if character == "." { pointPosition = offset } else { digits.append(character) }
        }
        // Normalise to digits d1d2... with the value 0.d1d2... × 10^decimalExponent.
        let leadingZeros = digits.prefix { $0 == "0" }.count
        digits.removeFirst(leadingZeros)
        while digits.hasSuffix("0") { digits.removeLast() }
        if digits.isEmpty { digits = "0" }
        let decimalExponent = pointPosition - leadingZeros + exponent
        let sign = value < 0 ? "-" : ""
        if decimalExponent > 0 && decimalExponent <= 16 {
            if digits.count <= decimalExponent {
                return sign + digits + String(repeating: "0", count: decimalExponent - digits.count) + ".0"
            }
            let split = digits.index(digits.startIndex, offsetBy: decimalExponent)
            return sign + digits[..<split] + "." + digits[split...]
        }
        if decimalExponent <= 0 && decimalExponent > -4 {
            return sign + "0." + String(repeating: "0", count: -decimalExponent) + digits
        }
        let mantissa = digits.count == 1 ? digits + ".0" : String(digits.prefix(1)) + "." + digits.dropFirst()
        let power = decimalExponent - 1
        let powerText = power < 0 ? "-" + pad2(-power) : "+" + pad2(power)
        return sign + mantissa + "e" + powerText
    }

    private static func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// Ruby's `==` as Liquid uses it: `1 == 1.0`, but `1 != "1"` and `1 != true`.
    public func liquidEquals(_ other: JSON) -> Bool {
        switch (self, other) {
        case (.int(let a), .int(let b)): return a == b
        case (.int(let a), .double(let b)): return Double(a) == b
        case (.double(let a), .int(let b)): return a == Double(b)
        case (.double(let a), .double(let b)): return a == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.liquidEquals($1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.allSatisfy { member in b[member.key].map { member.value.liquidEquals($0) } ?? false }
        default: return self == other
        }
    }

    /// Ruby's `<=>` for the pairs Liquid can order (numbers with numbers, strings with strings); nil otherwise.
    func liquidCompare(_ other: JSON) -> Int? {
        switch (self, other) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)):
            // Ruby compares strings byte by byte.
            return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : (a == b ? 0 : 1)
        default:
            guard let a = numericValue, let b = other.numericValue else { return nil }
            return a < b ? -1 : (a == b ? 0 : 1)
        }
    }

    /// The value of an `.int` or `.double`; nil for everything else.
    var numericValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// Liquid's `empty`: an empty string, array or object.
    var isLiquidEmpty: Bool {
        switch self {
        case .string(let value): return value.isEmpty
        case .array(let values): return values.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }

    /// What compares equal to Liquid's `blank`: nil (and so an undefined variable), false, a string of only
    /// whitespace, an empty array or object — as Shopify's Liquid and the Golden Liquid suite have it. python-liquid 2
    /// differs for nil, undefined and false only (Tests/QuarryLiquidTests/BlankAndEmptyTests.swift checks the matrix).
    var isLiquidBlank: Bool {
        switch self {
        case .null, .bool(false): return true
        case .string(let value): return value.allSatisfy(\.isWhitespace)
        case .array(let values): return values.isEmpty
        case .object(let object): return object.isEmpty
        default: return false
        }
    }

    /// Ruby's name for the value's class, as Liquid's error messages use it.
    var rubyClassName: String {
        switch self {
        case .null: return "NilClass"
        case .bool(let value): return value ? "TrueClass" : "FalseClass"
        case .int: return "Integer"
        case .double: return "Float"
        case .string: return "String"
        case .array: return "Array"
        case .object: return "Hash"
        }
    }
}
