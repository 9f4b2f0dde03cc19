extension Int64 {
    /// The whole part of `value`, or `nil` when `value` is not finite or lies outside `Int64`'s range.
    ///
    /// `Int64(_: Double)` traps on those values, and request data can hold any of them (`1e19`, `1e400`, `NaN`).
    public init?(checkedTruncating value: Double) {
        guard value.isFinite, value >= -0x1p63, value < 0x1p63 else { return nil }
        self.init(value.rounded(.towardZero))
    }

    /// `value` rounded by `rule` and clamped to `Int64`'s range (`NaN` becomes 0), for bounds that may lie
    /// anywhere on the number line.
    public static func clamping(_ value: Double, rounding rule: FloatingPointRoundingRule) -> Int64 {
        if value.isNaN { return 0 }
        let rounded = value.rounded(rule)
        if rounded >= 0x1p63 { return .max }
        if rounded < -0x1p63 { return .min }
        return Int64(rounded)
    }
}
