import Foundation
import QuarryCapture
import QuarryCore
import QuarryTesting
import Testing

@testable import QuarryPacketbeat

/// ICMP echo exchanges are flows as Packetbeat makes them (`test_0060_flows.py`, `test_icmp4_ping` and
/// `test_icmp6_ping`): a request and its reply are one flow keyed by the address pair and the echo identifier, with
/// the reply counted on the destination side; other ICMP messages are keyed by the addresses alone. The captures are
/// written with Quarry's capture writer, over an 802.1Q VLAN and IPv6, and the exchanges tshark sees in them are the
/// oracle for how many flows there are and how many packets each side sent.
@Suite("ICMP flows", .mayBlock)
struct ICMPFlowTests {
    struct Ping {
        var from: IPAddress
        var to: IPAddress
        var identifier: UInt16
        var sequence: UInt16
        var replied = true
    }

    /// Writes the pings (each a request and, if replied, its reply) plus one destination-unreachable message.
    func capture(_ pings: [Ping], vlans: [UInt16], at path: String) throws {
        let writer = try CaptureWriter(path: path, format: .pcap(), linkTypes: [.ethernet])
        var time: Int64 = 1_795_939_050_000_000_000
        func write(_ packet: [UInt8], mac: UInt64) {
            time += 1_000_000
            let frame = PacketBuilder.frame(
                packet,
                linkType: .ethernet,
                vlans: vlans,
                sourceMAC: mac,
                destinationMAC: mac ^ 3
            )
            writer.write(frame, timestamp: time)
        }
        for ping in pings {
            let (request, reply): (UInt8, UInt8) = ping.from.isIPv4 ? (8, 0) : (128, 129)
            let body =
                [UInt8(ping.identifier >> 8), UInt8(ping.identifier & 0xFF), UInt8(ping.sequence >> 8)]
                + [UInt8(ping.sequence & 0xFF)] + Array("abcdefgh".utf8)
            write(PacketBuilder.icmp(from: ping.from, to: ping.to, type: request, code: 0, body: body), mac: 1)
            if ping.replied {
                write(PacketBuilder.icmp(from: ping.to, to: ping.from, type: reply, code: 0, body: body), mac: 2)
            }
        }
        if let first = pings.first, first.from.isIPv4 {
            // Port unreachable, quoting nothing in particular: a flow of its own, by addresses.
            write(PacketBuilder.icmp(from: first.to, to: first.from, type: 3, code: 3, body: [0, 0, 0, 0]), mac: 2)
        }
        try writer.close()
    }

    func flows(in path: String) throws -> [JSON] {
        var options = PacketbeatOptions()
        options.flowPeriod = nil
        var documents: [JSON] = []
        let ingester = CaptureIngester(options: options) { documents.append($0.json) }
        try ingester.ingest(path: path)
        _ = ingester.finish()
        return documents.filter { $0["type"] == "flow" }
    }

    /// The echo exchanges tshark sees: (unordered address pair, identifier) → (requests, replies).
    func tsharkExchanges(_ path: String) async throws -> [String: (requests: Int, replies: Int)] {
        let (_, output) = try await runTool(
            try #require(tsharkPath),
            [
                "-r", path, "-Y", "icmp.type == 8 || icmp.type == 0 || icmpv6.type == 128 || icmpv6.type == 129",
                "-T", "fields", "-E", "separator=|", "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e",
                "ipv6.dst", "-e", "icmp.type", "-e", "icmpv6.type", "-e", "icmp.ident", "-e", "icmpv6.echo.identifier",
            ]
        )
        let text = String(decoding: output, as: UTF8.self)
        var exchanges: [String: (requests: Int, replies: Int)] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            let source = fields[0].isEmpty ? fields[1] : fields[0]
            let destination = fields[2].isEmpty ? fields[3] : fields[2]
            let type = Int(fields[4].isEmpty ? fields[5] : fields[4]) ?? -1
            let identifierText = fields[6].isEmpty ? fields[7] : fields[6]
            let identifier =
                identifierText.hasPrefix("0x") ? Int(identifierText.dropFirst(2), radix: 16) : Int(identifierText)
            let key = [source, destination].sorted().joined(separator: " ") + " \(identifier ?? -1)"
            let isRequest = type == 8 || type == 128
            exchanges[key, default: (0, 0)].requests += isRequest ? 1 : 0
            exchanges[key, default: (0, 0)].replies += isRequest ? 0 : 1
        }
        return exchanges
    }

    @Test(.enabled(if: tsharkPath != nil, "tshark is not installed (.ci/run installs it)"))
    func anEchoRequestAndItsReplyAreOneFlow() async throws {
        let v4 = (IPAddress("10.0.0.1")!, IPAddress("10.0.0.2")!)
        let v6 = (IPAddress("::1")!, IPAddress("::2")!)
        let cases: [(name: String, vlans: [UInt16], pings: [Ping])] = [
            ("ipv4 over vlan 10", [10], [Ping(from: v4.0, to: v4.1, identifier: 0x1234, sequence: 1)]),
            ("ipv6 over vlan 10", [10], [Ping(from: v6.0, to: v6.1, identifier: 7, sequence: 1)]),
            (
                "two pings, one with two requests, one unanswered", [],
                [
                    Ping(from: v4.0, to: v4.1, identifier: 0x1234, sequence: 1),
                    Ping(from: v4.0, to: v4.1, identifier: 0x1234, sequence: 2),
                    Ping(from: v4.0, to: v4.1, identifier: 0x5678, sequence: 1, replied: false),
                ]
            ),
        ]
        try await withTemporaryDirectory { directory in
            for (index, test) in cases.enumerated() {
                let path = directory.appendingPathComponent("ping-\(index).pcap").path
                try capture(test.pings, vlans: test.vlans, at: path)
                let flows = try flows(in: path)
                let expected = try await tsharkExchanges(path)
                let unreachable = test.pings[0].from.isIPv4 ? 1 : 0
                #expect(flows.count == expected.count + unreachable, "\(test.name): \(flows)")

                var seen: [(requests: Int, replies: Int)] = []
                for flow in flows where flow["source"]?["ip"]?.stringValue == test.pings[0].from.description {
                    #expect(flow["flow"]?["final"] == true)
                    if let vlan = test.vlans.first { #expect(flow["flow"]?["vlan"] == .int(Int64(vlan))) }
                    let requests = Int(flow["source"]?["packets"]?.intValue ?? -1)
                    let replies = Int(flow["destination"]?["packets"]?.intValue ?? -1)
                    #expect(flow["network"]?["packets"]?.intValue == Int64(requests + replies))
                    #expect(flow["source"]?["port"] == nil && flow["destination"]?["port"] == nil)
                    seen.append((requests, replies))
                    // The community id is the one of the exchange, as before: requests and replies share it.
                    let communityID = CommunityID.compute(
                        source: test.pings[0].from,
                        destination: test.pings[0].to,
                        protocolNumber: test.pings[0].from.isIPv4 ? 1 : 58,
                        sourcePort: test.pings[0].from.isIPv4 ? 8 : 128,
                        destinationPort: 0
                    )
                    #expect(flow["network"]?["community_id"] == .string(communityID))
                }
                let counted = seen.map { "\($0.requests)/\($0.replies)" }.sorted()
                let oracle = expected.values.map { "\($0.requests)/\($0.replies)" }.sorted()
                #expect(counted == oracle, "\(test.name)")
                if unreachable == 1 {
                    let other = flows.filter { $0["source"]?["ip"]?.stringValue == test.pings[0].to.description }
                    #expect(other.count == 1)
                    #expect(other.first?["source"]?["packets"] == 1 && other.first?["destination"]?["packets"] == 0)
                }
            }
        }
    }
}
