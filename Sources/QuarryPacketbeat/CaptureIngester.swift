public import QuarryCapture
import QuarryCore

/// Reads capture files and turns their packets into Packetbeat documents: the whole of `quarry ingest` except where
/// the documents go.
public final class CaptureIngester {
    public let processor: PacketbeatProcessor
    private let decoder = PacketDecoder()
    private var readerErrors: [String: Int] = [:]
    /// The latest packet time read so far, to tell a file that continues the capture (a rotated `tcpdump -C` file)
    /// from one that starts over (the same file again, an overlapping one).
    private var latest: Int64?

    public init(options: PacketbeatOptions = PacketbeatOptions(), emit: @escaping (PacketbeatDocument) -> Void) {
        processor = PacketbeatProcessor(options: options, emit: emit)
    }

    /// Reads one file to its end (or to a structural problem, which is counted and reported, not thrown).
    /// `progress` is called every few thousand packets with the bytes read so far.
    public func ingest(
        path: String,
        progress: ((_ bytesRead: Int64, _ fileSize: Int64) -> Void)? = nil
    )
        throws(CaptureError)
    {
        ingest(try CaptureReader(path: path), progress: progress)
    }

    /// Reads a capture held in memory.
    public func ingest(bytes: [UInt8]) throws(CaptureError) {
        ingest(try CaptureReader(bytes: bytes), progress: nil)
    }

    private func ingest(_ reader: CaptureReader, progress: ((_ bytesRead: Int64, _ fileSize: Int64) -> Void)?) {
        var sinceProgress = 0
        var isFirst = true
        while let packet = reader.next() {
            // A file that goes back in time is a capture of its own: what the previous one left open is published
            // as at the end of a capture, so that the same packets read again give the same documents.
            if isFirst, let latest, packet.timestamp < latest { processor.finish() }
            isFirst = false
            latest = max(latest ?? packet.timestamp, packet.timestamp)
            if let decoded = decoder.decode(packet) {
                processor.process(decoded)
            } else {
                processor.countUndecoded(bytes: packet.originalLength)
            }
            sinceProgress += 1
            if sinceProgress == 4096, let progress {
                sinceProgress = 0
                progress(reader.bytesRead, reader.fileSize)
            }
        }
        progress?(reader.bytesRead, reader.fileSize)
        if let error = reader.error { readerErrors["capture: " + error.kind.rawValue, default: 0] += 1 }
    }

    /// Publishes open transactions and final flow reports, and returns what the run saw.
    public func finish() -> PacketbeatStatistics {
        decoder.finish()
        processor.finish()
        var statistics = processor.statistics
        for (problem, count) in decoder.problems { statistics.count("packet: " + problem.rawValue, count) }
        for (kind, count) in readerErrors { statistics.count(kind, count) }
        return statistics
    }
}
