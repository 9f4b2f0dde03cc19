import Foundation
import QuarryCore
import Testing

struct DateTests {
    @Test(arguments: [
        ("2026-11-29", Int64(1_795_910_400_000)),
        ("2026-11-29T10:15:30Z", 1_795_947_330_000),
        ("2026-11-29T10:15:30.123456789Z", 1_795_947_330_123),
        ("2026-11-29T10:15:30+01:00", 1_795_943_730_000),
        ("2026-11-29T10:15", 1_795_947_300_000),
        ("1970-01-01T00:00:00.000Z", 0),
    ])
    func parsesStrictDateOptionalTime(text: String, millis: Int64) {
        #expect(DateFormat.defaultFormat.parse(text) == millis)
    }

    @Test func rejectsWhatStrictISORejects() {
        for text in ["2026-13-01", "2026-02-30", "26-11-29", "2026-11-29 10:15:30", "yesterday"] {
            #expect(ISO8601.parse(text) == nil, "\(text)")
        }
    }

    @Test func epochMillisAndCustomPatterns() throws {
        #expect(DateFormat.defaultFormat.parse("1795947330000") == 1_795_947_330_000)
        let format = try DateFormat("yyyy/MM/dd HH:mm:ss||yyyy/MM/dd")
        #expect(format.parse("2026/11/29 10:15:30") == 1_795_947_330_000)
        #expect(format.parse("2026/11/29") == 1_795_910_400_000)
        #expect(format.format(1_795_947_330_000) == "2026/11/29 10:15:30")
        #expect(throws: DateFormatError.self) { try DateFormat("yyyy-qq") }
    }

    @Test func formatsISO() {
        #expect(ISO8601.format(1_795_947_330_123) == "2026-11-29T10:15:30.123Z")
        #expect(ISO8601.format(-1) == "1969-12-31T23:59:59.999Z")
    }

    @Test func dateMathAddsSubtractsAndRounds() throws {
        let now: Int64 = 1_795_947_330_123  // 2026-11-29T10:15:30.123Z
        #expect(try DateMath.resolve("now-4h", now: now, roundUp: false) == now - 4 * 3_600_000)
        #expect(try DateMath.resolve("now/d", now: now, roundUp: false) == 1_795_910_400_000)
        #expect(try DateMath.resolve("now/d", now: now, roundUp: true) == 1_795_910_400_000 + 86_400_000 - 1)
        #expect(try DateMath.resolve("2026-11-29||+1d", now: now, roundUp: false) == 1_795_996_800_000)
        #expect(try DateMath.resolve("2026-11-29||+1M/M", now: now, roundUp: false) == ISO8601.parse("2026-12-01"))
        #expect(try DateMath.resolve("now-1y/y", now: now, roundUp: false) == ISO8601.parse("2025-01-01"))
        #expect(throws: DateFormatError.self) { try DateMath.resolve("now-4x", now: now, roundUp: false) }
    }

    @Test func dateMathRoundsInATimeZone() throws {
        let now: Int64 = 1_795_947_330_123
        let zone = try #require(TimeZone(secondsFromGMT: 3600))
        #expect(
            try DateMath.resolve("now/d", timeZone: zone, now: now, roundUp: false) == 1_795_910_400_000 - 3_600_000
        )
    }
}

/// Date math and number conversions on values past every range: errors, never traps.
struct DateRangeTests {
    @Test func dateMathPastTheRangeIsAnError() {
        let now: Int64 = 1_764_400_000_000
        for expression in [
            "now-99999999999y", "now+300000000y", "now+99999999999999999999d", "now-9223372036854775807s",
            "now+106751991167300d", "now+3000000000000M/y",
        ] {
            #expect(throws: DateFormatError.self, "\(expression)") {
                try DateMath.resolve(expression, now: now, roundUp: true)
            }
        }
        #expect((try? DateMath.resolve("now-1y/d", now: now, roundUp: false)) != nil)
    }

    @Test func epochNumbersPastTheRangeDoNotParse() {
        #expect(DateFormat.defaultFormat.parse(number: 1e300) == nil)
        #expect(DateFormat.defaultFormat.parse(number: -.infinity) == nil)
        #expect(DateFormat.defaultFormat.parse("99999999999999999999999") == nil)
        #expect(DateFormat.defaultFormat.parse(number: 1_764_400_000_000) == 1_764_400_000_000)
    }

    /// Found by `fuzz/run.sh dates`: a pattern's `y` read an eleven-digit year whose milliseconds overflowed.
    @Test func patternYearsPastTheRangeDoNotParse() throws {
        let format = try DateFormat("dy||H* |H| H|| yH")
        #expect(format.parse("23333331650") == nil)
        #expect(try DateFormat("yyyyyyyyyy").parse("9999999999") == nil)
        #expect(try DateFormat("yyyyyyyyy").parse("292278993") != nil)
        #expect(try DateFormat("yyyy").parse("2026") == 1_767_225_600_000)
    }

    @Test func checkedConversions() {
        #expect(Int64(checkedTruncating: 1e19) == nil)
        #expect(Int64(checkedTruncating: .nan) == nil)
        #expect(Int64(checkedTruncating: -0x1p63) == .min)
        #expect(Int64(checkedTruncating: 0x1p63) == nil)
        #expect(Int64(checkedTruncating: -2.7) == -2)
        #expect(Int64.clamping(.infinity, rounding: .down) == .max)
        #expect(Int64.clamping(-1e19, rounding: .up) == .min)
        #expect(Int64.clamping(2.5, rounding: .up) == 3)
    }
}
