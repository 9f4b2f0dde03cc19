import ArgumentParser
import Foundation
import QuarryCapture
import QuarryCore
import QuarryElasticsearchAPI
import QuarryPacketbeat
import QuarrySamples
import QuarrySearch
import QuarryServer

extension Quarry {
    /// `quarry demo`: writes a packet capture of a small network and runs the reference hunt on it —
    /// `quarry hunt dns` with the capture: decode it into Packetbeat's DNS and flow documents in the embedded store,
    /// then run stories/dns-threat-hunt.yaml (searches, live DNS-over-HTTPS resolution, the report).
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Capture a sample network and run the reference DNS threat hunt on it.",
            discussion: """
                Without --data the demo uses a fresh temporary directory and removes it afterwards. --documents \
                loads generated documents instead of decoding a capture.

                Examples:
                  quarry demo
                  quarry demo --hosts 40 --minutes 120 --data ./demo-data

                Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                """
        )
        @Option(name: .long, help: "Data directory to load into (kept).") var data: String?
        @Option(name: .long, help: "Hosts on the sample network.") var hosts = 100
        @Option(name: .long, help: "Minutes of traffic in the capture, ending now.") var minutes = 60
        @Option(name: .long, help: "Load this many generated documents (last 24 hours) instead of a capture.")
        var documents: Int?
        @Option(name: .long, help: "The domain to hunt for.") var domain = "update.evil-cdn.example"
        @Option(name: .long, help: "DoH URL, udp://HOST:PORT, system, or none (default: Cloudflare's DoH).")
        var resolver: String?
        @Flag(name: .long, help: "Print the report as JSON.") var json = false

        func run() async throws {
            tuneMemoryAllocator()
            let directory: URL
            let temporary = data == nil
            if let data {
                directory = URL(fileURLWithPath: data)
            } else {
                directory = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-demo-\(getpid())")
            }
            defer { if temporary { try? FileManager.default.removeItem(at: directory) } }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var arguments = [domain, "--data", directory.path, "--log-level", "error"]
            if let documents {
                let started = Date()
                let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
                try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
                let count = try loadDocuments(documents, api: ElasticsearchAPI(store: store), into: directory)
                try store.close()
                let seconds = Date().timeIntervalSince(started)
                printError(
                    String(
                        format: "Loaded %d documents in %.1f s (%.0f documents/s).",
                        count,
                        seconds,
                        Double(count) / seconds
                    )
                )
                arguments += ["--since", "24h"]
            } else {
                let capture = directory.appendingPathComponent("sample-network.pcap").path
                let now = Int64(Date().timeIntervalSince1970)
                printError("Capturing \(minutes) minutes of a \(hosts)-host network to \(capture) …")
                let summary = try CaptureGenerator.write(
                    path: capture,
                    configuration: .init(
                        hosts: hosts,
                        minutes: minutes,
                        start: (now - Int64(minutes) * 60) * 1_000_000_000
                    )
                )
                printError(
                    "  \(summary.packets) packets: \(summary.transactions) DNS lookups, \(summary.connections) connections"
                )
                arguments += ["--capture", capture]
            }
            if let resolver { arguments += ["--resolver", resolver] }
            if json { arguments.append("--json") }
            let hunt = try Hunt.DNS.parse(arguments)
            try await hunt.run()
        }

        /// Loads generated documents through the `_bulk` API.
        func loadDocuments(_ documents: Int, api: ElasticsearchAPI, into directory: URL) throws -> Int {
            printError(
                "Generating \(documents) Packetbeat DNS and flow documents (last 24 hours) into \(directory.path) …"
            )
            var generator = DNSDocumentGenerator(
                configuration: .init(documents: documents, end: Int64(Date().timeIntervalSince1970 * 1000))
            )
            var batch: [UInt8] = []
            var count = 0
            func flush() throws {
                let response = api.handle(ESRequest(method: .post, path: ["_bulk"], body: batch))
                if let json = response.json, json["errors"]?.boolValue != false {
                    throw CommandFailure("bulk load failed: \(json.serialized().prefix(500))")
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
    }
}
