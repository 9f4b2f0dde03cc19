import Foundation
import QuarryCore
import QuarryDNS
import QuarryTesting
import Testing

@testable import QuarryPacketbeat

/// Zeek's expected `dns.log` for its DNS traces: for each transaction Zeek logs, Quarry's document has the same
/// query, query type, response code, answers and TTLs.
///
/// Zeek writes answers in its own words, translated here: names in lower case, `RRSIG <type covered> <signer>`,
/// `DS <algorithm> <digest type>`, `TXT <length> <string>` per string (Packetbeat joins the strings with a space),
/// and `BIND9 signing signal` for the private type 65534 (Packetbeat: `TYPE65534` with RFC 3597 data).
@Suite("Zeek baselines", .mayBlock)
struct ZeekBaselineTests {
    static let traces: [(baseline: String, trace: String)] = [
        ("scripts.base.protocols.dns.binds", "dns/dns-binds.pcap"),
        ("scripts.base.protocols.dns.ds", "dnssec/ds.pcap"),
        ("scripts.base.protocols.dns.duplicate-reponses", "dns-two-responses.pcap"),
        ("scripts.base.protocols.dns.multiple-txt-strings", "dns-txt-multiple.pcap"),
        ("scripts.base.protocols.dns.zero-responses", "dns-zero-RRs.pcap"),
        ("scripts.base.protocols.dns.flip", "dns53.pcap"),
        ("scripts.base.protocols.dns.spf", "dns-spf.pcap"),
        ("scripts.base.protocols.dns.mdns-no-assoc", "dns/mdns-no-assoc.pcap"),
        ("scripts.policy.protocols.dns.original_case", "dns_original_case.pcap"),
    ]

    static let root = ProjectPaths.corpus?.appendingPathComponent("pcaps/zeek/testing/btest")

    struct Row {
        var fields: [String: String]
        subscript(_ name: String) -> String { fields[name] ?? "-" }
    }

    static func rows(_ baseline: String) throws -> [Row] {
        let url = try #require(root).appendingPathComponent("Baseline/\(baseline)/dns.log")
        let text = try String(contentsOf: url, encoding: .utf8)
        var names: [String] = []
        var rows: [Row] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#fields") {
                names = line.split(separator: "\t").dropFirst().map(String.init)
            } else if !line.hasPrefix("#") {
                let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                rows.append(Row(fields: Dictionary(uniqueKeysWithValues: zip(names, values))))
            }
        }
        return rows
    }

    /// Zeek's words for one answer of a Packetbeat document.
    static func zeekAnswer(_ answer: JSON) -> String {
        let type = answer["type"]?.stringValue ?? ""
        let data = answer["data"]?.stringValue ?? ""
        switch type {
        case "A", "AAAA": return data
        case "CNAME", "NS", "PTR", "MX": return data.lowercased()
        case "RRSIG":
            let covered = DNSType(name: answer["type_covered"]?.stringValue ?? "")?.rawValue ?? 0
            return "RRSIG \(covered) \((answer["signer_name"]?.stringValue ?? "").lowercased())"
        case "DS":
            return "DS \(answer["algorithm"]?.stringValue ?? "") \(answer["digest_type"]?.stringValue ?? "")"
        case "TYPE65534": return "BIND9 signing signal"
        default: return data
        }
    }

    /// Zeek's `TXT 127 abc… TXT 98 def…` as the strings Packetbeat joins with spaces.
    static func joinedStrings(_ zeek: String) -> String? {
        var rest = Substring(zeek)
        var strings: [String] = []
        while let space = rest.firstIndex(of: " "), ["TXT", "SPF"].contains(rest[..<space]) {
            rest = rest[rest.index(after: space)...]
            guard let lengthEnd = rest.firstIndex(of: " "), let length = Int(rest[..<lengthEnd]) else { return nil }
            rest = rest[rest.index(after: lengthEnd)...]
            strings.append(String(rest.prefix(length)))
            rest = rest.dropFirst(length).drop { $0 == " " }
        }
        return strings.isEmpty ? nil : strings.joined(separator: " ")
    }

    @Test(
        "each logged transaction matches Quarry's document",
        .enabled(if: root != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        arguments: traces.map(\.baseline)
    )
    func baseline(_ baseline: String) throws {
        let trace = Self.traces.first { $0.baseline == baseline }!.trace
        var options = PacketbeatOptions()
        options.flows = false
        let (documents, _) = try CorpusCaptures.documents(in: "zeek/testing/btest/Traces/\(trace)", options: options)
        var unused = documents
        let rows = try Self.rows(baseline)
        #expect(!rows.isEmpty)
        for row in rows {
            // Zeek's originator is the client; for a response without its query (`flip`) Zeek may have guessed the
            // roles the other way, so either orientation matches.
            let position = unused.firstIndex { document in
                let client = (document["client"]?["ip"]?.stringValue, document["client"]?["port"]?.intValue)
                let server = (document["server"]?["ip"]?.stringValue, document["server"]?["port"]?.intValue)
                let origin = (row["id.orig_h"], Int64(row["id.orig_p"]))
                let responder = (row["id.resp_h"], Int64(row["id.resp_p"]))
                let sameEndpoints =
                    (client.0 == origin.0 && client.1 == origin.1 && server.0 == responder.0 && server.1 == responder.1)
                    || (client.0 == responder.0 && client.1 == responder.1 && server.0 == origin.0
                        && server.1 == origin.1)
                // An mDNS announcement has no question; Zeek logs its first answer's name as the query.
                let query =
                    document["dns"]?["question"]?["name"]?.stringValue
                    ?? document["dns"]?["answers"]?[0]?["name"]?.stringValue
                return sameEndpoints && document["dns"]?["id"]?.intValue == Int64(row["trans_id"])
                    && query?.lowercased() == row["query"].lowercased()
            }
            let index = try #require(position, "\(baseline): no document for \(row.fields)")
            let document = unused.remove(at: index)
            let dns = try #require(document["dns"])
            if row["qtype_name"] != "-" {
                let zeekType =
                    row["qtype_name"].hasPrefix("query-") ? "TYPE" + row["qtype_name"].dropFirst(6) : row["qtype_name"]
                #expect(dns["question"]?["type"]?.stringValue == zeekType, "\(baseline) \(row["query"])")
            }
            if row["rcode_name"] != "-" {
                #expect(dns["response_code"]?.stringValue == row["rcode_name"], "\(baseline) \(row["query"])")
            }
            let answers = dns["answers"]?.arrayValue ?? []
            let expectedAnswers = row["answers"] == "-" ? [] : row["answers"].split(separator: ",").map(String.init)
            let expectedTTLs = row["TTLs"] == "-" ? [] : row["TTLs"].split(separator: ",").map(String.init)
            #expect(answers.count == expectedAnswers.count, "\(baseline) \(row["query"]): answers")
            for (answer, expected) in zip(answers, expectedAnswers) {
                if let joined = Self.joinedStrings(expected) {
                    #expect(answer["data"]?.stringValue == joined, "\(baseline): \(expected)")
                } else {
                    #expect(Self.zeekAnswer(answer) == expected, "\(baseline): \(answer)")
                }
            }
            #expect(answers.map { ($0["ttl"]?.stringValue ?? "") + ".000000" } == expectedTTLs, "\(baseline): TTLs")
        }
    }
}
