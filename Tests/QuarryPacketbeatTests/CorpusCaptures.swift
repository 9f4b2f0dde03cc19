import Foundation
import QuarryCapture
import QuarryCore
import QuarryDNS
import QuarryTesting

@testable import QuarryPacketbeat

/// The reference captures of `../shared/corpus/pcaps`, and helpers that decode them frame by frame.
enum CorpusCaptures {
    static let directory = ProjectPaths.corpus?.appendingPathComponent("pcaps")

    /// Every `.pcap` under the corpus's capture folder, relative paths sorted.
    static let all: [String] = {
        guard let directory,
            let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        else { return [] }
        var files: [String] = []
        for case let url as URL in enumerator where url.pathExtension == "pcap" {
            files.append(String(url.path.dropFirst(directory.path.count + 1)))
        }
        return files.sorted()
    }()

    static func path(_ relative: String) -> String {
        directory!.appendingPathComponent(relative).path
    }

    /// Ports decoded as DNS in the comparisons: Packetbeat's 53, mDNS's 5353, and the 8053 of tcpdump's tests.
    static let dnsPorts: Set<UInt16> = [53, 5353, 8053]

    struct Message {
        var frame: Int
        var transport: UInt8
        var source: IPAddress
        var sourcePort: UInt16
        var destination: IPAddress
        var destinationPort: UInt16
        var result: Result<DNSMessage, DNSDecodingError>
    }

    /// Every DNS message of a capture with the frame (1-based, as tshark numbers them) that completes it.
    static func messages(in relative: String) throws -> [Message] {
        let reader = try CaptureReader(path: path(relative))
        let decoder = PacketDecoder()
        var streams: [PacketbeatProcessor.StreamKey: TCPStream] = [:]
        var messages: [Message] = []
        var frame = 0
        while let captured = reader.next() {
            frame += 1
            guard let packet = decoder.decode(captured), packet.hasPorts,
                dnsPorts.contains(packet.sourcePort) || dnsPorts.contains(packet.destinationPort)
            else { continue }
            func add(_ bytes: UnsafeBufferPointer<UInt8>, transport: UInt8) {
                let result = Result { () throws(DNSDecodingError) -> DNSMessage in try DNSMessage.decode(bytes) }
                messages.append(
                    Message(
                        frame: frame,
                        transport: transport,
                        source: packet.source,
                        sourcePort: packet.sourcePort,
                        destination: packet.destination,
                        destinationPort: packet.destinationPort,
                        result: result
                    )
                )
            }
            switch packet.ipProtocol {
            case 17 where !packet.payload.isEmpty:
                add(packet.payload, transport: 17)
            case 6:
                let key = PacketbeatProcessor.StreamKey(
                    source: packet.source,
                    sourcePort: packet.sourcePort,
                    destination: packet.destination,
                    destinationPort: packet.destinationPort
                )
                var stream = streams[key] ?? TCPStream()
                let events = stream.add(
                    sequence: packet.tcpSequence,
                    payload: packet.payload,
                    syn: packet.tcpFlags & DecodedPacket.tcpSYN != 0
                )
                streams[key] = stream
                for case .message(let bytes) in events {
                    bytes.withUnsafeBufferPointer { add($0, transport: 6) }
                }
            default:
                break
            }
        }
        return messages
    }

    /// The documents `quarry ingest` makes of a capture.
    static func documents(
        in relative: String,
        options: PacketbeatOptions = PacketbeatOptions()
    )
        throws -> (documents: [JSONObject], statistics: PacketbeatStatistics)
    {
        var documents: [JSONObject] = []
        let ingester = CaptureIngester(options: options) { documents.append($0.json.objectValue ?? [:]) }
        try ingester.ingest(path: path(relative))
        let statistics = ingester.finish()
        return (documents, statistics)
    }
}

/// Where tshark is, when it is installed (`.ci/run` installs Debian's).
let tsharkPath: String? = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}
