import Foundation
import QuarryCapture
import QuarryCore
import QuarryPacketbeat
import QuarrySamples
import QuarryTesting
import Testing

/// Captures written by Quarry's own generator, in every format and link type the reader supports: the documents
/// are the same whatever the container, and they account for every lookup the generator made.
@Suite("Generated captures", .mayBlock)
struct GeneratedCaptureTests {
    static let start: Int64 = 1_795_939_050 * 1_000_000_000

    static func configuration(
        format: CaptureWriter.Format = .pcap(),
        linkType: LinkType = .ethernet,
        vlans: [UInt16] = []
    ) -> CaptureGenerator.Configuration {
        var configuration = CaptureGenerator.Configuration(hosts: 12, minutes: 6, start: start)
        configuration.format = format
        configuration.linkType = linkType
        configuration.vlans = vlans
        configuration.lookupsPerHostPerMinute = 20
        return configuration
    }

    /// The DNS documents' content that does not depend on the link layer.
    static func fingerprint(_ documents: [JSONObject]) -> [String] {
        documents.filter { $0["type"] == "dns" }.map { document in
            [
                document["@timestamp"]?.stringValue, document["client"]?["ip"]?.stringValue,
                document["dns"]?["question"]?["name"]?.stringValue, document["dns"]?["response_code"]?.stringValue,
                document["status"]?.stringValue, document["network"]?["transport"]?.stringValue,
                document["dns"]?["answers"].map { JSON.array($0.arrayValue ?? []).serialized() },
            ].map { $0 ?? "-" }.joined(separator: " ")
        }.sorted()
    }

    static func ingest(
        _ path: String,
        options: PacketbeatOptions = PacketbeatOptions()
    ) throws -> (
        [JSONObject], PacketbeatStatistics
    ) {
        var documents: [JSONObject] = []
        let ingester = CaptureIngester(options: options) { documents.append($0.json.objectValue ?? [:]) }
        try ingester.ingest(path: path)
        let statistics = ingester.finish()
        return (documents, statistics)
    }

    @Test func everyLookupBecomesOneDocument() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("sample.pcap").path
            let summary = try CaptureGenerator.write(path: path, configuration: Self.configuration())
            let (documents, statistics) = try Self.ingest(path)
            #expect(statistics.errors.isEmpty, "\(statistics.errors)")
            #expect(statistics.packets == summary.packets)
            let dns = documents.filter { $0["type"] == "dns" }
            #expect(dns.count == summary.transactions)
            #expect(
                dns.filter { $0["error"]?["message"] == "No response to this query was received" }.count
                    == summary.unanswered
            )
            #expect(dns.filter { $0["dns"]?["response_code"] == "NXDOMAIN" }.count == summary.nxdomain)
            #expect(dns.filter { $0["network"]?["transport"] == "tcp" }.count == summary.overTCP)
            #expect(
                dns.filter { $0["status"] == "OK" }.count == summary.transactions - summary.unanswered
                    - summary.nxdomain
            )
            #expect(summary.overTCP > 0 && summary.fragmented > 0 && summary.unanswered > 0)
            // Every flow's final report, one per connection plus the DNS and ICMP flows.
            let finals = documents.filter { $0["type"] == "flow" && $0["flow"]?["final"] == true }
            #expect(finals.count >= summary.connections)
            let queried = Set(
                // The planted lookups go out in mixed case, as 0x20-randomising resolvers send them.
                dns.filter { $0["dns"]?["question"]?["name"]?.stringValue?.lowercased() == "update.evil-cdn.example" }
                    .compactMap {
                        $0["client"]?["ip"]?.stringValue
                    }
            )
            #expect(queried == summary.plantedLookups["update.evil-cdn.example"])
        }
    }

    @Test(arguments: [
        ("pcap nanoseconds", CaptureWriter.Format.pcap(nanoseconds: true), LinkType.ethernet, [UInt16]()),
        ("pcap big-endian", .pcap(bigEndian: true), .ethernet, []),
        ("pcapng microseconds", .pcapng(resolution: 6), .ethernet, []),
        ("pcapng nanoseconds", .pcapng(resolution: 9), .ethernet, []),
        ("802.1Q", .pcap(), .ethernet, [42]),
        ("QinQ", .pcapng(), .ethernet, [101, 600]),
        ("Linux cooked", .pcap(), .linuxSLL, []),
        ("Linux cooked v2", .pcapng(), .linuxSLL2, []),
        ("raw IP", .pcap(), .raw, []),
        ("BSD loopback", .pcap(), .null, []),
        ("OpenBSD loopback", .pcap(), .loop, []),
        ("PPP", .pcap(), .ppp, []),
    ])
    func everyContainerGivesTheSameDocuments(
        name: String,
        format: CaptureWriter.Format,
        linkType: LinkType,
        vlans: [UInt16]
    ) async throws {
        try await withTemporaryDirectory { directory in
            let reference = directory.appendingPathComponent("reference.pcap").path
            _ = try CaptureGenerator.write(path: reference, configuration: Self.configuration())
            let variant = directory.appendingPathComponent("variant").path
            _ = try CaptureGenerator.write(
                path: variant,
                configuration: Self.configuration(format: format, linkType: linkType, vlans: vlans)
            )
            let (expected, _) = try Self.ingest(reference)
            let (documents, statistics) = try Self.ingest(variant)
            #expect(statistics.errors.isEmpty, "\(name): \(statistics.errors)")
            #expect(Self.fingerprint(documents) == Self.fingerprint(expected), "\(name)")
            if !vlans.isEmpty {
                let flow = try #require(documents.first { $0["type"] == "flow" })
                #expect(
                    flow["flow"]?["vlan"]
                        == (vlans.count == 1 ? .int(Int64(vlans[0])) : .array(vlans.map { .int(Int64($0)) }))
                )
            }
        }
    }

    @Test(
        "tshark decodes the generated capture as Quarry does",
        .enabled(if: tsharkPath != nil, "tshark is not installed")
    )
    func tsharkAgrees() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("sample.pcapng").path
            _ = try CaptureGenerator.write(path: path, configuration: Self.configuration(format: .pcapng()))
            let frames = try await TsharkView.frames(of: path)
            let (documents, _) = try Self.ingest(path)
            // Each answered transaction's response appears in tshark's decode with the same id and answers.
            var responses: [String: TsharkView] = [:]
            for frame in frames {
                for message in frame.messages where message.flags["dns.flags.response"] == "1" {
                    responses["\(frame.destination) \(frame.destinationPort) \(message.id)"] = message
                }
            }
            var compared = 0
            for document in documents where document["type"] == "dns" && document["status"] == "OK" {
                let key =
                    "\(document["client"]?["ip"]?.stringValue ?? "") \(document["client"]?["port"]?.intValue ?? 0) "
                    + String(format: "0x%04x", document["dns"]?["id"]?.intValue ?? 0)
                let tshark = try #require(responses[key], "tshark has no response for \(key)")
                let answers = document["dns"]?["answers"]?.arrayValue ?? []
                #expect((tshark.sections["Answers"] ?? []).count == answers.count, "\(key)")
                compared += 1
            }
            #expect(compared > 100)
        }
    }
}
