import Foundation
import QuarryCapture
import QuarryCore
import QuarryDNS
import QuarryTesting
import Testing

@testable import QuarryPacketbeat

/// The layers between the capture file and DNS, one by one: pcapng with several interfaces and unknown blocks,
/// IPv4 options, IPv6 extension headers, fragments of both, and DNS over TCP split and joined every way.
@Suite("Packet layers", .mayBlock)
struct PacketLayerTests {
    let client = IPAddress("2001:db8::10")!
    let server = IPAddress("2001:db8::53")!

    func response(size: Int) -> DNSMessage {
        let name = DNSName("big.example.")!
        var message = DNSMessage(id: 0x1234, isResponse: true, questions: [DNSQuestion(name: name, type: .txt)])
        let strings = (0..<(size / 200)).map { _ in [UInt8](repeating: 0x61, count: 200) }
        message.answers = [DNSResourceRecord(name: name, type: .txt, ttl: 60, data: .txt(strings))]
        return message
    }

    /// Decodes frames given as (link type, bytes) through a temporary pcapng file with one interface per link type.
    func decode(
        _ frames: [(interface: Int, bytes: [UInt8])],
        linkTypes: [LinkType],
        extraBlock: Bool = false
    )
        async throws -> (packets: [DecodedPacket], payloads: [[UInt8]])
    {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("test.pcapng").path
            let writer = try CaptureWriter(path: path, format: .pcapng(resolution: 9), linkTypes: linkTypes)
            for (index, frame) in frames.enumerated() {
                writer.write(
                    frame.bytes,
                    timestamp: 1_795_939_050_000_000_000 + Int64(index) * 1_000,
                    interface: frame.interface
                )
            }
            try writer.close()
            if extraBlock {
                // An unknown block (type 0x0BAD) right after the header blocks: readers must skip it.
                var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                let headerLength = 28 + 32 * linkTypes.count
                let unknown: [UInt8] = [0xAD, 0x0B, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4, 16, 0, 0, 0]
                bytes.insert(contentsOf: unknown, at: headerLength)
                try Data(bytes).write(to: URL(fileURLWithPath: path))
            }
            let reader = try CaptureReader(path: path)
            let decoder = PacketDecoder()
            var packets: [DecodedPacket] = []
            var payloads: [[UInt8]] = []
            while let captured = reader.next() {
                if var packet = decoder.decode(captured) {
                    // Keep the payload: it points into buffers that the next packet reuses.
                    payloads.append(Array(packet.payload))
                    packet.payload = UnsafeBufferPointer(start: nil, count: 0)
                    packets.append(packet)
                }
            }
            #expect(reader.error == nil)
            return (packets, payloads)
        }
    }

    @Test func severalInterfacesAndUnknownBlocks() async throws {
        let query = DNSMessage(id: 7, questions: [DNSQuestion(name: DNSName("a.example")!, type: .a)])
        let v4 = PacketBuilder.udp(
            from: IPAddress("10.1.0.2")!,
            port: 40000,
            to: IPAddress("10.0.0.53")!,
            port: 53,
            payload: query.encode()
        )
        let v6 = PacketBuilder.udp(from: client, port: 40001, to: server, port: 53, payload: query.encode())
        let (packets, payloads) = try await decode(
            [
                (0, PacketBuilder.frame(v4, linkType: .ethernet)), (1, PacketBuilder.frame(v6, linkType: .raw)),
                (2, PacketBuilder.frame(v4, linkType: .linuxSLL2)),
            ],
            linkTypes: [.ethernet, .raw, .linuxSLL2],
            extraBlock: true
        )
        #expect(packets.map(\.source.description) == ["10.1.0.2", "2001:db8::10", "10.1.0.2"])
        #expect(packets.map(\.timestamp) == [0, 1, 2].map { 1_795_939_050_000_000_000 + $0 * 1_000 })
        #expect(try payloads.map { try DNSMessage.decode($0).id } == [7, 7, 7])
    }

    @Test func ipv6FragmentsAndExtensionHeaders() async throws {
        let big = response(size: 3000)
        let datagram = PacketBuilder.udp(from: server, port: 53, to: client, port: 40000, payload: big.encode())
        // A hop-by-hop options header (8 bytes of padding) before the fragments.
        var withOptions = Array(datagram[..<40])
        withOptions[6] = 0
        let payloadLength = datagram.count - 40 + 8
        withOptions[4] = UInt8(payloadLength >> 8)
        withOptions[5] = UInt8(payloadLength & 0xFF)
        withOptions += [17, 0, 1, 4, 0, 0, 0, 0] + datagram[40...]
        let fragments = PacketBuilder.fragments(of: datagram, mtu: 1280, identification: 0xBEEF)
        #expect(fragments.count == 3)
        // Fragments out of order, and the unfragmented datagram with its options header.
        let frames = [fragments[2], fragments[0], fragments[1], withOptions].map {
            (0, PacketBuilder.frame($0, linkType: .ethernet, vlans: [7]))
        }
        let (packets, payloads) = try await decode(frames, linkTypes: [.ethernet])
        #expect(packets.count == 2)
        #expect(try payloads.map { try DNSMessage.decode($0) } == [big, big])
        #expect(packets.allSatisfy { $0.vlans == [7] && $0.isIPv6 && $0.sourcePort == 53 })
    }

    @Test func ipv4OptionsAndFragments() async throws {
        let big = response(size: 2500)
        let source = IPAddress("10.0.0.53")!
        let destination = IPAddress("10.1.0.2")!
        let datagram = PacketBuilder.udp(from: source, port: 53, to: destination, port: 40000, payload: big.encode())
        // The same datagram with a 4-byte options field (NOPs and end of list).
        var withOptions = datagram
        withOptions.insert(contentsOf: [1, 1, 1, 0], at: 20)
        withOptions[0] = 0x46
        let total = withOptions.count
        withOptions[2] = UInt8(total >> 8)
        withOptions[3] = UInt8(total & 0xFF)
        let fragments = PacketBuilder.fragments(of: withOptions, mtu: 1500, identification: 77)
        #expect(fragments.count == 2)
        let (packets, payloads) = try await decode(
            fragments.reversed().map { (0, PacketBuilder.frame($0, linkType: .ppp)) },
            linkTypes: [.ppp]
        )
        #expect(packets.count == 1)
        #expect(try payloads.map { try DNSMessage.decode($0) } == [big])
    }

    @Test func tcpStreamsCutMessagesHoweverTheyArrive() throws {
        let first = DNSMessage(id: 1, questions: [DNSQuestion(name: DNSName("one.example")!, type: .a)]).encode()
        let second = DNSMessage(id: 2, questions: [DNSQuestion(name: DNSName("two.example")!, type: .aaaa)]).encode()
        let stream =
            [UInt8(first.count >> 8), UInt8(first.count & 0xFF)] + first
            + [UInt8(second.count >> 8), UInt8(second.count & 0xFF)] + second

        func ids(_ segments: [(offset: Int, length: Int)]) -> [UInt16] {
            var tcp = TCPStream()
            var result: [UInt16] = []
            _ = tcp.add(sequence: 999, payload: UnsafeBufferPointer(start: nil, count: 0), syn: true)
            for (offset, length) in segments {
                let bytes = Array(stream[offset..<min(stream.count, offset + length)])
                let events = bytes.withUnsafeBufferPointer {
                    tcp.add(sequence: 1000 + UInt32(offset), payload: $0, syn: false)
                }
                for case .message(let message) in events { result.append((try? DNSMessage.decode(message))?.id ?? 0) }
            }
            return result
        }
        // Both messages in one segment.
        #expect(ids([(0, stream.count)]) == [1, 2])
        // Each byte its own segment.
        #expect(ids((0..<stream.count).map { ($0, 1) }) == [1, 2])
        // Out of order, with a retransmission and an overlapping segment.
        #expect(ids([(10, 20), (0, 10), (0, 10), (25, stream.count)]) == [1, 2])
        // The second message before the first.
        let split = first.count + 2
        #expect(ids([(split, stream.count), (0, split)]) == [1, 2])
    }
}
