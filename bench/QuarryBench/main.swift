import Foundation
import GRDB
import QuarryCore
import QuarryElasticsearchAPI
import QuarryPacketbeat
import QuarrySamples
import QuarrySearch
import QuarryServer

// Benchmarks of the embedded store, run by bench/run.sh; results go to BENCHMARKS.md.
//
//   QuarryBench breakdown N [--template [--bytes]]  where indexing time goes (parse, mapping walk, from bytes, segment, compress)
//   QuarryBench bulk N DIR                 N documents through the _bulk API into a store in DIR (durable)
//   QuarryBench sqlite N DIR               the same JSON lines into a plain SQLite table (the floor)
//   QuarryBench query RUNS DIR             latency of the reference hunt's searches on the store in DIR
//   QuarryBench liquid WORKLOADS [SECONDS] Liquid renders/s of bench/liquid's workloads (bench/liquid.sh)
//   QuarryBench capture-decode FILE        packets/s decoding a capture down to DNS messages, one core
//   QuarryBench capture-documents FILE     packets/s to Packetbeat documents, without output (bench/capture.sh)
//   QuarryBench stories-chain RUNS DIR     events/s through a 10-agent message_only chain vs bare SQLite writes
//   QuarryBench stories-hunt RUNS DIR …    webhook → email latency of the reference hunt (bench/stories.sh)
//   QuarryBench iterate PAGE URL INDEX     every hit of INDEX through QuarryElastic's iterator (bench/run.sh iterate)
//   QuarryBench aggs RUNS DIR              issue 15's aggregations and a point-in-time read (bench/run.sh aggs)
//   QuarryBench sqlite-aggs RUNS DB FILE   the same aggregations as SQLite GROUP BY over FILE's values (the floor)

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "breakdown"
let count = arguments.count > 2 ? Int(arguments[2]) ?? 50_000 : 50_000
let directory =
    arguments.count > 3
    ? URL(fileURLWithPath: arguments[3])
    : FileManager.default.temporaryDirectory
        .appendingPathComponent("quarry-bench-\(getpid())")
let batchSize = 5_000

func generate(_ count: Int) -> [[UInt8]] {
    var generator = DNSDocumentGenerator(
        configuration: .init(documents: count, end: Int64(Date().timeIntervalSince1970 * 1000))
    )
    var lines: [[UInt8]] = []
    lines.reserveCapacity(count)
    while let document = generator.next() { lines.append(document.serializedBytes()) }
    return lines
}

func measure(_ name: String, documents: Int, _ body: () throws -> Void) rethrows {
    let start = DispatchTime.now()
    try body()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    print(
        String(
            format: "%-24@ %8.3f s %10.0f docs/s %8.2f µs/doc",
            name as NSString,
            seconds,
            Double(documents) / seconds,
            seconds * 1e6 / Double(documents)
        )
    )
}

switch mode {
case "breakdown":
    let lines = generate(count)
    print("\(count) documents, \(lines.reduce(0) { $0 + $1.count } / count) bytes each")
    let template = arguments.contains("--template")
    // --bytes: only the path of `_bulk` and `quarry ingest` (documents read from their bytes, no tree), for a profile.
    let bytesOnly = template && arguments.contains("--bytes")
    var mappings = try Mappings(json: template ? PacketbeatTemplate.body["template"]!["mappings"]!.objectValue! : [:])
    var indexed: [IndexedDocument] = []
    var changes = 0
    defer { print("mapping changes: \(changes)") }
    func walk(_ documents: [JSON], keep: Bool) throws {
        for document in documents {
            var indexer = DocumentIndexer(mappings: mappings, documentID: "x")
            let result = try indexer.index(document)
            if keep { indexed.append(result) }
            if indexer.mappingChanged {
                mappings = indexer.mappings
                changes += 1
            }
        }
    }
    if bytesOnly {
        // The fields the template lacks are mapped first, as the first request's tree path maps them.
        try walk(lines.prefix(1_000).map { try JSON.parse($0) }, keep: false)
    } else {
        var parsed: [JSON] = []
        try measure("parse", documents: count) { parsed = try lines.map { try JSON.parse($0) } }
        try measure("index (mapping walk)", documents: count) { try walk(parsed, keep: true) }
    }
    if template {
        var fromBytes: [IndexedDocument] = []
        measure("index (from bytes)", documents: count) {
            for line in lines {
                let indexer = DocumentIndexer(mappings: mappings, documentID: "x")
                if let document = line.withUnsafeBufferPointer({ indexer.index(source: $0) }) {
                    fromBytes.append(document)
                }
            }
        }
        print("indexed from bytes: \(fromBytes.count) of \(count)")
        if bytesOnly { indexed = fromBytes }
    }
    var builder = SegmentBuilder(base: 0)
    measure("segment add", documents: count) {
        for (n, document) in indexed.enumerated() { builder.add(document, number: Int64(n)) }
    }
    if bytesOnly {
        // The path of a large request: each core's share (half of a `quarry bulk` request of 5,000) indexed
        // straight into one batch, then the batches join the in-memory segment.
        let share = 2_500
        var batches: [DocumentBatch] = []
        measure("index into batches", documents: count) {
            for start in stride(from: 0, to: count, by: share) {
                var batch = DocumentBatch()
                for offset in 0..<min(share, count - start) {
                    batch.begin(document: offset)
                    let indexer = DocumentIndexer(mappings: mappings, documentID: "x")
                    _ = lines[start + offset].withUnsafeBufferPointer { indexer.index(source: $0, into: &batch) }
                }
                batches.append(batch)
            }
        }
        var joined = SegmentBuilder(base: 0)
        measure("batches join segment", documents: count) {
            for (n, batch) in batches.enumerated() { joined.append(batch, at: Int64(n * share)) }
        }
    }
    // `_source` compressed as the store keeps it: one document at a time, with the index's dictionary.
    let dictionary = SourceDictionary(SourceCodec.dictionary(from: lines.prefix(SourceCodec.trainingDocuments)))
    let compressor = try SourceCodec.Compressor(dictionary: dictionary)
    var stored: [[UInt8]] = []
    stored.reserveCapacity(count)
    measure("compress (_source)", documents: count) {
        for line in lines { stored.append(compressor.stored(line)) }
    }
    let storedBytes = stored.reduce(0) { $0 + $1.count }
    let decompressor = try SourceCodec.Decompressor()
    var roundTrips = 0
    measure("decompress (_source)", documents: count) {
        for (row, line) in zip(stored, lines) where (try? decompressor.decode(row, dictionary: dictionary)) == line {
            roundTrips += 1
        }
    }
    print("read back byte for byte: \(roundTrips) of \(count)")
    let sourceBytes = lines.reduce(0) { $0 + $1.count }
    let ratio = String(format: "%.3f", Double(storedBytes) / Double(sourceBytes))
    print("stored _source: \(storedBytes) of \(sourceBytes) bytes (\(ratio))")
case "bulk":
    let lines = generate(count)
    var batches: [[UInt8]] = []
    var batch: [UInt8] = []
    for (n, line) in lines.enumerated() {
        batch += Array(#"{"index":{"_index":"packetbeat-bench"}}"#.utf8)
        batch.append(0x0A)
        batch += line
        batch.append(0x0A)
        if (n + 1) % batchSize == 0 {
            batches.append(batch)
            batch = []
        }
    }
    if !batch.isEmpty { batches.append(batch) }
    try? FileManager.default.removeItem(at: directory)
    let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
    try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
    let api = ElasticsearchAPI(store: store)
    if arguments.contains("--parts") {
        var parsed: [[BulkParser.Entry]] = []
        try measure("bulk parse", documents: count) {
            parsed = try batches.map { try BulkParser(body: $0, defaultIndex: nil).parse() }
        }
        measure("store.bulk", documents: count) {
            for entries in parsed { _ = store.bulk(entries.compactMap(\.item)) }
        }
        try measure("flush (segment write)", documents: count) { try store.flush() }
        if arguments.contains("--debug") {
            let mappings = try store.metadata("packetbeat-bench")[0].mappings
            var indexer = DocumentIndexer(mappings: mappings, documentID: "x")
            _ = try indexer.index(try JSON.parse(lines[0]))
            print("fields \(mappings.fields.count), changed: \(indexer.mappingChanged)")
            if indexer.mappingChanged {
                let before = Set(mappings.fields.keys)
                print(Set(indexer.mappings.fields.keys).subtracting(before))
            }
        }
        exit(0)
    }
    measure("_bulk into the store", documents: count) {
        for body in batches {
            let response = api.handle(ESRequest(method: .post, path: ["_bulk"], body: body))
            guard let json = response.json, json["errors"] == false else {
                fatalError("bulk failed: \(response)")
            }
        }
    }
    try store.close()
case "sqlite":
    let lines = generate(count)
    try? FileManager.default.removeItem(at: directory)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var configuration = Configuration()
    configuration.journalMode = .wal
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
    let queue = try DatabaseQueue(
        path: directory.appendingPathComponent("floor.sqlite").path,
        configuration: configuration
    )
    try queue.write { db in try db.execute(sql: "CREATE TABLE docs(id INTEGER PRIMARY KEY, source BLOB NOT NULL)") }
    try measure("plain SQLite insert", documents: count) {
        for start in stride(from: 0, to: lines.count, by: batchSize) {
            try queue.write { db in
                let statement = try db.cachedStatement(sql: "INSERT INTO docs(source) VALUES (?)")
                for line in lines[start..<min(start + batchSize, lines.count)] {
                    try statement.execute(arguments: [Data(line)])
                }
            }
        }
    }
case "query":
    let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
    let api = ElasticsearchAPI(store: store)
    let total = try store.count("packetbeat-*", query: .matchAll(boost: 1))
    print("store holds \(total) documents")
    // What the server's background merges do once the data is in (the CLI that loaded it stops them at exit).
    let before = try store.segments("packetbeat-*").reduce(0) { $0 + $1.segments.count }
    let merging = DispatchTime.now()
    _ = try store.forceMerge("packetbeat-*")
    let after = try store.segments("packetbeat-*").reduce(0) { $0 + $1.segments.count }
    let mergeSeconds = Double(DispatchTime.now().uptimeNanoseconds - merging.uptimeNanoseconds) / 1e9
    print("segments: \(before) as loaded, \(after) after the merge policy's merges (\(mergeSeconds) s)")
    // The hunt asks for the last four hours (`now-4h`); here the four hours before the newest document, so that data
    // generated hours ago still has hits (as bench/http_query.py does).
    let newestBody: JSON = ["size": 0, "aggs": ["newest": ["max": ["field": "@timestamp"]]]]
    let newest = api.handle(
        ESRequest(method: .post, path: ["packetbeat-*", "_search"], body: newestBody.serializedBytes())
    ).json?["aggregations"]?["newest"]?["value_as_string"]?.stringValue
    let window: JSON = ["range": ["@timestamp": ["gte": .string(newest.map { "\($0)||-4h" } ?? "now-4h")]]]
    print("window: the four hours before \(newest ?? "now")")
    let generator = DNSDocumentGenerator(configuration: .init(documents: 1, end: 0))
    let planted = generator.planted[0]
    var addresses: [JSON] = [.string(planted.addresses[0])]
    for domain in ["www.google.com", "github.com", "slack.com", "zoom.us", "pypi.org", "sentry.io", "twitter.com"] {
        addresses.append(.string(DNSDocumentGenerator.address(for: domain)))
    }
    let queries: [(String, JSON)] = [
        (
            "hunt: term rare domain + range",
            [
                "size": 1000, "_source": ["client.ip", "source.ip", "host.name"],
                "query": ["bool": ["must": [["term": ["dns.question.name": .string(planted.name)]], window]]],
            ]
        ),
        (
            "hunt: term popular domain + range",
            [
                "size": 1000, "_source": ["client.ip", "source.ip", "host.name"],
                "query": ["bool": ["must": [["term": ["dns.question.name": "www.google.com"]], window]]],
            ]
        ),
        (
            "terms destination.ip (8)",
            [
                "size": 1000, "_source": ["source.ip", "destination.ip", "host.name"],
                "query": ["bool": ["must": [["terms": ["destination.ip": .array(addresses)]], window]]],
            ]
        ),
    ]
    let only = arguments.count > 4 ? Int(arguments[4]) : nil
    for (position, (name, body)) in queries.enumerated() where only == nil || only == position {
        var latencies: [Double] = []
        var hits = 0
        var totalHits: JSON = .null
        for _ in 0..<count {
            let start = DispatchTime.now()
            let response = api.handle(
                ESRequest(method: .post, path: ["packetbeat-*", "_search"], body: body.serializedBytes())
            )
            let bytes = response.json?.serializedBytes() ?? []
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
            hits = response.json?["hits"]?["hits"]?.arrayValue?.count ?? -1
            totalHits = response.json?["hits"]?["total"] ?? .null
            precondition(!bytes.isEmpty)
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(
            String(
                format: "%-34@ median %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  (%d hits returned, total %@)",
                name as NSString,
                percentile(0.5),
                percentile(0.95),
                percentile(0.99),
                hits,
                totalHits.serialized() as NSString
            )
        )
    }
    try store.close()
case "aggs":
    // QuarryBench aggs RUNS DIR [PAGE] [LIMIT]
    try runAggregationBenchmark(
        directory: directory,
        runs: count,
        pageSize: arguments.count > 4 ? Int(arguments[4]) ?? 10_000 : 10_000,
        limit: arguments.count > 5 ? Int(arguments[5]) ?? 1_000_000 : 1_000_000
    )
case "sqlite-aggs":
    // QuarryBench sqlite-aggs RUNS DB FILE
    try runSQLiteAggregationBenchmark(bulkFile: arguments[4], database: directory, runs: count)
case "capture-decode":
    // QuarryBench capture-decode FILE
    try runCaptureDecodeBenchmark(path: arguments[2])
case "capture-documents":
    // QuarryBench capture-documents FILE
    try runCaptureDocumentsBenchmark(path: arguments[2])
case "liquid":
    // QuarryBench liquid WORKLOADS.json [SECONDS]
    try runLiquidBenchmark(
        workloadsFile: URL(fileURLWithPath: arguments[2]),
        seconds: arguments.count > 3 ? Double(arguments[3]) ?? 3 : 3
    )
case "stories-chain":
    // QuarryBench stories-chain RUNS DIR
    try await runStoryChainBenchmark(
        runs: count,
        directory: directory,
        workers: arguments.count > 4 ? Int(arguments[4]) ?? 32 : 32
    )
case "stories-hunt":
    // QuarryBench stories-hunt RUNS DIR DOH_URL SMTP_PORT CA_FILE STORY
    try await runStoryHuntBenchmark(
        runs: count,
        directory: directory,
        resolver: arguments[4],
        smtpPort: Int(arguments[5]) ?? 25,
        certificates: arguments[6],
        story: arguments[7]
    )
case "iterate":
    // QuarryBench iterate PAGE URL INDEX
    try await runIterateBenchmark(url: arguments[3], index: arguments[4], pageSize: count)
default:
    print("unknown mode \(mode)")
    exit(2)
}
