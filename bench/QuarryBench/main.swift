import Foundation
import GRDB
import QuarryCore
import QuarrySamples
import QuarrySearch
import QuarryServer

// Benchmarks of the embedded store, run by bench/run.sh; results go to BENCHMARKS.md.
//
//   QuarryBench breakdown N [--template]   where indexing time goes (parse, mapping walk, segment)
//   QuarryBench bulk N DIR                 N documents through the _bulk API into a store in DIR (durable)
//   QuarryBench sqlite N DIR               the same JSON lines into a plain SQLite table (the floor)

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
    var parsed: [JSON] = []
    try measure("parse", documents: count) { parsed = try lines.map { try JSON.parse($0) } }
    let template = arguments.contains("--template")
    var mappings = try Mappings(json: template ? PacketbeatTemplate.body["template"]!["mappings"]!.objectValue! : [:])
    var indexed: [IndexedDocument] = []
    var changes = 0
    defer { print("mapping changes: \(changes)") }
    try measure("index (mapping walk)", documents: count) {
        for document in parsed {
            var indexer = DocumentIndexer(mappings: mappings, documentID: "x")
            indexed.append(try indexer.index(document))
            if indexer.mappingChanged {
                mappings = indexer.mappings
                changes += 1
            }
        }
    }
    var builder = SegmentBuilder(base: 0)
    measure("segment add", documents: count) {
        for (n, document) in indexed.enumerated() { builder.add(document, number: Int64(n)) }
    }
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
default:
    print("unknown mode \(mode)")
    exit(2)
}
