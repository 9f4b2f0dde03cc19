import Foundation
import QuarryCapture
import QuarryCore
import QuarryPacketbeat
import QuarryTesting
import Testing

/// `network.community_id` of every packet of the Community ID specification's captures equals the specification's
/// baseline (`baseline/baseline_deflt.json`, seed 0).
@Suite("Community ID", .mayBlock)
struct CommunityIDTests {
    static let directory = ProjectPaths.corpus?.appendingPathComponent("pcaps/community-id-spec")

    struct Baseline: Hashable {
        var proto: UInt8
        var source: IPAddress
        var destination: IPAddress
        var sourcePort: UInt16?
        var destinationPort: UInt16?
    }

    static func baseline() throws -> [Baseline: String] {
        let url = try #require(directory).appendingPathComponent("baseline/baseline_deflt.json")
        guard case .array(let entries) = try JSON.parse(try String(contentsOf: url, encoding: .utf8)) else {
            return [:]
        }
        var result: [Baseline: String] = [:]
        for entry in entries {
            let key = Baseline(
                proto: UInt8(entry["proto"]?.intValue ?? 0),
                source: IPAddress(entry["saddr"]?.stringValue ?? "")!,
                destination: IPAddress(entry["daddr"]?.stringValue ?? "")!,
                sourcePort: entry["sport"]?.intValue.map { UInt16($0) },
                destinationPort: entry["dport"]?.intValue.map { UInt16($0) }
            )
            result[key] = entry["communityid"]?.stringValue
        }
        return result
    }

    @Test(
        "every packet's ID equals the specification's",
        .enabled(if: directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        arguments: ["icmp.pcap", "icmp6.pcap", "ipv6.pcap", "sctp.pcap", "tcp.pcap", "udp.pcap"]
    )
    func capture(_ file: String) throws {
        let expected = try Self.baseline()
        let reader = try CaptureReader(path: try #require(Self.directory).appendingPathComponent("pcaps/\(file)").path)
        let decoder = PacketDecoder()
        var checked = 0
        while let captured = reader.next() {
            guard let packet = decoder.decode(captured) else { continue }
            let ports = packet.hasPorts ? (packet.sourcePort, packet.destinationPort) : nil
            let id = CommunityID.compute(
                source: packet.source,
                destination: packet.destination,
                protocolNumber: packet.ipProtocol,
                sourcePort: ports?.0,
                destinationPort: ports?.1
            )
            // The baseline names ICMP packets by type and the type's counterpart (or code), as the spec maps them.
            let mapped = CommunityID.portEquivalents(
                protocolNumber: packet.ipProtocol,
                sourcePort: ports?.0,
                destinationPort: ports?.1
            )
            let key = Baseline(
                proto: packet.ipProtocol,
                source: packet.source,
                destination: packet.destination,
                sourcePort: mapped?.0,
                destinationPort: mapped?.1
            )
            let baseline = try #require(expected[key], "no baseline entry for \(key)")
            #expect(id == baseline, "\(file): \(key)")
            checked += 1
        }
        #expect(checked > 0)
    }
}
