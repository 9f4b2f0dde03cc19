import Foundation
import QuarryCapture
import QuarryCore
import QuarryPacketbeat
import QuarrySamples
import QuarryTesting
import Testing

/// Truncated and corrupt captures are decoded as far as they go, with what went wrong counted, and never crash.
@Suite("Damaged captures", .mayBlock)
struct DamagedCaptureTests {
    @Test(
        "the corpus's truncated captures",
        .enabled(if: CorpusCaptures.directory != nil, Comment(rawValue: ProjectPaths.corpusMissing)),
        arguments: ["dpkt/examples/data/truncated_dns.pcap", "dpkt/examples/data/truncated_dns_2.pcap"]
    )
    func corpusTruncated(_ file: String) throws {
        let (documents, statistics) = try CorpusCaptures.documents(in: file)
        #expect(statistics.packets > 0)
        // What could be read was read; what could not is counted, not dropped silently.
        let counted = statistics.errors.values.reduce(0, +)
        #expect(counted > 0 || !documents.isEmpty, "\(statistics.errors)")
    }

    /// Cuts at record boundaries, inside record headers and inside packets: every whole record before the cut is
    /// read, and a cut that is not on a boundary is counted as a truncated file.
    @Test func truncatedAnywhere() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("whole.pcap").path
            var configuration = CaptureGenerator.Configuration(hosts: 4, minutes: 1, start: 1_795_939_050_000_000_000)
            configuration.lookupsPerHostPerMinute = 30
            _ = try CaptureGenerator.write(path: path, configuration: configuration)
            let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            // The ends of the records (a little-endian pcap: a 24-byte file header, then a 16-byte record header
            // whose third word is the captured length, then the packet).
            var recordEnds = [24]
            while recordEnds.last! < whole.count {
                let at = recordEnds.last!
                let captured = (0..<4).reduce(0) { $0 | Int(whole[at + 8 + $1]) << (8 * $1) }
                recordEnds.append(at + 16 + captured)
            }
            #expect(recordEnds.last == whole.count)
            let truncated = "capture: " + CaptureError.Kind.truncatedFile.rawValue
            var generator = SplitMix64(seed: 17)
            let cuts =
                [24, 25, 39, 40, recordEnds[1] - 1, recordEnds[1], recordEnds[1] + 1, whole.count]
                + (0..<40).map { _ in Int.random(in: 24...whole.count, using: &generator) }
            for length in cuts {
                let cut = directory.appendingPathComponent("cut.pcap")
                try Data(whole.prefix(length)).write(to: cut)
                let ingester = CaptureIngester { _ in }
                try ingester.ingest(path: cut.path)
                let statistics = ingester.finish()
                let wholeRecords = recordEnds.lastIndex { $0 <= length }!
                #expect(statistics.packets == wholeRecords, "cut at \(length)")
                #expect(
                    (statistics.errors[truncated] != nil) == !recordEnds.contains(length),
                    "cut at \(length): \(statistics.errors)"
                )
            }
        }
    }

    @Test func corruptedBytesNeverCrash() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("whole.pcapng").path
            var configuration = CaptureGenerator.Configuration(hosts: 4, minutes: 1, start: 1_795_939_050_000_000_000)
            configuration.format = .pcapng()
            configuration.lookupsPerHostPerMinute = 30
            _ = try CaptureGenerator.write(path: path, configuration: configuration)
            let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            var random = SystemRandomNumberGenerator()
            var errorsSeen = 0
            for _ in 0..<60 {
                var bytes = whole
                for _ in 0..<Int.random(in: 1...20, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                let damaged = directory.appendingPathComponent("damaged.pcapng")
                try Data(bytes).write(to: damaged)
                let ingester = CaptureIngester { _ in }
                do {
                    try ingester.ingest(path: damaged.path)
                } catch {
                    // Only a damaged file header stops before the first packet.
                    errorsSeen += 1
                    continue
                }
                let statistics = ingester.finish()
                errorsSeen += statistics.errors.isEmpty ? 0 : 1
            }
            #expect(errorsSeen > 0)
        }
    }

    @Test func notACapture() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("notes.txt")
            try Data("this is not a capture file at all".utf8).write(to: path)
            #expect(throws: CaptureError.self) { try CaptureReader(path: path.path) }
            #expect(throws: CaptureError.self) {
                try CaptureReader(path: directory.appendingPathComponent("missing").path)
            }
        }
    }
}
