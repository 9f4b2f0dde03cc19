import ArgumentParser
import Foundation
import QuarryCore
import QuarryPacketbeat
import QuarrySamples

extension Quarry {
    /// `quarry sample dns`: generated Packetbeat-shaped data for demos, tests and benchmarks.
    struct Sample: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate sample data.",
            subcommands: [DNS.self, Template.self]
        )

        struct Template: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the index template with the ECS types of Packetbeat's fields, for packetbeat-*."
            )

            func run() {
                print(JSON.object(PacketbeatTemplate.body).serialized(pretty: true))
            }
        }

        struct DNS: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Write Packetbeat-shaped DNS and flow documents as an Elasticsearch bulk file."
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
                    else { throw ValidationError("cannot write \(out)") }
                    output = handle
                } else {
                    output = .standardOutput
                }
                var buffer: [UInt8] = []
                buffer.reserveCapacity(8 << 20)
                while let document = generator.next() {
                    let index = PacketbeatIndex.name(for: document)
                    JSON.object(["index": ["_index": .string(index)]]).write(to: &buffer)
                    buffer.append(0x0A)
                    document.write(to: &buffer)
                    buffer.append(0x0A)
                    if buffer.count > 4 << 20 {
                        output.write(Data(buffer))
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                output.write(Data(buffer))
            }
        }
    }
}
