import ArgumentParser
import Foundation
import QuarryCore
import QuarrySamples
import QuarrySearch
import QuarryServer

extension Quarry {
    /// `quarry demo`: loads generated Packetbeat DNS data into the embedded store and runs the reference hunt's
    /// DNS search, printing what it finds.
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load sample Packetbeat DNS data and hunt for the hosts that asked about a domain.",
            discussion: """
                Without --data the demo uses a fresh temporary directory and removes it afterwards.
                """
        )
        @Option(name: .long, help: "Data directory to load into (kept).") var data: String?
        @Option(name: .long, help: "How many DNS documents to generate (spanning the last 24 hours).")
        var documents = 200_000
        @Option(name: .long, help: "The domain to hunt for.") var domain = "update.evil-cdn.example"
        @Option(name: .long, help: "The look-back window (ES date math unit: 4h, 30m, 2d).") var since = "4h"

        func run() throws {
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

            print("Generating \(documents) Packetbeat DNS documents (last 24 hours) into \(directory.path) …")
            let started = Date()
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
            let seconds = Date().timeIntervalSince(started)
            print(
                String(
                    format: "Loaded %d documents in %.1f s (%.0f documents/s).",
                    count,
                    seconds,
                    Double(count) / seconds
                )
            )

            let body: JSON = [
                "size": 1000,
                "_source": ["@timestamp", "client.ip", "dns.resolved_ip"],
                "sort": [["@timestamp": "asc"]],
                "query": [
                    "bool": [
                        "must": [
                            ["term": ["dns.question.name": .string(domain)]],
                            ["range": ["@timestamp": ["gte": .string("now-\(since)")]]],
                        ]
                    ]
                ],
            ]
            print("\nPOST packetbeat-*/_search")
            print(body.serialized(pretty: true))
            let response = api.handle(
                ESRequest(method: .post, path: ["packetbeat-*", "_search"], body: body.serializedBytes())
            )
            guard let json = response.json, response.status == 200 else {
                throw ValidationError("search failed: \(response)")
            }
            let hits = json["hits"]?["hits"]?.arrayValue ?? []
            print(
                "\n\(json["hits"]?["total"]?["value"]?.intValue ?? 0) DNS queries for \(domain) in the last \(since) (took \(json["took"]?.intValue ?? 0) ms)"
            )
            var perHost: [String: (count: Int, first: String, last: String)] = [:]
            var resolved = Set<String>()
            for hit in hits {
                let source = hit["_source"]
                guard let ip = source?["client"]?["ip"]?.stringValue,
                    let time = source?["@timestamp"]?.stringValue
                else { continue }
                var entry = perHost[ip] ?? (0, time, time)
                entry.count += 1
                entry.last = time
                perHost[ip] = entry
                for address in source?["dns"]?["resolved_ip"]?.arrayValue ?? [] {
                    if let text = address.stringValue { resolved.insert(text) }
                }
            }
            print("\nhost             queries  first seen                last seen")
            for (ip, entry) in perHost.sorted(by: { $0.key < $1.key }) {
                let count = String(entry.count)
                print(
                    ip.padding(toLength: 16, withPad: " ", startingAt: 0) + " "
                        + String(repeating: " ", count: max(0, 7 - count.count)) + count + "  " + entry.first + "  "
                        + entry.last
                )
            }
            print("\nresolved to: \(resolved.sorted().joined(separator: ", "))")
        }
    }
}
