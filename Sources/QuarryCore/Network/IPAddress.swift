/// An IPv4 or IPv6 address stored as 16 bytes, IPv4 as an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), which is
/// how Elasticsearch's `ip` type orders and compares addresses.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The address in network byte order, high and low 64 bits.
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32-bit value.
    public init(ipv4: UInt32) {
        high = 0
        low = 0x0000_FFFF_0000_0000 | UInt64(ipv4)
    }

    /// An address from 4 or 16 bytes in network order.
    public init?(bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        switch array.count {
        case 4:
            self.init(ipv4: array.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            self.init(
                high: array[0..<8].reduce(0) { $0 << 8 | UInt64($1) },
                low: array[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
            )
        default:
            return nil
        }
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The address after this one (the end of a CIDR block, exclusive), or nil after the last one.
    public var next: IPAddress? {
        if low == .max { return high == .max ? nil : IPAddress(high: high + 1, low: 0) }
        return IPAddress(high: high, low: low + 1)
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        isIPv4 ? (low & 0xFFFF_FFFF) >> 24 == 127 : high == 0 && low == 1
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::`, an embedded IPv4 tail, and a `%zone` ignored).
    public init?(_ text: some StringProtocol) {
        if let v4 = Self.parseIPv4(text) {
            self.init(ipv4: v4)
            return
        }
        var text = Substring(text)
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard text.contains(":") else { return nil }
        var groups: [UInt16] = []
        var tail: [UInt16] = []
        var seenDoubleColon = false
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var index = 0
        if text.hasPrefix("::") {
            seenDoubleColon = true
            index = 2
            if text == "::" { index = parts.count }
        } else if text.hasPrefix(":") {
            return nil
        }
        while index < parts.count {
            let part = parts[index]
            if part.isEmpty {
                if index == parts.count - 1, text.hasSuffix("::") { break }
                guard !seenDoubleColon else { return nil }
                seenDoubleColon = true
                index += 1
                continue
            }
            if index == parts.count - 1, part.contains(".") {
                guard let v4 = Self.parseIPv4(part) else { return nil }
                let pair = [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                if seenDoubleColon { tail += pair } else { groups += pair }
                break
            }
            guard part.count <= 4, let value = UInt16(part, radix: 16) else { return nil }
            if seenDoubleColon { tail.append(value) } else { groups.append(value) }
            index += 1
        }
        let total = groups.count + tail.count
        guard seenDoubleColon ? total <= 7 : total == 8 else { return nil }
        let all = groups + Array(repeating: 0, count: 8 - total) + tail
        self.init(
            high: all[0..<4].reduce(0) { $0 << 16 | UInt64($1) },
            low: all[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
        )
    }

    static func parseIPv4(_ text: some StringProtocol) -> UInt32? {
        // Over the contiguous bytes (every native string has them): the generic view's iterator, unspecialised
        // across modules, was a fifth of indexing a Packetbeat document.
        if let parsed = text.utf8.withContiguousStorageIfAvailable(parseIPv4(bytes:)) { return parsed }
        return parseIPv4(bytes: Array(text.utf8))
    }

    private static func parseIPv4(bytes text: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    /// Dotted quad for IPv4, RFC 5952 canonical text for IPv6.
    public var description: String {
        if isIPv4 {
            // Formatted by hand: this runs for every address of every indexed document.
            let v = UInt32(truncatingIfNeeded: low)
            return String(unsafeUninitializedCapacity: 15) { buffer in
                var position = 0
                for shift in [24, 16, 8, 0] {
                    let octet = Int(v >> UInt32(shift) & 0xFF)
                    if octet >= 100 {
                        buffer[position] = UInt8(48 + octet / 100)
                        position += 1
                    }
                    if octet >= 10 {
                        buffer[position] = UInt8(48 + octet / 10 % 10)
                        position += 1
                    }
                    buffer[position] = UInt8(48 + octet % 10)
                    position += 1
                    if shift != 0 {
                        buffer[position] = UInt8(ascii: ".")
                        position += 1
                    }
                }
                return position
            }
        }
        let groups =
            (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) }
            + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for i in 0...8 {
            if i < 8, groups[i] == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength, i - runStart >= 2 {
                    bestStart = runStart
                    bestLength = i - runStart
                }
                runStart = -1
            }
        }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        return text
    }

    /// The first and last address of `self/prefixLength`, where an IPv4 prefix counts IPv4 bits.
    public func range(prefixLength: Int) -> ClosedRange<IPAddress> {
        let bits = isIPv4 ? prefixLength + 96 : prefixLength
        let clamped = max(0, min(128, bits))
        let highMask: UInt64 = clamped >= 64 ? .max : (clamped == 0 ? 0 : ~(UInt64.max >> clamped))
        let lowMask: UInt64 = clamped <= 64 ? 0 : (clamped == 128 ? .max : ~(UInt64.max >> (clamped - 64)))
        let first = IPAddress(high: high & highMask, low: low & lowMask)
        let last = IPAddress(high: high | ~highMask, low: low | ~lowMask)
        return first...last
    }

    /// Parses `address/prefix` CIDR notation into the range it covers.
    public static func cidr(_ text: some StringProtocol) -> ClosedRange<IPAddress>? {
        guard let slash = text.firstIndex(of: "/"), let address = IPAddress(text[..<slash]),
            let prefix = Int(text[text.index(after: slash)...])
        else { return nil }
        guard prefix >= 0, prefix <= (address.isIPv4 ? 32 : 128) else { return nil }
        return address.range(prefixLength: prefix)
    }
}
