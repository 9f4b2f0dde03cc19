public import QuarryCore

/// A packet decoded down to its transport: addresses, protocol, ports and payload.
public struct DecodedPacket {
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var source: IPAddress
    public var destination: IPAddress
    public var isIPv6: Bool
    /// The IP protocol number of the transport (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).
    public var ipProtocol: UInt8
    /// TCP/UDP/SCTP ports; for ICMP the type and code. Zero for protocols without them (see ``hasPorts``).
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var hasPorts: Bool
    /// 802.1Q / 802.1ad tags, outermost first.
    public var vlans: [UInt16]
    /// Ethernet addresses (48 bits), when the link layer has them.
    public var sourceMAC: UInt64?
    public var destinationMAC: UInt64?
    public var tcpFlags: UInt8
    public var tcpSequence: UInt32
    /// The transport payload. Points into the capture reader's buffer, or into the decoder's reassembly buffer
    /// for fragmented datagrams; valid until the next packet is read or decoded.
    public var payload: UnsafeBufferPointer<UInt8>
    /// The IP datagram's length on the wire (header included), after reassembly.
    public var ipLength: Int
    /// The frame's length on the wire.
    public var frameLength: Int

    public static let tcpFIN: UInt8 = 0x01
    public static let tcpSYN: UInt8 = 0x02
    public static let tcpRST: UInt8 = 0x04
    public static let tcpACK: UInt8 = 0x10
}

/// Why a packet was not decoded. Every kind is counted and reported; none stops reading.
public enum PacketProblem: String, CaseIterable, Sendable {
    case truncatedLinkHeader = "truncated link-layer header"
    case unsupportedLinkType = "unsupported link type"
    case notIP = "not IP (ARP, LLDP, …)"
    case truncatedIPHeader = "truncated IP header"
    case badIPHeader = "malformed IP header"
    case truncatedPacket = "packet shorter on the wire than its IP length says (snap length)"
    case truncatedTransportHeader = "truncated TCP/UDP header"
    case fragmentExpired = "IP fragments never completed"
}

/// Decodes link layers (Ethernet with 802.1Q/QinQ tags, Linux cooked SLL and SLL2, raw IPv4/IPv6, BSD loopback, PPP),
/// IPv4 with options and IPv6 with extension headers, reassembling fragments of both, then UDP, TCP, SCTP ports and
/// ICMP types.
public final class PacketDecoder {
    public init() {}

    deinit {
        reassembled.deallocate()
    }

    /// Problems seen so far, by kind.
    public private(set) var problems: [PacketProblem: Int] = [:]

    private var fragments: [FragmentKey: FragmentBuffer] = [:]
    /// Where a reassembled datagram is put; owned memory so the decoded packet can point into it.
    private var reassembled = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 65_536)
    private var lastExpiry: Int64 = 0
    /// Fragments older than this (capture time) are dropped.
    public var fragmentTimeout: Int64 = 30_000_000_000
    /// At most this many datagrams under reassembly at once.
    public var maximumPendingDatagrams = 10_000

    private struct FragmentKey: Hashable {
        var source: IPAddress
        var destination: IPAddress
        var identification: UInt32
        var protocolNumber: UInt8
    }

    private final class FragmentBuffer {
        var firstSeen: Int64
        var pieces: [(offset: Int, bytes: [UInt8])] = []
        var totalLength: Int?
        /// The protocol after the fragment header (IPv6) or of the datagram (IPv4).
        var nextProtocol: UInt8
        init(firstSeen: Int64, nextProtocol: UInt8) {
            self.firstSeen = firstSeen
            self.nextProtocol = nextProtocol
        }
    }

    private func count(_ problem: PacketProblem) {
        problems[problem, default: 0] += 1
    }

    /// Decodes one captured packet; nil when it is not an IP packet the decoder can read (counted in ``problems``),
    /// or a fragment of a datagram that is not complete yet.
    public func decode(_ packet: CapturedPacket) -> DecodedPacket? {
        expireFragments(now: packet.timestamp)
        let bytes = packet.bytes
        var offset = 0
        var vlans: [UInt16] = []
        var etherType: UInt16

        func be16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }

        switch packet.linkType.rawValue {
        case LinkType.ethernet.rawValue:
            guard bytes.count >= 14 else {
                count(.truncatedLinkHeader)
                return nil
            }
            etherType = be16(12)
            offset = 14
            while etherType == 0x8100 || etherType == 0x88A8 || etherType == 0x9100 {
                guard bytes.count >= offset + 4 else {
                    count(.truncatedLinkHeader)
                    return nil
                }
                vlans.append(be16(offset) & 0x0FFF)
                etherType = be16(offset + 2)
                offset += 4
            }
        case LinkType.linuxSLL.rawValue:
            guard bytes.count >= 16 else {
                count(.truncatedLinkHeader)
                return nil
            }
            etherType = be16(14)
            offset = 16
        case LinkType.linuxSLL2.rawValue:
            guard bytes.count >= 20 else {
                count(.truncatedLinkHeader)
                return nil
            }
            etherType = be16(0)
            offset = 20
        case LinkType.raw.rawValue, 12, 14, LinkType.ipv4.rawValue, LinkType.ipv6.rawValue:
            guard let first = bytes.first else {
                count(.truncatedLinkHeader)
                return nil
            }
            etherType = first >> 4 == 6 ? 0x86DD : 0x0800
        case LinkType.null.rawValue, LinkType.loop.rawValue:
            guard bytes.count >= 4 else {
                count(.truncatedLinkHeader)
                return nil
            }
            // The address family, in the capturing host's byte order for DLT_NULL, network order for DLT_LOOP.
            let little = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            let family = packet.linkType == .loop ? little.byteSwapped : (little > 0xFFFF ? little.byteSwapped : little)
            switch family {
            case 2: etherType = 0x0800
            case 10, 24, 28, 30: etherType = 0x86DD
            default:
                count(.notIP)
                return nil
            }
            offset = 4
        case LinkType.ppp.rawValue, LinkType.pppHDLC.rawValue:
            if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0x03 { offset = 2 }
            guard bytes.count >= offset + 2 else {
                count(.truncatedLinkHeader)
                return nil
            }
            let pppProtocol = be16(offset)
            offset += 2
            switch pppProtocol {
            case 0x0021: etherType = 0x0800
            case 0x0057: etherType = 0x86DD
            default:
                count(.notIP)
                return nil
            }
        default:
            count(.unsupportedLinkType)
            return nil
        }

        let network = UnsafeBufferPointer(rebasing: bytes[offset...])
        var decoded: DecodedPacket?
        switch etherType {
        case 0x0800: decoded = decodeIPv4(network, packet: packet, vlans: vlans)
        case 0x86DD: decoded = decodeIPv6(network, packet: packet, vlans: vlans)
        default:
            count(.notIP)
            return nil
        }
        if packet.linkType == .ethernet, decoded != nil {
            var destination: UInt64 = 0
            var source: UInt64 = 0
            for index in 0..<6 {
                destination = destination << 8 | UInt64(bytes[index])
                source = source << 8 | UInt64(bytes[6 + index])
            }
            decoded?.sourceMAC = source
            decoded?.destinationMAC = destination
        }
        return decoded
    }

    // MARK: IP

    private func decodeIPv4(
        _ bytes: UnsafeBufferPointer<UInt8>,
        packet: CapturedPacket,
        vlans: [UInt16]
    )
        -> DecodedPacket?
    {
        guard bytes.count >= 20 else {
            count(.truncatedIPHeader)
            return nil
        }
        guard bytes[0] >> 4 == 4 else {
            count(.badIPHeader)
            return nil
        }
        let headerLength = Int(bytes[0] & 0x0F) * 4
        let totalLength = Int(bytes[2]) << 8 | Int(bytes[3])
        guard headerLength >= 20, totalLength >= headerLength else {
            count(.badIPHeader)
            return nil
        }
        guard bytes.count >= headerLength else {
            count(.truncatedIPHeader)
            return nil
        }
        if bytes.count < totalLength { count(.truncatedPacket) }
        let identification = UInt32(bytes[4]) << 8 | UInt32(bytes[5])
        let flagsAndOffset = Int(bytes[6]) << 8 | Int(bytes[7])
        let moreFragments = flagsAndOffset & 0x2000 != 0
        let fragmentOffset = (flagsAndOffset & 0x1FFF) * 8
        let protocolNumber = bytes[9]
        let source = IPAddress(ipv4: Self.be32(bytes, 12))
        let destination = IPAddress(ipv4: Self.be32(bytes, 16))
        let payloadEnd = min(bytes.count, totalLength)
        let payload = UnsafeBufferPointer(rebasing: bytes[headerLength..<payloadEnd])

        if moreFragments || fragmentOffset > 0 {
            let key = FragmentKey(
                source: source,
                destination: destination,
                identification: identification,
                protocolNumber: protocolNumber
            )
            guard
                let (whole, _) = addFragment(
                    key,
                    offset: fragmentOffset,
                    bytes: payload,
                    last: !moreFragments,
                    protocolNumber: protocolNumber,
                    time: packet.timestamp
                )
            else { return nil }
            return transport(
                whole,
                protocolNumber: protocolNumber,
                source: source,
                destination: destination,
                isIPv6: false,
                packet: packet,
                vlans: vlans,
                ipLength: headerLength + whole.count
            )
        }
        return transport(
            payload,
            protocolNumber: protocolNumber,
            source: source,
            destination: destination,
            isIPv6: false,
            packet: packet,
            vlans: vlans,
            ipLength: totalLength
        )
    }

    private func decodeIPv6(
        _ bytes: UnsafeBufferPointer<UInt8>,
        packet: CapturedPacket,
        vlans: [UInt16]
    )
        -> DecodedPacket?
    {
        guard bytes.count >= 40 else {
            count(.truncatedIPHeader)
            return nil
        }
        guard bytes[0] >> 4 == 6 else {
            count(.badIPHeader)
            return nil
        }
        let payloadLength = Int(bytes[4]) << 8 | Int(bytes[5])
        guard let source = IPAddress(bytes: bytes[8..<24]), let destination = IPAddress(bytes: bytes[24..<40]) else {
            count(.badIPHeader)
            return nil
        }
        if bytes.count < 40 + payloadLength { count(.truncatedPacket) }
        let end = min(bytes.count, 40 + payloadLength)
        var next = bytes[6]
        var offset = 40
        var fragment: (identification: UInt32, offset: Int, more: Bool)?
        // Walk extension headers to the transport.
        extensionHeaders: while true {
            switch next {
            case 0, 43, 60, 135, 139, 140:  // hop-by-hop, routing, destination options, mobility, HIP, shim6
                guard offset + 8 <= end else {
                    count(.truncatedIPHeader)
                    return nil
                }
                let length = (Int(bytes[offset + 1]) + 1) * 8
                next = bytes[offset]
                offset += length
            case 51:  // authentication header
                guard offset + 8 <= end else {
                    count(.truncatedIPHeader)
                    return nil
                }
                let length = (Int(bytes[offset + 1]) + 2) * 4
                next = bytes[offset]
                offset += length
            case 44:  // fragment
                guard offset + 8 <= end else {
                    count(.truncatedIPHeader)
                    return nil
                }
                let value = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                fragment = (Self.be32(bytes, offset + 4), value & 0xFFF8, value & 1 != 0)
                next = bytes[offset]
                offset += 8
                break extensionHeaders
            default:
                break extensionHeaders
            }
        }
        guard offset <= end else {
            count(.badIPHeader)
            return nil
        }
        let payload = UnsafeBufferPointer(rebasing: bytes[offset..<end])
        if let fragment, fragment.more || fragment.offset > 0 {
            let key = FragmentKey(
                source: source,
                destination: destination,
                identification: fragment.identification,
                protocolNumber: 0
            )
            guard
                let (whole, nextProtocol) = addFragment(
                    key,
                    offset: fragment.offset,
                    bytes: payload,
                    last: !fragment.more,
                    protocolNumber: next,
                    time: packet.timestamp
                )
            else { return nil }
            return transport(
                whole,
                protocolNumber: nextProtocol,
                source: source,
                destination: destination,
                isIPv6: true,
                packet: packet,
                vlans: vlans,
                ipLength: offset + whole.count
            )
        }
        return transport(
            payload,
            protocolNumber: next,
            source: source,
            destination: destination,
            isIPv6: true,
            packet: packet,
            vlans: vlans,
            ipLength: 40 + payloadLength
        )
    }

    // MARK: Fragments

    /// Adds a fragment; returns the whole datagram's payload, and the protocol its first fragment names, once every
    /// piece is there.
    private func addFragment(
        _ key: FragmentKey,
        offset: Int,
        bytes: UnsafeBufferPointer<UInt8>,
        last: Bool,
        protocolNumber: UInt8,
        time: Int64
    ) -> (UnsafeBufferPointer<UInt8>, UInt8)? {
        let buffer: FragmentBuffer
        if let existing = fragments[key] {
            buffer = existing
        } else {
            if fragments.count >= maximumPendingDatagrams,
                let oldest = fragments.min(by: { $0.value.firstSeen < $1.value.firstSeen })
            {
                fragments[oldest.key] = nil
                count(.fragmentExpired)
            }
            buffer = FragmentBuffer(firstSeen: time, nextProtocol: protocolNumber)
            fragments[key] = buffer
        }
        if offset == 0 { buffer.nextProtocol = protocolNumber }
        buffer.pieces.append((offset, Array(bytes)))
        if last { buffer.totalLength = offset + bytes.count }
        guard let total = buffer.totalLength else { return nil }
        // Complete when the pieces cover 0..<total without a gap (overlaps: later pieces win, as Linux does).
        let sorted = buffer.pieces.sorted { $0.offset < $1.offset }
        var covered = 0
        for piece in sorted {
            if piece.offset > covered { return nil }
            covered = max(covered, piece.offset + piece.bytes.count)
        }
        guard covered >= total else { return nil }
        if reassembled.count < total {
            reassembled.deallocate()
            reassembled = .allocate(capacity: total)
        }
        for piece in buffer.pieces {
            let end = min(total, piece.offset + piece.bytes.count)
            for index in piece.offset..<max(piece.offset, end) {
                reassembled[index] = piece.bytes[index - piece.offset]
            }
        }
        fragments[key] = nil
        return (UnsafeBufferPointer(start: reassembled.baseAddress, count: total), buffer.nextProtocol)
    }

    private func expireFragments(now: Int64) {
        guard !fragments.isEmpty, elapsed(from: lastExpiry, to: now) > 1_000_000_000 else { return }
        lastExpiry = now
        for (key, buffer) in fragments where elapsed(from: buffer.firstSeen, to: now) > fragmentTimeout {
            fragments[key] = nil
            count(.fragmentExpired)
        }
    }

    /// Datagrams still waiting for fragments; at the end of a capture they count as expired.
    public func finish() {
        for _ in fragments { count(.fragmentExpired) }
        fragments.removeAll()
    }

    // MARK: Transport

    private func transport(
        _ payload: UnsafeBufferPointer<UInt8>,
        protocolNumber: UInt8,
        source: IPAddress,
        destination: IPAddress,
        isIPv6: Bool,
        packet: CapturedPacket,
        vlans: [UInt16],
        ipLength: Int
    ) -> DecodedPacket? {
        var decoded = DecodedPacket(
            timestamp: packet.timestamp,
            source: source,
            destination: destination,
            isIPv6: isIPv6,
            ipProtocol: protocolNumber,
            sourcePort: 0,
            destinationPort: 0,
            hasPorts: false,
            vlans: vlans,
            sourceMAC: nil,
            destinationMAC: nil,
            tcpFlags: 0,
            tcpSequence: 0,
            payload: payload,
            ipLength: ipLength,
            frameLength: packet.originalLength
        )
        func be16(_ at: Int) -> UInt16 { UInt16(payload[at]) << 8 | UInt16(payload[at + 1]) }
        switch protocolNumber {
        case 17:  // UDP
            guard payload.count >= 8 else {
                count(.truncatedTransportHeader)
                return nil
            }
            decoded.sourcePort = be16(0)
            decoded.destinationPort = be16(2)
            decoded.hasPorts = true
            let length = Int(be16(4))
            let end = length >= 8 ? min(payload.count, length) : payload.count
            decoded.payload = UnsafeBufferPointer(rebasing: payload[8..<end])
        case 6:  // TCP
            guard payload.count >= 20 else {
                count(.truncatedTransportHeader)
                return nil
            }
            decoded.sourcePort = be16(0)
            decoded.destinationPort = be16(2)
            decoded.hasPorts = true
            decoded.tcpSequence = Self.be32(payload, 4)
            decoded.tcpFlags = payload[13]
            let headerLength = Int(payload[12] >> 4) * 4
            guard headerLength >= 20, headerLength <= payload.count else {
                count(.truncatedTransportHeader)
                return nil
            }
            decoded.payload = UnsafeBufferPointer(rebasing: payload[headerLength...])
        case 132:  // SCTP
            guard payload.count >= 12 else {
                count(.truncatedTransportHeader)
                return nil
            }
            decoded.sourcePort = be16(0)
            decoded.destinationPort = be16(2)
            decoded.hasPorts = true
            decoded.payload = UnsafeBufferPointer(rebasing: payload[12...])
        case 1, 58:  // ICMP, ICMPv6: type and code in place of ports
            guard payload.count >= 4 else {
                count(.truncatedTransportHeader)
                return nil
            }
            decoded.sourcePort = UInt16(payload[0])
            decoded.destinationPort = UInt16(payload[1])
            decoded.hasPorts = true
            decoded.payload = UnsafeBufferPointer(rebasing: payload[4...])
        default:
            break
        }
        return decoded
    }

    static func be32(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }
}
