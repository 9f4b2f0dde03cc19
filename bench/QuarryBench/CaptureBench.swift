import Foundation
import QuarryCapture
import QuarryCore
import QuarryDNS
import QuarryPacketbeat

/// Decode alone, on one core: read the capture, decode every packet to its transport, and decode the DNS messages
/// (UDP on port 53) — no transactions, documents or output.
func runCaptureDecodeBenchmark(path: String) throws {
    let start = DispatchTime.now()
    let reader = try CaptureReader(path: path)
    let decoder = PacketDecoder()
    var packets = 0
    var messages = 0
    var answers = 0
    while let captured = reader.next() {
        packets += 1
        guard let packet = decoder.decode(captured), packet.ipProtocol == 17,
            packet.sourcePort == 53 || packet.destinationPort == 53
        else { continue }
        if let message = try? DNSMessage.decode(packet.payload) {
            messages += 1
            answers += message.answers.count
        }
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    print(
        String(
            format: "decode: %d packets, %d DNS messages (%d answers) in %.2f s: %.0f packets/s, %.1f MB/s",
            packets,
            messages,
            answers,
            seconds,
            Double(packets) / seconds,
            Double(reader.bytesRead) / 1_048_576 / seconds
        )
    )
}

/// Everything `quarry ingest` does before the documents leave: decode, transactions, flows and building each
/// document, which is then dropped.
func runCaptureDocumentsBenchmark(path: String) throws {
    let start = DispatchTime.now()
    var documents = 0
    let ingester = CaptureIngester { _ in documents += 1 }
    try ingester.ingest(path: path)
    let statistics = ingester.finish()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    print(
        String(
            format: "documents: %d packets, %d documents in %.2f s: %.0f packets/s, %.0f documents/s",
            statistics.packets,
            documents,
            seconds,
            Double(statistics.packets) / seconds,
            Double(documents) / seconds
        )
    )
}
