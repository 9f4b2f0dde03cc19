import Foundation
import QuarryCapture
import QuarrySamples
import QuarryTesting
import Testing

/// The generated sample data is reproducible — the same configuration and seed write the same bytes — and says
/// what it planted, so that tests and the demo can check a hunt's answer against it.
@Suite(.mayBlock)
struct CaptureGeneratorTests {
    func write(_ directory: URL, _ name: String, seed: UInt64) throws -> (Data, CaptureGenerator.Summary) {
        var configuration = CaptureGenerator.Configuration(hosts: 4, minutes: 3, start: 1_764_400_000_000_000_000)
        configuration.seed = seed
        let path = directory.appendingPathComponent(name).path
        let summary = try CaptureGenerator.write(path: path, configuration: configuration)
        return (try Data(contentsOf: URL(fileURLWithPath: path)), summary)
    }

    @Test func theSameSeedWritesTheSameCaptureAndAnotherSeedAnother() async throws {
        try await withTemporaryDirectory { directory in
            let (first, summary) = try write(directory, "a.pcap", seed: 7)
            let (again, _) = try write(directory, "b.pcap", seed: 7)
            let (other, _) = try write(directory, "c.pcap", seed: 8)
            #expect(first == again)
            #expect(first != other)
            #expect(summary.packets > 0 && summary.transactions > 0 && summary.connections > 0)
            #expect(Int64(first.count) == summary.bytes)
        }
    }

    @Test func thePlantedLookupsAreInTheCapture() async throws {
        try await withTemporaryDirectory { directory in
            let (bytes, summary) = try write(directory, "planted.pcap", seed: 0x5EED)
            let planted = try #require(CaptureGenerator.plantedDomains.first?.name)
            let askers = try #require(summary.plantedLookups[planted])
            #expect(!askers.isEmpty)
            // Every packet reads back, and the planted name is on the wire (in some spelling: case varies).
            let reader = try CaptureReader(bytes: [UInt8](bytes))
            var packets = 0
            while reader.next() != nil { packets += 1 }
            #expect(reader.error == nil)
            #expect(packets == summary.packets)
            let label = Array(planted.split(separator: ".")[1].utf8)
            let lowered = [UInt8](bytes).map { $0 | 0x20 }
            #expect(lowered.indices.contains { lowered[$0...].starts(with: label) })
        }
    }
}
