import ArgumentParser
import Foundation
import QuarryCapture
import QuarryCore
import QuarryPacketbeat
import QuarrySamples
import QuarrySearch
import QuarryServer

extension Quarry {
    /// `quarry demo`: writes a packet capture of a small network, decodes it into Packetbeat's DNS and flow
    /// documents in the embedded store, and runs the reference hunt's two searches: which hosts asked about a domain,
    /// and which hosts then sent traffic to its addresses.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Capture a sample network, ingest it, and hunt for the hosts that asked about a domain or contacted it.",
            discussion: """
                Without --data the demo uses a fresh temporary directory and removes it afterwards. --documents \
                loads generated documents instead of decoding a capture.
                """
        )
        @Option(name: .long, help: "Data directory to load into (kept).") var data: String?
        @Option(name: .long, help: "Hosts on the sample network.") var hosts = 100
        @Option(name: .long, help: "Minutes of traffic in the capture, ending now.") var minutes = 60
        @Option(name: .long, help: "Load this many generated documents (last 24 hours) instead of a capture.")
        var documents: Int?
        @Option(name: .long, help: "The domain to hunt for.") var domain = "update.evil-cdn.example"
        @Option(name: .long, help: "The look-back window (ES date math unit: 4h, 30m, 2d).") var since = "4h"

        func run() throws {
            tuneMemoryAllocator()
            let directory: URL
            let temporary = data == nil
            if let data {
                directory = URL(fileURLWithPath: data)
            } else {
                directory = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-demo-\(getpid())")
            }
            defer { if temporary { try? FileManager.default.removeItem(at: directory) } }
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)

            let started = Date()
            let count: Int
            if let documents {
                count = try loadDocuments(documents, api: api, into: directory)
            } else {
                count = try loadCapture(store: store, into: directory)
            }
            let seconds = Date().timeIntervalSince(started)
            print(
                String(
                    format: "Loaded %d documents in %.1f s (%.0f documents/s).",
                    count,
                    seconds,
                    Double(count) / seconds
                )
            )

            let window: JSON = ["range": ["@timestamp": ["gte": .string("now-\(since)")]]]
            let dnsQuery: JSON = [
                "size": 1000,
                "_source": ["@timestamp", "client.ip", "dns.resolved_ip"],
                "query": ["bool": ["must": [["term": ["dns.question.name": .string(domain)]], window]]],
            ]
            print("\n1. Which hosts asked about \(domain)?  POST packetbeat-*/_search")
            print(dnsQuery.serialized())
            let dnsHits = try search(api, dnsQuery)
            var hosts: [String: HostActivity] = [:]
            var resolved = Set<String>()
            for hit in dnsHits.hits {
                guard let ip = hit["client"]?["ip"]?.stringValue, let time = hit["@timestamp"]?.stringValue else {
                    continue
                }
                hosts[ip, default: HostActivity()].record(query: time)
                for address in hit["dns"]?["resolved_ip"]?.arrayValue ?? [] {
                    if let text = address.stringValue { resolved.insert(text) }
                }
            }
            print(
                "   \(dnsHits.total) DNS queries (\(dnsHits.took) ms); it resolved to: \(resolved.sorted().joined(separator: ", "))"
            )

            // Each connection's final flow report, once (active flows are also reported every period).
            let flowQuery: JSON = [
                "size": 1000,
                "_source": ["@timestamp", "source.ip", "destination.ip"],
                "query": [
                    "bool": [
                        "filter": [
                            ["terms": ["destination.ip": .array(resolved.sorted().map { .string($0) })]],
                            ["term": ["flow.final": true]], window,
                        ]
                    ]
                ],
            ]
            print("\n2. Which hosts then sent traffic to those addresses?  POST packetbeat-*/_search")
            print(flowQuery.serialized())
            let flowHits = try search(api, flowQuery)
            for hit in flowHits.hits {
                guard let ip = hit["source"]?["ip"]?.stringValue, let time = hit["@timestamp"]?.stringValue else {
                    continue
                }
                hosts[ip, default: HostActivity()].record(connection: time)
            }
            print("   \(flowHits.total) connections (\(flowHits.took) ms)")

            print("\nhost             queried  connected  first seen                last seen")
            for (ip, activity) in hosts.sorted(by: {
                (IPAddress($0.key) ?? IPAddress(ipv4: 0)) < (IPAddress($1.key) ?? IPAddress(ipv4: 0))
            }) {
                print(
                    ip.padding(toLength: 16, withPad: " ", startingAt: 0) + " " + Self.column(activity.queries, 7)
                        + "  "
                        + Self.column(activity.connections, 9) + "  " + activity.first + "  " + activity.last
                )
            }
        }

        /// Writes a capture of the sample network and decodes it into the store, as `quarry ingest` does.
        func loadCapture(store: EmbeddedStore, into directory: URL) throws -> Int {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let capture = directory.appendingPathComponent("sample-network.pcap").path
            let now = Int64(Date().timeIntervalSince1970)
            print("Capturing \(minutes) minutes of a \(hosts)-host network to \(capture) …")
            let summary = try CaptureGenerator.write(
                path: capture,
                configuration: .init(hosts: hosts, minutes: minutes, start: (now - Int64(minutes) * 60) * 1_000_000_000)
            )
            print(
                "Decoding \(summary.packets) packets (\(summary.transactions) DNS lookups, \(summary.connections) "
                    + "connections) into Packetbeat documents …"
            )
            let sink = try StoreSink(store: store, index: nil, batchSize: 5_000)
            let ingester = CaptureIngester { document in sink.add(document) }
            try ingester.ingest(path: capture)
            let statistics = ingester.finish()
            try sink.finish()
            if sink.failed > 0 || !statistics.errors.isEmpty {
                throw ValidationError("ingest failed: \(sink.failed) documents refused, errors \(statistics.errors)")
            }
            return sink.documents
        }

        /// Loads generated documents through the `_bulk` API.
        func loadDocuments(_ documents: Int, api: ElasticsearchAPI, into directory: URL) throws -> Int {
            print("Generating \(documents) Packetbeat DNS and flow documents (last 24 hours) into \(directory.path) …")
            var generator = DNSDocumentGenerator(
                configuration: .init(documents: documents, end: Int64(Date().timeIntervalSince1970 * 1000))
            )
            var batch: [UInt8] = []
            var count = 0
            func flush() throws {
                let response = api.handle(ESRequest(method: .post, path: ["_bulk"], body: batch))
                if let json = response.json, json["errors"]?.boolValue != false {
                    throw ValidationError("bulk load failed: \(json.serialized().prefix(500))")
                }
                batch.removeAll(keepingCapacity: true)
            }
            while let document = generator.next() {
                JSON.object(["index": ["_index": .string(PacketbeatIndex.name(for: document))]]).write(to: &batch)
                batch.append(0x0A)
                document.write(to: &batch)
                batch.append(0x0A)
                count += 1
                if count % 5_000 == 0 { try flush() }
            }
            if !batch.isEmpty { try flush() }
            return count
        }

        static func column(_ count: Int, _ width: Int) -> String {
            let text = String(count)
            return String(repeating: " ", count: max(0, width - text.count)) + text
        }

        struct HostActivity {
            var queries = 0
            var connections = 0
            var first = ""
            var last = ""

            mutating func record(query time: String) {
                queries += 1
                see(time)
            }

            mutating func record(connection time: String) {
                connections += 1
                see(time)
            }

            private mutating func see(_ time: String) {
                if first.isEmpty || time < first { first = time }
                if last.isEmpty || time > last { last = time }
            }
        }

        func search(_ api: ElasticsearchAPI, _ body: JSON) throws -> (hits: [JSON], total: Int64, took: Int64) {
            let response = api.handle(
                ESRequest(method: .post, path: ["packetbeat-*", "_search"], body: body.serializedBytes())
            )
            guard let json = response.json, response.status == 200 else {
                throw ValidationError("search failed: \(response.json?.serialized() ?? "")")
            }
            let hits = json["hits"]?["hits"]?.arrayValue?.compactMap { $0["_source"] } ?? []
            return (hits, json["hits"]?["total"]?["value"]?.intValue ?? 0, json["took"]?.intValue ?? 0)
        }
    }
}
