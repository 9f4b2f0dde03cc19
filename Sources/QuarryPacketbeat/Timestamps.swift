import QuarryCore

/// `2015-08-27T08:00:55.638957Z`: UTC with microseconds, as Packetbeat writes `@timestamp` and `event.start`.
func timestampText(_ nanoseconds: Int64) -> String {
    // A damaged capture can hold any time; keep the arithmetic below from overflowing.
    let nanoseconds = min(max(nanoseconds, Int64.min / 2), Int64.max / 2)
    let micros = nanoseconds >= 0 ? nanoseconds / 1000 : (nanoseconds - 999) / 1000
    let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
    let fraction = Int(micros - seconds * 1_000_000)
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = Int(seconds - days * 86_400)
    let (year, month, day) = ISO8601.civilFromDays(Int(days))
    var bytes: [UInt8] = []
    bytes.reserveCapacity(27)
    func digits(_ value: Int, _ width: Int) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var remaining = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(remaining / divisor % 10))
            remaining %= divisor
            divisor /= 10
        }
    }
    digits(year, 4)
    bytes.append(UInt8(ascii: "-"))
    digits(month, 2)
    bytes.append(UInt8(ascii: "-"))
    digits(day, 2)
    bytes.append(UInt8(ascii: "T"))
    digits(secondOfDay / 3600, 2)
    bytes.append(UInt8(ascii: ":"))
    digits(secondOfDay / 60 % 60, 2)
    bytes.append(UInt8(ascii: ":"))
    digits(secondOfDay % 60, 2)
    bytes.append(UInt8(ascii: "."))
    digits(fraction, 6)
    bytes.append(UInt8(ascii: "Z"))
    return String(decoding: bytes, as: UTF8.self)
}

/// `0a:00:27:00:00:00`.
func macText(_ value: UInt64) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var bytes: [UInt8] = []
    for index in stride(from: 5, through: 0, by: -1) {
        let byte = Int(value >> (UInt64(index) * 8) & 0xFF)
        bytes.append(digits[byte >> 4])
        bytes.append(digits[byte & 15])
        if index > 0 { bytes.append(UInt8(ascii: ":")) }
    }
    return String(decoding: bytes, as: UTF8.self)
}
