import Foundation
import QuarryCore
import QuarryPacketbeat
import QuarrySamples
import QuarrySearch
import QuarryTesting
import Testing

/// The reference hunt's two searches over generated Packetbeat data, checked against a brute-force scan of the
/// same documents: the store must find exactly the hosts that queried the domain and that contacted its addresses.
@Suite(.mayBlock)
struct ReferenceHuntTests {
    @Test func huntFindsExactlyTheHostsTheDataContains() async throws {
        let end = Int64(Date().timeIntervalSince1970 * 1000)
        var generator = DNSDocumentGenerator(configuration: .init(documents: 30_000, end: end, seed: 7))
        var documents: [JSON] = []
        while let document = generator.next() { documents.append(document) }
        let domain = try #require(generator.planted.first)
        let windowStart = end - 4 * 3_600_000

        // Ground truth by scanning every document.
        var queried = Set<String>()
        var resolved = Set<String>()
        var connected = Set<String>()
        for document in documents {
            let time = try #require(document["@timestamp"]?.stringValue.flatMap { ISO8601.parse($0) })
            guard time >= windowStart else { continue }
            if document["dns"]?["question"]?["name"]?.stringValue == domain.name {
                queried.insert(try #require(document["client"]?["ip"]?.stringValue))
                for address in document["dns"]?["resolved_ip"]?.arrayValue ?? [] {
                    resolved.insert(address.stringValue!)
                }
            }
        }
        for document in documents {
            let time = try #require(document["@timestamp"]?.stringValue.flatMap { ISO8601.parse($0) })
            if time >= windowStart, let destination = document["destination"]?["ip"]?.stringValue,
                resolved.contains(destination)
            {
                connected.insert(try #require(document["source"]?["ip"]?.stringValue))
            }
        }
        #expect(!queried.isEmpty && connected.contains(generator.silentConnector))

        try await withStore(segmentDocuments: 4_096) { (store: EmbeddedStore) throws in
            try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
            for start in stride(from: 0, to: documents.count, by: 5_000) {
                try store.index("packetbeat-8.17.0-test", Array(documents[start..<min(start + 5_000, documents.count)]))
            }
            let window: JSON = ["range": ["@timestamp": ["gte": "now-4h"]]]
            let dns = try store.search(
                "packetbeat-*",
                [
                    "size": 1000, "_source": ["client.ip", "dns.resolved_ip"],
                    "query": ["bool": ["must": [["term": ["dns.question.name": .string(domain.name)]], window]]],
                ]
            )
            let dnsHits = try #require(dns["hits"]?["hits"]?.arrayValue)
            #expect(Set(dnsHits.compactMap { $0["_source"]?["client"]?["ip"]?.stringValue }) == queried)
            let observed = Set(
                dnsHits.flatMap { $0["_source"]?["dns"]?["resolved_ip"]?.arrayValue ?? [] }.compactMap(\.stringValue)
            )
            #expect(observed == resolved)
            let flows = try store.search(
                "packetbeat-*",
                [
                    "size": 1000, "_source": ["source.ip"],
                    "query": [
                        "bool": [
                            "filter": [["terms": ["destination.ip": .array(observed.map { .string($0) })]], window]
                        ]
                    ],
                ]
            )
            let flowHits = try #require(flows["hits"]?["hits"]?.arrayValue)
            #expect(Set(flowHits.compactMap { $0["_source"]?["source"]?["ip"]?.stringValue }) == connected)
        }
    }
}

@Suite(.mayBlock)
struct SampleDataTests {
    @Test func clientAddressesStayValidAtTenMillionDocuments() throws {
        let generator = DNSDocumentGenerator(configuration: .init(documents: 10_000_000, end: 0))
        #expect(generator.clients.count == 200_000)
        #expect(generator.clients.allSatisfy { IPAddress($0) != nil })
        #expect(Set(generator.clients).count == generator.clients.count)
    }
}
