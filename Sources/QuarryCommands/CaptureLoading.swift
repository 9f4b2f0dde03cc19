import Foundation
import QuarryCore
import QuarryElastic
import QuarryPacketbeat
import QuarrySearch

/// Decodes the capture files a hunt is given into the store it searches: the embedded store in process, or the
/// store of the `quarry serve` that holds the data directory, through its Elasticsearch API. Both say how many
/// documents were new and give the span of their timestamps (nanoseconds), the hunt's window when it has no other.
enum CaptureLoading {
    static func load(_ files: [String], into store: EmbeddedStore, quiet: Bool) throws -> ClosedRange<Int64>? {
        let sink = try StoreSink(store: store, index: nil, batchSize: 5_000)
        let ingester = CaptureIngester { document in sink.add(document) }
        for file in files {
            if !quiet { printError("Decoding \(file) into the embedded store …") }
            try ingester.ingest(path: file)
        }
        _ = ingester.finish()
        try sink.finish()
        if sink.failed > 0 { throw CommandFailure("\(sink.failed) documents were refused by the store") }
        if !quiet { printError("  \(sink.created) new documents, \(sink.existing) already there") }
        _ = try store.refresh("_all")
        return sink.timestamps
    }

    static func load(
        _ files: [String],
        into served: ServedDataDirectory,
        quiet: Bool
    ) async throws
        -> ClosedRange<Int64>?
    {
        let client = served.client()
        let range = try await onThreadOfItsOwn { () throws -> ClosedRange<Int64>? in
            let sink = try ClusterSink(client: client, index: nil, batchSize: 5_000)
            var range: ClosedRange<Int64>?
            let ingester = CaptureIngester { document in
                range =
                    range.map { min($0.lowerBound, document.timestamp)...max($0.upperBound, document.timestamp) }
                    ?? document.timestamp...document.timestamp
                sink.add(document)
            }
            for file in files {
                if !quiet { printError("Decoding \(file) into quarry serve's store …") }
                try ingester.ingest(path: file)
            }
            _ = ingester.finish()
            try sink.finish()
            if sink.failed > 0 { throw CommandFailure("\(sink.failed) documents were refused by the store") }
            if !quiet { printError("  \(sink.created) new documents, \(sink.existing) already there") }
            return range
        }
        _ = try await served.perform(.post, "/_refresh")
        return range
    }

    /// A window from a span of timestamps in nanoseconds: its first millisecond to just after its last.
    static func window(_ range: ClosedRange<Int64>) -> (from: String, to: String) {
        (ISO8601.format(range.lowerBound / 1_000_000), ISO8601.format(range.upperBound / 1_000_000 + 1))
    }
}
