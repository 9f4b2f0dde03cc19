public import QuarryCore

/// Builds packets: the inverse of ``PacketDecoder``, for the capture generator and for tests of the decoder.
public enum PacketBuilder {
    public struct TCPFlags: OptionSet, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let fin = TCPFlags(rawValue: 0x01)
        public static let syn = TCPFlags(rawValue: 0x02)
        public static let rst = TCPFlags(rawValue: 0x04)
        public static let psh = TCPFlags(rawValue: 0x08)
        public static let ack = TCPFlags(rawValue: 0x10)
    }

    /// A UDP datagram inside an IP packet (IPv4 or IPv6 after the source address's family).
    public static func udp(
        from source: IPAddress,
        port sourcePort: UInt16,
        to destination: IPAddress,
        port destinationPort: UInt16,
        payload: [UInt8],
        identification: UInt16 = 0
    ) -> [UInt8] {
        var segment: [UInt8] = []
        segment.reserveCapacity(8 + payload.count)
        append16(&segment, sourcePort)
        append16(&segment, destinationPort)
        append16(&segment, UInt16(truncatingIfNeeded: 8 + payload.count))
        append16(&segment, 0)
        segment += payload
        let checksum = transportChecksum(segment, protocolNumber: 17, source: source, destination: destination)
        segment[6] = UInt8(checksum >> 8)
        segment[7] = UInt8(checksum & 0xFF)
        return ip(segment, protocolNumber: 17, from: source, to: destination, identification: identification)
    }

    /// A TCP segment inside an IP packet.
    public static func tcp(
        from source: IPAddress,
        port sourcePort: UInt16,
        to destination: IPAddress,
        port destinationPort: UInt16,
        sequence: UInt32,
        acknowledgment: UInt32,
        flags: TCPFlags,
        payload: [UInt8] = [],
        identification: UInt16 = 0
    ) -> [UInt8] {
        var segment: [UInt8] = []
        segment.reserveCapacity(20 + payload.count)
        append16(&segment, sourcePort)
        append16(&segment, destinationPort)
        append32(&segment, sequence)
        append32(&segment, acknowledgment)
        segment.append(5 << 4)
        segment.append(flags.rawValue)
        append16(&segment, 65_535)
        append16(&segment, 0)
        append16(&segment, 0)
        segment += payload
        let checksum = transportChecksum(segment, protocolNumber: 6, source: source, destination: destination)
        segment[16] = UInt8(checksum >> 8)
        segment[17] = UInt8(checksum & 0xFF)
        return ip(segment, protocolNumber: 6, from: source, to: destination, identification: identification)
    }

    /// An ICMP (or ICMPv6) message inside an IP packet.
    public static func icmp(
        from source: IPAddress,
        to destination: IPAddress,
        type: UInt8,
        code: UInt8,
        body: [UInt8] = [0, 1, 0, 1]
    ) -> [UInt8] {
        let protocolNumber: UInt8 = source.isIPv4 ? 1 : 58
        var message: [UInt8] = [type, code, 0, 0] + body
        let checksum =
            source.isIPv4
            ? internetChecksum(message, initial: 0)
            : transportChecksum(message, protocolNumber: 58, source: source, destination: destination)
        message[2] = UInt8(checksum >> 8)
        message[3] = UInt8(checksum & 0xFF)
        return ip(message, protocolNumber: protocolNumber, from: source, to: destination)
    }

    /// An IPv4 or IPv6 packet around `payload`.
    public static func ip(
        _ payload: [UInt8],
        protocolNumber: UInt8,
        from source: IPAddress,
        to destination: IPAddress,
        identification: UInt16 = 0
    ) -> [UInt8] {
        if source.isIPv4 {
            var header: [UInt8] = [0x45, 0]
            append16(&header, UInt16(truncatingIfNeeded: 20 + payload.count))
            append16(&header, identification)
            append16(&header, 0x4000)  // don't fragment
            header += [64, protocolNumber, 0, 0]
            header += source.bytes.suffix(4)
            header += destination.bytes.suffix(4)
            let checksum = internetChecksum(header, initial: 0)
            header[10] = UInt8(checksum >> 8)
            header[11] = UInt8(checksum & 0xFF)
            return header + payload
        }
        var header: [UInt8] = [0x60, 0, 0, 0]
        append16(&header, UInt16(truncatingIfNeeded: payload.count))
        header += [protocolNumber, 64]
        header += source.bytes
        header += destination.bytes
        return header + payload
    }

    /// Splits an IP packet into fragments whose IP payloads are at most `mtu` bytes of IP packet (IPv4: the header
    /// is repeated; IPv6: a fragment header is added).
    public static func fragments(of packet: [UInt8], mtu: Int, identification: UInt32) -> [[UInt8]] {
        if packet.first.map({ $0 >> 4 }) == 4 {
            let headerLength = Int(packet[0] & 0x0F) * 4
            let payload = Array(packet[headerLength...])
            let chunk = (mtu - headerLength) / 8 * 8
            guard payload.count > chunk else { return [packet] }
            var result: [[UInt8]] = []
            var offset = 0
            while offset < payload.count {
                let end = min(payload.count, offset + chunk)
                var header = Array(packet[..<headerLength])
                let total = headerLength + end - offset
                header[2] = UInt8(total >> 8)
                header[3] = UInt8(total & 0xFF)
                header[4] = UInt8(identification >> 8 & 0xFF)
                header[5] = UInt8(identification & 0xFF)
                let field = UInt16(offset / 8) | (end < payload.count ? 0x2000 : 0)
                header[6] = UInt8(field >> 8)
                header[7] = UInt8(field & 0xFF)
                header[10] = 0
                header[11] = 0
                let checksum = internetChecksum(header, initial: 0)
                header[10] = UInt8(checksum >> 8)
                header[11] = UInt8(checksum & 0xFF)
                result.append(header + payload[offset..<end])
                offset = end
            }
            return result
        }
        let nextHeader = packet[6]
        let payload = Array(packet[40...])
        let chunk = (mtu - 48) / 8 * 8
        guard payload.count > chunk else { return [packet] }
        var result: [[UInt8]] = []
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + chunk)
            var header = Array(packet[..<40])
            let length = 8 + end - offset
            header[4] = UInt8(length >> 8)
            header[5] = UInt8(length & 0xFF)
            header[6] = 44
            var fragmentHeader: [UInt8] = [nextHeader, 0]
            append16(&fragmentHeader, UInt16(offset) | (end < payload.count ? 1 : 0))
            append32(&fragmentHeader, identification)
            result.append(header + fragmentHeader + payload[offset..<end])
            offset = end
        }
        return result
    }

    /// A link-layer frame around an IP packet.
    public static func frame(
        _ packet: [UInt8],
        linkType: LinkType,
        vlans: [UInt16] = [],
        sourceMAC: UInt64 = 0x02_00_00_00_00_01,
        destinationMAC: UInt64 = 0x02_00_00_00_00_02
    ) -> [UInt8] {
        let isIPv6 = packet.first.map { $0 >> 4 } == 6
        let etherType: UInt16 = isIPv6 ? 0x86DD : 0x0800
        var header: [UInt8] = []
        switch linkType.rawValue {
        case LinkType.ethernet.rawValue:
            for shift in stride(from: 40, through: 0, by: -8) {
                header.append(UInt8(destinationMAC >> UInt64(shift) & 0xFF))
            }
            for shift in stride(from: 40, through: 0, by: -8) {
                header.append(UInt8(sourceMAC >> UInt64(shift) & 0xFF))
            }
            for (index, vlan) in vlans.enumerated() {
                append16(&header, index == 0 && vlans.count > 1 ? 0x88A8 : 0x8100)
                append16(&header, vlan)
            }
            append16(&header, etherType)
        case LinkType.linuxSLL.rawValue:
            header = [0, 0, 0, 1, 0, 6]
            for shift in stride(from: 40, through: 0, by: -8) {
                header.append(UInt8(sourceMAC >> UInt64(shift) & 0xFF))
            }
            header += [0, 0]
            append16(&header, etherType)
        case LinkType.linuxSLL2.rawValue:
            append16(&header, etherType)
            header += [0, 0, 0, 0, 0, 2, 0, 1, 0, 6]
            for shift in stride(from: 40, through: 0, by: -8) {
                header.append(UInt8(sourceMAC >> UInt64(shift) & 0xFF))
            }
            header += [0, 0]
        case LinkType.null.rawValue:
            header = isIPv6 ? [30, 0, 0, 0] : [2, 0, 0, 0]
        case LinkType.loop.rawValue:
            header = isIPv6 ? [0, 0, 0, 30] : [0, 0, 0, 2]
        case LinkType.ppp.rawValue, LinkType.pppHDLC.rawValue:
            header = [0xFF, 0x03]
            append16(&header, isIPv6 ? 0x0057 : 0x0021)
        default:
            break  // raw IP
        }
        return header + packet
    }

    // MARK: Checksums

    static func transportChecksum(
        _ segment: [UInt8],
        protocolNumber: UInt8,
        source: IPAddress,
        destination: IPAddress
    )
        -> UInt16
    {
        var pseudo: [UInt8] = []
        if source.isIPv4 {
            pseudo += source.bytes.suffix(4)
            pseudo += destination.bytes.suffix(4)
            pseudo += [0, protocolNumber]
            append16(&pseudo, UInt16(truncatingIfNeeded: segment.count))
        } else {
            pseudo += source.bytes
            pseudo += destination.bytes
            append32(&pseudo, UInt32(segment.count))
            pseudo += [0, 0, 0, protocolNumber]
        }
        let sum = partialSum(pseudo, initial: 0)
        let checksum = internetChecksum(segment, initial: sum)
        return checksum == 0 && protocolNumber == 17 ? 0xFFFF : checksum
    }

    static func partialSum(_ bytes: [UInt8], initial: UInt32) -> UInt32 {
        var sum = initial
        var index = 0
        while index + 1 < bytes.count {
            sum &+= UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum &+= UInt32(bytes[index]) << 8 }
        return sum
    }

    static func internetChecksum(_ bytes: [UInt8], initial: UInt32) -> UInt16 {
        var sum = partialSum(bytes, initial: initial)
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func append16(_ bytes: inout [UInt8], _ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    static func append32(_ bytes: inout [UInt8], _ value: UInt32) {
        append16(&bytes, UInt16(value >> 16))
        append16(&bytes, UInt16(value & 0xFFFF))
    }
}
