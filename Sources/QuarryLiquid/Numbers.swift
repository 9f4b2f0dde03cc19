import Foundation
import QuarryCore

/// Liquid's numbers: integers stay integers; anything with a fraction is computed in decimal, as Shopify Liquid
/// does with Ruby's BigDecimal, so `0.1 | plus: 0.2` is `0.3`, not `0.30000000000000004`.
enum LiquidNumber {
    case integer(Int64)
    case decimal(Decimal)

    /// Shopify's `Utils.to_number`: numbers as they are, strings that look like decimals as decimals, other
    /// strings by their leading integer, everything else 0.
    init(_ value: JSON) {
        switch value {
        case .int(let number): self = .integer(number)
        case .double(let number): self = .decimal(Self.decimal(number))
        case .string(let text):
            let trimmed = Substring(text).trimmingWhitespace()
            if Self.looksDecimal(trimmed), let decimal = Decimal(string: String(trimmed)) {
                self = .decimal(decimal)
            } else {
                self = .integer(rubyToInteger(text))
            }
        default: self = .integer(0)
        }
    }

    private static func looksDecimal(_ text: Substring) -> Bool {
        var bytes = text.utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")) else { return false }
        let whole = bytes[..<dot]
        let fraction = bytes[bytes.index(after: dot)...]
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        return !whole.isEmpty && !fraction.isEmpty && whole.allSatisfy(isDigit) && fraction.allSatisfy(isDigit)
    }

    static func decimal(_ value: Double) -> Decimal {
        Decimal(string: "\(value)") ?? Decimal(value)
    }

    var decimalValue: Decimal {
        switch self {
        case .integer(let value): return Decimal(value)
        case .decimal(let value): return value
        }
    }

    var json: JSON {
        switch self {
        case .integer(let value): return .int(value)
        case .decimal(let value): return .double(Double("\(value)") ?? 0)
        }
    }

    var isZero: Bool {
        switch self {
        case .integer(let value): return value == 0
        case .decimal(let value): return value.isZero
        }
    }

    /// Integer arithmetic when both are integers (falling back to decimal on overflow), decimal otherwise.
    static func combine(
        _ a: LiquidNumber,
        _ b: LiquidNumber,
        integer: (Int64, Int64) -> (Int64, Bool),
        decimal: (Decimal, Decimal) -> Decimal
    ) -> LiquidNumber {
        if case .integer(let x) = a, case .integer(let y) = b {
            let (result, overflow) = integer(x, y)
            if !overflow { return .integer(result) }
        }
        return .decimal(decimal(a.decimalValue, b.decimalValue))
    }

    static func rounded(_ value: Decimal, places: Int, mode: NSDecimalNumber.RoundingMode) -> Decimal {
        var input = value
        var output = Decimal()
        NSDecimalRound(&output, &input, places, mode)
        return output
    }

    /// Ruby's `Integer(...)` of a rounded decimal, clamped to 64 bits.
    static func truncatedInteger(_ value: Decimal) -> Int64 {
        let text = "\(value)"
        if let exact = Int64(text) { return exact }
        guard let double = Double(text) else { return 0 }
        if double >= 9.2e18 { return Int64.max }
        if double <= -9.2e18 { return Int64.min }
        return Int64(double)
    }
}
