import Foundation
import QuarryCapture
import QuarryCore
import QuarryTesting
import Testing

/// The capture layer on its own: what the writer writes, the reader reads back and the decoder takes apart, in
/// every container; a file cut short is an error with its byte offset, never a crash.
@Suite(.mayBlock)
struct CaptureRoundTripTests {
    static let client = IPAddress("10.0.0.7")!
    static let server = IPAddress("2001:db8::53")!
    static let server4 = IPAddress("192.0.2.53")!

    /// A DNS-sized UDP datagram over IPv4, a TCP SYN over IPv4 and a UDP datagram over IPv6 (with an IPv6 client).
    static func packets() -> [[UInt8]] {
        [
            PacketBuilder.udp(from: client, port: 40_000, to: server4, port: 53, payload: Array("query".utf8)),
            PacketBuilder.tcp(
                from: client,
                port: 40_001,
                to: server4,
                port: 443,
                sequence: 1,
                acknowledgment: 0,
                flags: [.syn]
            ),
            PacketBuilder.udp(from: IPAddress("fd00::7")!, port: 40_002, to: server, port: 53, payload: [1, 2, 3]),
        ]
    }

    @Test(arguments: [
        CaptureWriter.Format.pcap(), .pcap(nanoseconds: true, bigEndian: true), .pcapng(), .pcapng(resolution: 9),
    ])
    func whatIsWrittenReadsBackAndDecodes(format: CaptureWriter.Format) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("round-trip.cap").path
            let writer = try CaptureWriter(path: path, format: format, linkTypes: [.ethernet])
            for (position, packet) in Self.packets().enumerated() {
                writer.write(
                    PacketBuilder.frame(packet, linkType: .ethernet),
                    timestamp: 1_764_400_000_000_000_000 + Int64(position) * 1_000_000
                )
            }
            try writer.close()
            #expect(writer.packets == 3)

            let reader = try CaptureReader(path: path)
            let decoder = PacketDecoder()
            var decoded: [(String, String, UInt8, UInt16, Int64, [UInt8])] = []
            while let packet = reader.next() {
                #expect(packet.linkType == .ethernet)
                guard let ip = decoder.decode(packet) else { continue }
                decoded.append(
                    (
                        ip.source.description, ip.destination.description, ip.ipProtocol, ip.destinationPort,
                        ip.timestamp, Array(ip.payload)
                    )
                )
            }
            #expect(reader.error == nil)
            #expect(decoded.map(\.0) == ["10.0.0.7", "10.0.0.7", "fd00::7"])
            #expect(decoded.map(\.1) == ["192.0.2.53", "192.0.2.53", "2001:db8::53"])
            #expect(decoded.map(\.2) == [17, 6, 17])
            #expect(decoded.map(\.3) == [53, 443, 53])
            #expect(
                decoded.map(\.4) == [1_764_400_000_000_000_000, 1_764_400_000_001_000_000, 1_764_400_000_002_000_000]
            )
            #expect(decoded.first?.5 == Array("query".utf8))
        }
    }

    @Test func aFileCutShortEndsWithAnErrorAtItsOffset() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("whole.pcap").path
            let writer = try CaptureWriter(path: path, format: .pcap(), linkTypes: [.ethernet])
            for packet in Self.packets() {
                writer.write(PacketBuilder.frame(packet, linkType: .ethernet), timestamp: 0)
            }
            try writer.close()
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))

            let cut = try CaptureReader(bytes: Array(bytes.dropLast(5)))
            var count = 0
            while cut.next() != nil { count += 1 }
            #expect(count == 2)
            let error = try #require(cut.error)
            #expect(error.kind == .truncatedFile)
            #expect(error.offset > 24 && error.offset < Int64(bytes.count))

            #expect(throws: CaptureError.self) { try CaptureReader(bytes: Array("not a capture at all".utf8)) }
        }
    }
}
