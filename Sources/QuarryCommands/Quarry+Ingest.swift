import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarryPacketbeat
import QuarrySearch

extension Quarry {
    /// `quarry ingest FILE...`: packet captures to Packetbeat's DNS and flow documents, into the embedded store or
    /// as NDJSON.
    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode packet captures (pcap, pcapng) into Packetbeat-compatible DNS and flow documents.",
            discussion: """
                Documents go to daily indices named like Packetbeat's (packetbeat-\(PacketbeatIndex.version)-YYYY.MM.DD) \
                of the embedded store, after the Packetbeat index template is installed; --ndjson writes them to \
                standard output instead, and --to URL ships them to a remote Elasticsearch or OpenSearch with \
                _bulk (the template installed there first; credentials from $QUARRY_ES_API_KEY, or \
                $QUARRY_ES_USERNAME and $QUARRY_ES_PASSWORD; ingesting the same capture twice stores each event \
                once there too). A summary (packets, DNS transactions, flows, errors by kind) goes to standard error.

                Examples:
                  quarry ingest incident.pcap --data ./data
                  quarry ingest day1.pcapng day2.pcapng --index packetbeat-incident
                  QUARRY_ES_API_KEY=ID:KEY quarry ingest incident.pcap --to https://es.example:9200

                Exit status: 0 when every document was stored, 1 when a capture cannot be read or the cluster \
                refuses, 2 when some documents failed, 64 for a usage error.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "Capture files (pcap or pcapng).") var files: [String]
        @Option(name: .long, help: "Write every document to this index instead of daily packetbeat-* indices.")
        var index: String?
        @Flag(name: .long, help: "Write the documents to standard output as NDJSON; the store is not touched.")
        var ndjson = false
        @Option(name: .long, help: "host.name of the capturing host.") var hostName: String?
        @Option(name: .long, help: "host.ip of the capturing host (repeatable); decides network.direction.")
        var hostIP: [String] = []
        @Option(name: .long, help: "Seconds between reports of an active flow (0: final reports only).")
        var flowPeriod: Double = 10
        @Option(name: .long, help: "Seconds without packets after which a flow ends.") var flowTimeout: Double = 30
        @Flag(name: .long, help: "Do not publish flow documents.") var noFlows = false
        @Option(name: .long, help: "Ports decoded as DNS, comma-separated.") var dnsPorts = "53,5353"
        @Option(name: .long, help: "Seconds a query waits for its response.") var transactionTimeout: Double = 10
        @Flag(name: .long, help: "Include dns.authorities records.") var includeAuthorities = false
        @Flag(name: .long, help: "Include dns.additionals records.") var includeAdditionals = false
        @Option(name: .long, help: "Documents per store transaction (or per _bulk request with --to).")
        var batchSize = 5_000
        @Option(name: .long, help: "Ship the documents to this cluster's _bulk instead of the embedded store.")
        var to: String?
        @Option(name: .long, help: "With --to: certificate authorities (PEM) to trust for the cluster.")
        var toCaFile: String?

        func validate() throws {
            if ndjson, to != nil { throw ValidationError("--ndjson and --to choose different outputs: give one") }
        }

        func options() throws -> PacketbeatOptions {
            var options = PacketbeatOptions()
            options.hostName = hostName
            options.hostIPs = try hostIP.map { text in
                guard let address = IPAddress(text) else {
                    throw ValidationError("--host-ip \(text) is not an address")
                }
                return address
            }
            options.flows = !noFlows
            options.flowPeriod = flowPeriod > 0 ? Int64(flowPeriod * 1e9) : nil
            options.flowTimeout = Int64(flowTimeout * 1e9)
            options.transactionTimeout = Int64(transactionTimeout * 1e9)
            options.includeAuthorities = includeAuthorities
            options.includeAdditionals = includeAdditionals
            options.dnsPorts = Set(
                try dnsPorts.split(separator: ",").map { text in
                    guard let port = UInt16(text.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError("--dns-ports: \(text) is not a port")
                    }
                    return port
                }
            )
            return options
        }

        func run() async throws {
            // Decoding is synchronous work that may wait for the cluster (--to): it runs on a thread of its own,
            // never on Swift's cooperative pool, where the requests it waits for run.
            let command = self
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                Thread {
                    do {
                        try command.ingest()
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }.start()
            }
        }

        func ingest() throws {
            tuneMemoryAllocator()
            let options = try options()
            let started = Date()
            let sink: any DocumentSink
            if ndjson {
                sink = NDJSONSink()
            } else if let to {
                let client = Es.client(
                    for: to,
                    tls: toCaFile.map { .certificateAuthority(file: $0) } ?? .systemTrustStore
                )
                sink = try ClusterSink(client: client, index: index, batchSize: batchSize)
            } else if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                // `quarry serve` holds the store: its _bulk takes the documents.
                printError(served.notice)
                sink = try ClusterSink(client: served.client(), index: index, batchSize: batchSize)
            } else {
                sink = try StoreSink(dataDirectory: store.dataDirectory, index: index, batchSize: batchSize)
            }
            let ingester = CaptureIngester(options: options) { document in sink.add(document) }
            let progress = ProgressLine(files: files)
            for (position, file) in files.enumerated() {
                do {
                    try ingester.ingest(path: file) { read, size in
                        progress.update(
                            file: position,
                            bytesRead: read,
                            fileSize: size,
                            statistics: ingester.processor.statistics,
                            documents: sink.documents
                        )
                    }
                } catch {
                    progress.clear()
                    printError("\(file): \(error)")
                    throw ExitCode(1)
                }
            }
            let statistics = ingester.finish()
            try sink.finish()
            progress.clear()
            printError(
                summary(
                    statistics,
                    documents: sink.documents,
                    existing: (sink as? StoreSink)?.existing ?? (sink as? ClusterSink)?.existing,
                    failed: sink.failed,
                    seconds: Date().timeIntervalSince(started)
                )
            )
            if sink.failed > 0 { throw ExitCode(2) }
        }

        func summary(
            _ statistics: PacketbeatStatistics,
            documents: Int,
            existing: Int?,
            failed: Int,
            seconds: Double
        ) -> String {
            let rate = seconds > 0 ? Double(statistics.packets) / seconds : 0
            var text =
                "\(statistics.packets) packets (\(String(format: "%.1f", Double(statistics.bytes) / 1_048_576)) MB) in "
                + "\(String(format: "%.2f", seconds)) s (\(Int(rate)) packets/s): \(statistics.dnsMessages) DNS messages, "
                + "\(statistics.dnsTransactions) DNS transactions, \(statistics.flowReports) flow reports; "
                + "\(documents) documents \(ndjson ? "written" : "stored")"
            if let existing { text += " (\(documents - existing) new, \(existing) already there)" }
            if failed > 0 { text += ", \(failed) failed" }
            let errors = statistics.errors.sorted { $0.key < $1.key }
            if errors.isEmpty {
                text += "; no errors"
            } else {
                text += "; errors:"
                for (kind, count) in errors { text += "\n  \(count) × \(kind)" }
            }
            return text
        }
    }
}

/// Where ingested documents go.
protocol DocumentSink: AnyObject {
    func add(_ document: PacketbeatDocument)
    func finish() throws
    var documents: Int { get }
    var failed: Int { get }
}

/// Documents as NDJSON on standard output, written in large blocks. If standard output fails (a full disk, a closed
/// pipe), the error is printed and the documents not written count as failed, so the run exits with status 2.
final class NDJSONSink: DocumentSink {
    private var buffer: [UInt8] = []
    private var pending = 0
    private(set) var documents = 0
    private(set) var failed = 0
    private var writeError: (any Error)?

    func add(_ document: PacketbeatDocument) {
        guard writeError == nil else {
            failed += 1
            return
        }
        buffer += document.bytes
        buffer.append(UInt8(ascii: "\n"))
        pending += 1
        if buffer.count >= 1 << 20 { flush() }
    }

    private func flush() {
        guard !buffer.isEmpty else { return }
        do {
            try FileHandle.standardOutput.write(contentsOf: buffer)
            documents += pending
        } catch {
            writeError = error
            failed += pending
        }
        pending = 0
        buffer.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        flush()
        if let writeError { printError("writing to standard output failed: \(writeError.localizedDescription)") }
    }
}

/// Documents into the embedded store: the Packetbeat template first, then batches of writes, each one
/// transaction. A batch is stored on a queue of its own while decoding goes on (at most one batch waits, so memory
/// holds three), and its documents' trees, which indexing needs, are parsed there on all cores instead of one at a
/// time on the decoding thread.
///
/// `@unchecked Sendable`: `batch` and `timestamps` belong to the decoding thread; the counts are written on
/// `storing` and read through `lock`.
final class StoreSink: DocumentSink, @unchecked Sendable {
    private let store: EmbeddedStore
    /// Whether the sink opened the store (and closes it when finished).
    private let ownsStore: Bool
    private let index: String?
    private let batchSize: Int
    private var batch: [PacketbeatDocument] = []
    private let storing = DispatchQueue(label: "quarry.ingest.store")
    /// Free places for a batch handed to `storing`: the decoding thread waits for one.
    private let places = DispatchSemaphore(value: 1)
    private let lock = NSLock()
    private var counts = Counts()
    /// The earliest and latest `@timestamp` added, in nanoseconds: the window a capture covers.
    private(set) var timestamps: ClosedRange<Int64>?

    private struct Counts {
        var created = 0
        var existing = 0
        var failed = 0
        var firstErrors: [String] = []
    }

    /// Documents in the store after the run: written now, or there already.
    var documents: Int { lock.withLock { counts.created + counts.existing } }
    /// Documents written by this run.
    var created: Int { lock.withLock { counts.created } }
    /// Documents already in the store with the same id (an earlier ingest of the same packets): left as they were.
    var existing: Int { lock.withLock { counts.existing } }
    var failed: Int { lock.withLock { counts.failed } }

    convenience init(dataDirectory: URL, index: String?, batchSize: Int) throws {
        let store = try EmbeddedStore(configuration: .init(dataDirectory: dataDirectory))
        try self.init(store: store, index: index, batchSize: batchSize, ownsStore: true)
    }

    init(store: EmbeddedStore, index: String?, batchSize: Int, ownsStore: Bool = false) throws {
        self.store = store
        self.ownsStore = ownsStore
        self.index = index
        self.batchSize = max(1, batchSize)
        try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
    }

    func add(_ document: PacketbeatDocument) {
        if let range = timestamps {
            timestamps = min(range.lowerBound, document.timestamp)...max(range.upperBound, document.timestamp)
        } else {
            timestamps = document.timestamp...document.timestamp
        }
        batch.append(document)
        if batch.count >= batchSize { flush() }
    }

    /// Hands the batch to `storing`, waiting while another one waits there.
    private func flush() {
        guard !batch.isEmpty else { return }
        let documents = batch
        batch.removeAll(keepingCapacity: true)
        places.wait()
        storing.async {
            self.write(documents)
            self.places.signal()
        }
    }

    /// Stores a batch; the store reads each document's bytes once as it indexes them (no tree is built).
    private func write(_ documents: [PacketbeatDocument]) {
        let index = self.index
        let items = documents.map { document in
            EmbeddedStore.BulkItem(
                index: index ?? document.dailyIndex,
                operation: .index(IndexRequest(id: document.id, source: document.bytes, createOnly: true))
            )
        }
        let results = store.bulk(items)
        lock.withLock {
            for result in results {
                if let error = result.error {
                    if error.type == "version_conflict_engine_exception" {
                        counts.existing += 1
                        continue
                    }
                    counts.failed += 1
                    if counts.firstErrors.count < 5 { counts.firstErrors.append("\(result.index): \(error)") }
                } else {
                    counts.created += 1
                }
            }
        }
    }

    func finish() throws {
        flush()
        storing.sync {}
        for error in lock.withLock({ counts.firstErrors }) { printError("  failed: \(error)") }
        if ownsStore { try store.close() }
    }
}

/// Documents to a remote cluster's `_bulk`, with the Packetbeat template installed there first. Each document is a
/// `create` with its derived id, so a second ingest of the same packets finds them there (409) and writes nothing.
/// The decoding thread waits for each request: memory holds one batch.
final class ClusterSink: DocumentSink {
    private let client: ElasticClient
    private let index: String?
    private let batchSize: Int
    private var batch: [ElasticClient.BulkOperation] = []
    var documents: Int { created + existing }
    private(set) var created = 0
    private(set) var existing = 0
    private(set) var failed = 0
    private var firstErrors: [String] = []

    init(client: ElasticClient, index: String?, batchSize: Int) throws {
        self.client = client
        self.index = index
        self.batchSize = batchSize
        let template = JSON.object(PacketbeatTemplate.body)
        try Self.wait {
            _ = try await client.perform(.put, "/_index_template/\(PacketbeatTemplate.name)", body: template)
        }
    }

    /// Runs `body` on the cooperative pool and waits for it on this (non-pool) thread.
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let semaphore = DispatchSemaphore(value: 0)
        let result = ResultBox<T>()
        Task {
            do { result.value = .success(try await body()) } catch { result.value = .failure(error) }
            semaphore.signal()
        }
        semaphore.wait()
        return try result.value!.get()
    }

    final class ResultBox<T>: @unchecked Sendable {
        var value: Result<T, any Error>?
    }

    func add(_ document: PacketbeatDocument) {
        batch.append(.init(.create, index: index ?? document.dailyIndex, id: document.id, document: document.json))
        if batch.count >= batchSize { flush() }
    }

    private func flush() {
        guard !batch.isEmpty else { return }
        let operations = batch
        let client = self.client
        batch.removeAll(keepingCapacity: true)
        do {
            let summary = try Self.wait { try await client.bulk(operations, batchDocuments: operations.count) }
            created += summary.succeeded
            for failure in summary.failed {
                if failure.status == 409 {
                    existing += 1
                } else {
                    failed += 1
                    if firstErrors.count < 5 {
                        firstErrors.append("\(failure.status) \(failure.type): \(failure.reason)")
                    }
                }
            }
        } catch {
            failed += operations.count
            if firstErrors.count < 5 { firstErrors.append("\(error)") }
        }
    }

    func finish() throws {
        flush()
        for error in firstErrors { printError("  failed: \(error)") }
    }
}

/// One line on a terminal: packets, MiB, documents, rate and ETA.
final class ProgressLine {
    private let files: [String]
    private let started = Date()
    private var status = TerminalStatusLine()

    init(files: [String]) {
        self.files = files
    }

    func update(file: Int, bytesRead: Int64, fileSize: Int64, statistics: PacketbeatStatistics, documents: Int) {
        guard status.isDue() else { return }
        let elapsed = Date().timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(statistics.packets) / elapsed : 0
        let fraction = fileSize > 0 ? Double(bytesRead) / Double(fileSize) : 0
        let remaining = fraction > 0 ? elapsed / fraction * (1 - fraction) : 0
        let line = String(
            format: "%@ [%d/%d] %3.0f%%  %d packets  %.1f MiB  %d documents  %.0f packets/s  ETA %@",
            (files[file] as NSString).lastPathComponent,
            file + 1,
            files.count,
            fraction * 100,
            statistics.packets,
            Double(statistics.bytes) / 1_048_576,
            documents,
            rate,
            TerminalStatusLine.clock(remaining)
        )
        status.show(line)
    }

    func clear() { status.clear() }
}
