import ArgumentParser
import Foundation
import QuarryCapture
import QuarryCore
import QuarryPacketbeat
import QuarrySamples

extension Quarry {
    /// `quarry sample dns`: generated Packetbeat-shaped data for demos, tests and benchmarks.
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate sample data.",
            subcommands: [DNS.self, Capture.self, Template.self]
        )

        struct Capture: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write a packet capture of a small network's DNS and the connections that follow it.",
                discussion: """
                    The capture ends now and has DNS over UDP and TCP, CNAME chains, AAAA, MX, NXDOMAIN, unanswered \
                    queries, fragmented responses and TCP connections to the resolved addresses, plus the reference \
                    hunt's planted domains (update.evil-cdn.example, c2.badactor.example) and a host that connects \
                    to 203.0.113.66 without resolving it.

                    Examples:
                      quarry sample capture --out network.pcap
                      quarry sample capture --out big.pcapng --hosts 200 --minutes 600

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Option(name: .long, help: "The capture file to write.") var out: String
            @Option(name: .long, help: "Client hosts.") var hosts = 50
            @Option(name: .long, help: "Minutes of traffic, ending now.") var minutes = 30
            @Option(name: .long, help: "DNS lookups per host per minute.") var rate = 6.0
            @Option(name: .long, help: "Share of answered lookups followed by a TCP connection (0 to 1).")
            var connections = 0.5
            @Option(name: .long, help: "pcap or pcapng.") var format = "pcap"
            @Option(name: .long, help: "ethernet, linux-sll, linux-sll2, raw, null, loop or ppp.")
            var linkType = "ethernet"
            @Option(name: .long, help: "802.1Q VLAN tags (repeat for QinQ; ethernet only).") var vlan: [UInt16] = []
            @Option(name: .long, help: "Random seed.") var seed: UInt64 = 0x5EED

            func run() throws {
                let linkTypes: [String: LinkType] = [
                    "ethernet": .ethernet, "linux-sll": .linuxSLL, "linux-sll2": .linuxSLL2, "raw": .raw,
                    "null": .null, "loop": .loop, "ppp": .ppp,
                ]
                guard let link = linkTypes[linkType] else { throw ValidationError("unknown link type \(linkType)") }
                let nowSeconds = Int64(Date().timeIntervalSince1970)
                var configuration = CaptureGenerator.Configuration(
                    hosts: hosts,
                    minutes: minutes,
                    start: (nowSeconds - Int64(minutes) * 60) * 1_000_000_000
                )
                configuration.seed = seed
                configuration.linkType = link
                configuration.vlans = vlan
                configuration.lookupsPerHostPerMinute = rate
                configuration.connectionShare = connections
                switch format {
                case "pcap": configuration.format = .pcap()
                case "pcapng": configuration.format = .pcapng()
                default: throw ValidationError("--format must be pcap or pcapng")
                }
                let started = Date()
                let summary = try CaptureGenerator.write(path: out, configuration: configuration)
                printError(
                    "wrote \(summary.packets) packets (\(String(format: "%.1f", Double(summary.bytes) / 1_048_576)) MB) "
                        + "in \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(summary.transactions) DNS "
                        + "lookups (\(summary.overTCP) over TCP, \(summary.nxdomain) NXDOMAIN, \(summary.unanswered) "
                        + "unanswered, \(summary.fragmented) fragmented), \(summary.connections) connections"
                )
            }
        }

        struct Template: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the index template with the ECS types of Packetbeat's fields, for packetbeat-*.",
                discussion: """
                    Examples:
                      quarry sample template > packetbeat-template.json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )

            func run() {
                print(JSON.object(PacketbeatTemplate.body).serialized(pretty: true))
            }
        }

        struct DNS: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write Packetbeat-shaped DNS and flow documents as an Elasticsearch bulk file.",
                discussion: """
                    Examples:
                      quarry sample dns --documents 100000 --out dns.ndjson
                      quarry sample dns --documents 1000 | quarry bulk -

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Option(name: .long, help: "How many documents.") var documents = 100_000
            @Option(name: .long, help: "Hours the documents span, ending now.") var hours = 24
            @Option(name: .long, help: "Output file (default: standard output).") var out: String?
            @Option(name: .long, help: "Random seed.") var seed: UInt64 = 0x5EED

            func run() throws {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                var generator = DNSDocumentGenerator(
                    configuration: .init(
                        documents: documents,
                        end: now,
                        spanMillis: Int64(hours) * 3_600_000,
                        seed: seed
                    )
                )
                let output: FileHandle
                if let out {
                    guard FileManager.default.createFile(atPath: out, contents: nil),
                        let handle = FileHandle(forWritingAtPath: out)
                    else { throw CommandFailure("cannot write \(out)") }
                    output = handle
                } else {
                    output = .standardOutput
                }
                var buffer: [UInt8] = []
                buffer.reserveCapacity(8 << 20)
                var status = TerminalStatusLine()
                let started = Date()
                var written = 0
                var bytes = 0
                while let document = generator.next() {
                    written += 1
                    let index = PacketbeatIndex.name(for: document)
                    JSON.object(["index": ["_index": .string(index)]]).write(to: &buffer)
                    buffer.append(0x0A)
                    document.write(to: &buffer)
                    buffer.append(0x0A)
                    if buffer.count > 4 << 20 {
                        output.write(Data(buffer))
                        bytes += buffer.count
                        buffer.removeAll(keepingCapacity: true)
                    }
                    if written % 1_000 == 0, status.isDue() {
                        let elapsed = Date().timeIntervalSince(started)
                        let fraction = Double(written) / Double(max(1, documents))
                        status.show(
                            String(
                                format: "%d of %d documents  %5.1f%%  %.1f MiB  %@ left",
                                written,
                                documents,
                                fraction * 100,
                                Double(bytes + buffer.count) / 1_048_576,
                                TerminalStatusLine.clock(elapsed * (1 - fraction) / fraction)
                            )
                        )
                    }
                }
                output.write(Data(buffer))
                status.clear()
            }
        }
    }
}
