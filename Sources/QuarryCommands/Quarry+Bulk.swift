import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer

extension Quarry {
    /// `quarry bulk FILE.ndjson`: loads an Elasticsearch bulk file into the embedded store.
    struct Bulk: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an Elasticsearch _bulk file (NDJSON action and source lines) into the embedded store.",
            discussion: """
                Examples:
                  quarry sample dns --documents 100000 --out dns.ndjson
                  quarry bulk dns.ndjson --data ./data
                  zcat export.ndjson.gz | quarry bulk - --index logs --data ./data

                Exit status: 0 when every item was stored, 1 when one was refused (each named by its line in the \
                file) or the file cannot be read, 64 for a usage error.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "The bulk file, or - for standard input.") var file: String
        @Option(name: .long, help: "Index for action lines that name none.") var index: String?
        @Option(name: .long, help: "Items per transaction.") var batchSize = 5_000

        func validate() throws {
            guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        }

        func run() async throws {
            tuneMemoryAllocator()
            var embedded: EmbeddedStore?
            let send: BulkLoader.Send
            if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                // `quarry serve` holds the store: its _bulk takes the file, request by request.
                printError(served.notice)
                let client = served.client()
                let index = index
                send = { body in
                    do throws(ElasticError) {
                        return (200, try await client.bulk(ndjson: body, index: index))
                    } catch {
                        return (error.status ?? 502, ["error": ["reason": .string(error.message)]])
                    }
                }
            } else {
                let opened = try EmbeddedStore(configuration: .init(dataDirectory: store.dataDirectory))
                embedded = opened
                let api = ElasticsearchAPI(store: opened)
                let path = index.map { [$0, "_bulk"] } ?? ["_bulk"]
                send = { body in
                    // Indexing and SQLite block, and two batches may be in flight: on threads of their own.
                    let response = try await onThreadOfItsOwn {
                        api.handle(ESRequest(method: .post, path: path, body: body))
                    }
                    if case .serializedJSON(let bytes) = response.body,
                        bytes.starts(with: Array(#"{"errors":false"#.utf8))
                    {
                        return (response.status, nil)
                    }
                    return (response.status, response.json)
                }
            }
            defer { try? embedded?.close() }
            let loader = BulkLoader(send: send, batchSize: batchSize)
            let handle: FileHandle
            if file == "-" {
                handle = .standardInput
            } else {
                guard let opened = FileHandle(forReadingAtPath: file) else {
                    throw CommandFailure("cannot open \(file)")
                }
                handle = opened
            }
            let size =
                file == "-"
                ? nil : (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue
            let summary = try await loader.load(from: handle, size: size)
            printError(summary.description)
            if summary.failed > 0 { throw ExitCode(2) }
        }
    }
}

/// Streams a bulk file through the Elasticsearch API in batches, with a progress line on a terminal.
struct BulkLoader {
    /// Sends one batch; returns the status and the answer's JSON, nil when nothing failed (the answer is then
    /// not worth reading).
    typealias Send = @Sendable ([UInt8]) async throws -> (status: Int, json: JSON?)

    let send: Send
    let batchSize: Int

    struct Summary: CustomStringConvertible {
        var succeeded = 0
        var failed = 0
        var bytes = 0
        var seconds = 0.0
        var firstErrors: [String] = []

        var description: String {
            let rate = seconds > 0 ? Double(succeeded) / seconds : 0
            var text =
                "indexed \(succeeded) documents in \(String(format: "%.2f", seconds)) s "
                + "(\(Int(rate)) documents/s), \(failed) failed"
            for error in firstErrors { text += "\n  " + error }
            return text
        }
    }

    /// Whether a bulk action line is an `index` or `create` that leaves the id to the store.
    static func addsWithoutID(_ action: JSON?) -> Bool {
        guard let (name, target) = action?.objectValue?.first else { return false }
        return (name == "index" || name == "create") && target["_id"] == nil
    }

    /// A batch sent and not yet answered.
    private struct InFlight {
        var response: Task<(status: Int, json: JSON?), any Error>
        var items: Int
        /// The file's line numbers of the batch's action lines, and of its last line.
        var itemLines: [Int]
        var lastLine: Int
    }

    /// - Parameter size: the file's size, for the percentage and the time left (nil for standard input).
    ///
    /// A batch of `index` and `create` actions without `_id`s is sent while the batch before it is still being
    /// stored: the store indexes the one while it commits the other, so both cores work. The order of such batches
    /// changes nothing (each document gets an id of its own), as with Beats sending on several connections. Any
    /// other batch (ids, updates, deletes) waits for the one before, so a later line always wins over an earlier.
    func load(from handle: FileHandle, size: Int?) async throws -> Summary {
        var summary = Summary()
        let started = Date()
        var pending: [UInt8] = []
        var batch: [UInt8] = []
        var items = 0
        var expectSource = false
        var status = TerminalStatusLine()
        /// The file's line number of the line read last, and of each action line of the batch: errors name them.
        var lineNumber = 0
        var itemLines: [Int] = []
        /// Every action of the batch is an `index` or `create` without an `_id`.
        var independent = true
        var inFlight: InFlight?
        var answered = 0

        func flush() async throws {
            guard !batch.isEmpty else { return }
            // Sent beside the previous batch only after a first answer: the first request of an index makes its
            // mapping and its `_source` dictionary, which a second one would otherwise make again.
            if !(independent && answered > 0) { try await settle() }
            let sent = InFlight(
                response: Task { [send, batch] in try await send(batch) },
                items: items,
                itemLines: itemLines,
                lastLine: lineNumber
            )
            batch.removeAll(keepingCapacity: true)
            itemLines.removeAll(keepingCapacity: true)
            items = 0
            independent = true
            do {
                try await settle()
            } catch {
                // The store is closed once this returns: the batch just sent ends first.
                _ = try? await sent.response.value
                throw error
            }
            inFlight = sent
        }

        /// Waits for the batch in flight and counts its answer.
        func settle() async throws {
            guard let batch = inFlight else { return }
            inFlight = nil
            let response = try await batch.response.value
            answered += 1
            guard let json = response.json, response.status >= 400 || json["errors"]?.boolValue != false else {
                // Nothing failed: no need to read the items.
                summary.succeeded += batch.items
                reportProgress()
                return
            }
            if response.status >= 400 {
                // The store's line numbers count from the batch's first line; the file's are what a user can open.
                let lines = batch.itemLines.first.map { "lines \($0)–\(batch.lastLine)" } ?? "line \(batch.lastLine)"
                throw CommandFailure(
                    "bulk request of \(lines) failed: \(json["error"]?["reason"]?.stringValue ?? json.serialized())"
                )
            }
            for (position, item) in (json["items"]?.arrayValue ?? []).enumerated() {
                guard let (_, result) = item.objectValue?.first else { continue }
                if let error = result["error"] {
                    summary.failed += 1
                    if summary.firstErrors.count < 5 {
                        let line = position < batch.itemLines.count ? "line \(batch.itemLines[position]): " : ""
                        summary.firstErrors.append(
                            "\(line)\(result["_id"]?.stringValue ?? ""): \(error["type"]?.stringValue ?? ""): "
                                + (error["reason"]?.stringValue ?? "")
                        )
                    }
                } else {
                    summary.succeeded += 1
                }
            }
            reportProgress()
        }

        func reportProgress() {
            if status.isDue() {
                let elapsed = Date().timeIntervalSince(started)
                let rate = elapsed > 0 ? Double(summary.succeeded) / elapsed : 0
                let mebibytes = Double(summary.bytes) / 1_048_576
                var line = String(
                    format: "%10d documents  %8.1f MiB  %8.0f documents/s",
                    summary.succeeded,
                    mebibytes,
                    rate
                )
                if let size, size > 0, summary.bytes > 0 {
                    // Read ahead of what is stored by at most one chunk: good enough for a percentage and a guess.
                    let fraction = min(1, Double(summary.bytes) / Double(size))
                    let left = fraction > 0 ? elapsed * (1 - fraction) / fraction : 0
                    line += String(
                        format: "  %5.1f%%  %@ left",
                        fraction * 100,
                        TerminalStatusLine.clock(left)
                    )
                }
                status.show(line)
            }
        }

        func consume(_ line: ArraySlice<UInt8>) async throws {
            lineNumber += 1
            guard line.contains(where: { $0 > 0x20 }) else { return }
            batch.append(contentsOf: line)
            batch.append(0x0A)
            if expectSource {
                expectSource = false
                items += 1
            } else {
                itemLines.append(lineNumber)
                let action = try? JSON.parse(line)
                if action?["delete"] != nil {
                    items += 1
                } else {
                    expectSource = true
                }
                if !Self.addsWithoutID(action) { independent = false }
            }
            if items >= batchSize, !expectSource { try await flush() }
        }

        while true {
            let chunk = handle.readData(ofLength: 4 << 20)
            if chunk.isEmpty { break }
            summary.bytes += chunk.count
            pending.append(contentsOf: chunk)
            var start = 0
            while let newline = pending.firstIndex(of: 0x0A, from: start) {
                try await consume(pending[start..<newline])
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { try await consume(pending[...]) }
        try await flush()
        try await settle()
        summary.seconds = Date().timeIntervalSince(started)
        if status.isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        return summary
    }
}
