import Foundation
import GRDB
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

@testable import QuarrySearch

/// `_source` is stored compressed with a dictionary of the index's first documents, and comes back byte for byte;
/// rows written before (plain JSON, and deflated as Quarry wrote them before zstd) read the same.
@Suite(.mayBlock)
struct SourceStorageTests {
    /// The first byte of every stored row, and their total size below 10,000 bytes.
    static func storedRows(_ directory: URL) throws -> (markers: Set<UInt8>, bytes: Int) {
        var stored = 0
        var markers: Set<UInt8> = []
        for file in try documentFiles(directory) {
            let database = try DatabaseQueue(path: file.path)
            try database.read { db in
                stored +=
                    try Int.fetchOne(db, sql: "SELECT SUM(length(source)) FROM docs WHERE length(source) < 10000") ?? 0
                for row in try Data.fetchAll(db, sql: "SELECT source FROM docs") { markers.insert(row.first ?? 0) }
            }
            try database.close()
        }
        return (markers, stored)
    }

    /// Generated Packetbeat documents as (id, JSON text), with ids `doc-0`, `doc-1`, ….
    static func sample(_ count: Int, seed: UInt64) -> [(String, String)] {
        var generator = DNSDocumentGenerator(configuration: .init(documents: count, end: 1_796_000_000_000, seed: seed))
        var sample: [(String, String)] = []
        while let document = generator.next() {
            sample.append(("doc-\(sample.count)", String(decoding: document.serializedBytes(), as: UTF8.self)))
        }
        return sample
    }

    /// The documents file of each index of a data directory.
    static func documentFiles(_ directory: URL) throws -> [URL] {
        let indices = directory.appendingPathComponent("indices")
        return try FileManager.default.contentsOfDirectory(atPath: indices.path)
            .filter { $0.hasSuffix(".sqlite") && !$0.contains(".segments.") }
            .map { indices.appendingPathComponent($0) }
    }

    /// `count` sample documents written into index `packets` of a new store, which is then closed, or dropped
    /// without closing (its in-memory segment then stays only as rows, replayed at the next open).
    static func storeSample(
        _ count: Int,
        seed: UInt64,
        in configuration: EmbeddedStore.Configuration,
        closing: Bool
    ) throws -> [(String, String)] {
        let sample = Self.sample(count, seed: seed)
        let store = try EmbeddedStore(configuration: configuration)
        try Self.write(store, "packets", sample)
        if closing { try store.close() }
        return sample
    }

    static func write(_ store: EmbeddedStore, _ index: String, _ sources: [(String, String)]) throws {
        let items = try sources.map { id, text in
            EmbeddedStore.BulkItem(
                index: index,
                operation: .index(IndexRequest(id: id, source: Array(text.utf8), document: try JSON.parse(text)))
            )
        }
        for result in store.bulk(items) where result.error != nil { throw result.error! }
    }

    /// Odd but valid JSON: spacing, key order, escapes, non-ASCII, a large document, an empty one.
    static let odd: [(String, String)] = [
        ("spaced", #"{ "b" : 1 ,   "a":[ 1, 2 ,3 ],"t":"x\ty\u00e9\"q\"" }"#),
        ("unicode", #"{"name":"Zoë — Grüße 東京 🦉","dns":{"question":{"name":"Update.EVIL-cdn.example."}}}"#),
        ("empty", "{}"),
        ("large", "{\"blob\":\"" + String(repeating: "abcdefghij0123456789", count: 6_000) + "\"}"),
        ("incompressible", "{\"r\":\"" + (0..<200).map { String(format: "%02x", ($0 * 7_919) % 251) }.joined() + "\"}"),
    ]

    @Test func sourcesComeBackByteForByteAndAreStoredCompressed() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory, segmentDocuments: 64)
            let sample = Self.sample(500, seed: 7)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                try Self.write(store, "logs", Self.odd)
                try Self.write(store, "packetbeat-1", sample)
                for (id, text) in Self.odd + sample.prefix(20) {
                    let index = Self.odd.contains { $0.0 == id } ? "logs" : "packetbeat-1"
                    #expect(try store.get(index: index, id: id)?.source == Array(text.utf8), "\(id)")
                }
                // Search hits carry the same bytes.
                let hit = try store.search("logs", SearchRequest(body: ["query": ["ids": ["values": ["spaced"]]]]))
                #expect(hit.hits.first?.source == (try JSON.parse(Self.odd[0].1)))
                // Dropped without close: its unflushed documents are replayed from their stored (compressed) rows.
            }
            let reopened = try EmbeddedStore(configuration: configuration)
            defer { try? reopened.close() }
            #expect(try reopened.count("packetbeat-1", query: .matchAll(boost: 1)) == 500)
            for (id, text) in sample.suffix(20) {
                #expect(try reopened.get(index: "packetbeat-1", id: id)?.source == Array(text.utf8))
            }
            // On disk: the sample's rows (a dictionary trained on them) take under a fifth of their JSON.
            let (markers, stored) = try Self.storedRows(directory)
            let original = (Self.odd.filter { $0.1.utf8.count < 10_000 } + sample).reduce(0) { $0 + $1.1.utf8.count }
            #expect(stored * 5 < original, "stored \(stored) bytes for \(original)")
            // zstd frames with the dictionary, and the incompressible one kept as it came.
            #expect(markers == [SourceCodec.zstdMarker, UInt8(ascii: "{")], "\(markers)")
        }
    }

    @Test func rowsWrittenBeforeCompressionReadTheSameAndLaterRowsAreCompressed() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                try Self.write(store, "old", Self.odd)
                try store.close()
            }
            // Make the file what an earlier Quarry wrote: plain rows, no dictionary.
            for file in try Self.documentFiles(directory) {
                let database = try DatabaseQueue(path: file.path)
                try database.write { db in
                    try db.execute(sql: "DELETE FROM meta WHERE key = 'source_dictionary'")
                    for (id, text) in Self.odd {
                        try db.execute(
                            sql: "UPDATE docs SET source = ? WHERE id = ?",
                            arguments: [Data(text.utf8), id]
                        )
                    }
                }
                try database.close()
            }
            let store = try EmbeddedStore(configuration: configuration)
            defer { try? store.close() }
            for (id, text) in Self.odd {
                #expect(try store.get(index: "old", id: id)?.source == Array(text.utf8), "\(id)")
            }
            #expect(
                try store.count(
                    "old",
                    query: Query.parse(["term": ["dns.question.name.keyword": "Update.EVIL-cdn.example."]])
                ) == 1
            )
            // The next write makes the dictionary; old and new rows both read, and an update of an old row too.
            try Self.write(store, "old", [("new", #"{"name":"Zoë again","dns":{"question":{"name":"x.example"}}}"#)])
            let updated = store.bulk([
                EmbeddedStore.BulkItem(index: "old", operation: .update(UpdateRequest(id: "spaced", doc: ["c": true])))
            ])
            #expect(updated.first?.error == nil)
            #expect(try store.get(index: "old", id: "unicode")?.source == Array(Self.odd[1].1.utf8))
            #expect(
                try store.get(index: "old", id: "new")?.source
                    == Array(#"{"name":"Zoë again","dns":{"question":{"name":"x.example"}}}"#.utf8)
            )
            let spaced = try JSON.parse(try #require(try store.get(index: "old", id: "spaced")).source)
            #expect(spaced["c"] == true && spaced["b"] == 1)
        }
    }

    @Test func anIndexWhoseFirstWriteIsAnUpsertStillReadsEveryRow() async throws {
        try await withStore { store in
            let upsert = store.bulk([
                EmbeddedStore.BulkItem(
                    index: "first",
                    operation: .update(
                        UpdateRequest(
                            id: "u",
                            doc: ["n": 1, "text": "an upsert with no index source to learn from"],
                            docAsUpsert: true
                        )
                    )
                )
            ])
            #expect(upsert.first?.error == nil)
            try Self.write(store, "first", Self.odd)
            #expect(try JSON.parse(try #require(try store.get(index: "first", id: "u")).source)["n"] == 1)
            for (id, text) in Self.odd {
                #expect(try store.get(index: "first", id: id)?.source == Array(text.utf8), "\(id)")
            }
        }
    }

    @Test func rowsDeflatedBeforeZstdReadTheSameBesideNewRows() async throws {
        try await withTemporaryDirectory { directory in
            // The upgrade fixture was written while rows were deflated with the index's dictionary.
            try FileManager.default.removeItem(at: directory)
            try FileManager.default.copyItem(at: StoreUpgradeTests.fixture, to: directory)
            #expect(try Self.storedRows(directory).markers == [SourceCodec.deflateMarker])
            let expected = try StoreUpgradeTests.expectedDocuments()
            let store = try EmbeddedStore(configuration: EmbeddedStore.Configuration(dataDirectory: directory))
            defer { try? store.close() }
            let index = StoreUpgradeTests.index
            let updatedID = try #require(expected.keys.min())
            try Self.write(store, index, Self.odd)
            let updated = store.bulk([
                EmbeddedStore.BulkItem(
                    index: index,
                    operation: .update(UpdateRequest(id: updatedID, doc: ["updated": true]))
                )
            ])
            #expect(updated.first?.error == nil)
            // New rows are zstd frames with the dictionary the index already had; the old rows still inflate.
            #expect(try Self.storedRows(directory).markers.isSuperset(of: [1, 3]))
            for (id, document) in expected where id != updatedID {
                #expect(try JSON.parse(try #require(try store.get(index: index, id: id)).source) == document, "\(id)")
            }
            for (id, text) in Self.odd {
                #expect(try store.get(index: index, id: id)?.source == Array(text.utf8), "\(id)")
            }
            let changed = try JSON.parse(try #require(try store.get(index: index, id: updatedID)).source)
            #expect(
                changed["updated"] == true && changed.objectValue?.count == expected[updatedID]!.objectValue!.count + 1
            )
        }
    }

    @Test func aDamagedRowIsAnErrorNotACrash() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            let sample = try Self.storeSample(100, seed: 3, in: configuration, closing: true)
            // A frame cut short, one whose header claims 2^40 bytes, and flipped bytes in a frame's body.
            let file = try #require(try Self.documentFiles(directory).first)
            let database = try DatabaseQueue(path: file.path)
            try database.write { db in
                let rows = try Data.fetchAll(db, sql: "SELECT source FROM docs ORDER BY doc LIMIT 3")
                let cut = rows[0].prefix(rows[0].count / 2)
                // Magic, then a descriptor with an 8-byte content size and no window byte (single segment).
                var huge = Data([SourceCodec.zstdMarker, 0x28, 0xB5, 0x2F, 0xFD, 0xE0])
                huge.append(contentsOf: [0, 0, 0, 0, 0, 1, 0, 0])
                huge.append(contentsOf: rows[1].dropFirst(8))
                var flipped = rows[2]
                for position in stride(from: 10, to: flipped.count, by: 7) { flipped[position] ^= 0x5A }
                for (id, damaged) in zip(["doc-0", "doc-1", "doc-2"], [cut, huge, flipped]) {
                    try db.execute(sql: "UPDATE docs SET source = ? WHERE id = ?", arguments: [damaged, id])
                }
            }
            try database.close()
            let store = try EmbeddedStore(configuration: configuration)
            defer { try? store.close() }
            for id in ["doc-0", "doc-1", "doc-2"] {
                let read = Result { try store.get(index: "packets", id: id) }
                let failed: Bool
                if case .success(let document) = read {
                    // Flipped bytes may still make a frame; it then must not claim to be the document.
                    failed = document?.source != Array(sample[Int(id.dropFirst(4))!].1.utf8)
                } else {
                    failed = true
                }
                #expect(failed, "\(id) read back as if whole")
            }
            #expect(try store.get(index: "packets", id: "doc-3")?.source == Array(sample[3].1.utf8))
        }
    }

    /// A store dropped without closing keeps its in-memory segment only as rows, indexed again at the next open; a
    /// row damaged meanwhile cannot be, and is reported by id (the index opens, the other documents are found).
    @Test func aDamagedRowReplayedAtOpenIsReportedNotSkipped() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            // Dropped without close(): nothing is flushed to the segments file.
            let sample = try Self.storeSample(50, seed: 5, in: configuration, closing: false)
            let file = try #require(try Self.documentFiles(directory).first)
            let database = try DatabaseQueue(path: file.path)
            try database.write { db in
                let flushed = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'flushed_doc'")
                #expect(flushed == nil || flushed == "0")
                let row = try #require(try Data.fetchOne(db, sql: "SELECT source FROM docs WHERE id = 'doc-7'"))
                try db.execute(
                    sql: "UPDATE docs SET source = ? WHERE id = 'doc-7'",
                    arguments: [row.prefix(row.count / 2)]
                )
            }
            try database.close()
            let store = try EmbeddedStore(configuration: configuration)
            defer { try? store.close() }
            let index = try #require(store.openIndices(["packets"]).first)
            #expect(index.unindexedAtOpen == ["doc-7"])
            // Its fields are not indexed: a query on any of them leaves it out (`match_all` still counts it).
            let dated = try store.search("packets", ["query": ["exists": ["field": "@timestamp"]], "size": 0])
            #expect(dated["hits"]?["total"]?["value"]?.intValue == 49)
            #expect(try store.get(index: "packets", id: "doc-8")?.source == Array(sample[8].1.utf8))
        }
    }
}
