import Foundation
import GRDB
import QuarryCore
import QuarrySamples
import QuarrySearch
import QuarryTesting
import Testing

/// `_source` is stored deflated with a dictionary of the index's first documents, and comes back byte for byte;
/// rows written before (plain JSON) read the same.
struct SourceStorageTests {
    /// The documents file of each index of a data directory.
    static func documentFiles(_ directory: URL) throws -> [URL] {
        let indices = directory.appendingPathComponent("indices")
        return try FileManager.default.contentsOfDirectory(atPath: indices.path)
            .filter { $0.hasSuffix(".sqlite") && !$0.contains(".segments.") }
            .map { indices.appendingPathComponent($0) }
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

    @Test func sourcesComeBackByteForByteAndAreStoredDeflated() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory, segmentDocuments: 64)
            var generator = DNSDocumentGenerator(configuration: .init(documents: 500, end: 1_796_000_000_000, seed: 7))
            var sample: [(String, String)] = []
            while let document = generator.next() {
                sample.append(("doc-\(sample.count)", String(decoding: document.serializedBytes(), as: UTF8.self)))
            }
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
                // Dropped without close: its unflushed documents are replayed from their stored (deflated) rows.
            }
            let reopened = try EmbeddedStore(configuration: configuration)
            defer { try? reopened.close() }
            #expect(try reopened.count("packetbeat-1", query: .matchAll(boost: 1)) == 500)
            for (id, text) in sample.suffix(20) {
                #expect(try reopened.get(index: "packetbeat-1", id: id)?.source == Array(text.utf8))
            }
            // On disk: the sample's rows take well under a third of their JSON.
            var stored = 0
            var markers: Set<UInt8> = []
            for file in try Self.documentFiles(directory) {
                let database = try DatabaseQueue(path: file.path)
                try database.read { db in
                    stored +=
                        try Int.fetchOne(db, sql: "SELECT SUM(length(source)) FROM docs WHERE length(source) < 10000")
                        ?? 0
                    for row in try Data.fetchAll(db, sql: "SELECT source FROM docs") { markers.insert(row.first ?? 0) }
                }
                try database.close()
            }
            let original = (Self.odd.filter { $0.1.utf8.count < 10_000 } + sample).reduce(0) { $0 + $1.1.utf8.count }
            #expect(stored * 3 < original, "stored \(stored) bytes for \(original)")
            // Deflated rows, and the incompressible one kept as it came.
            #expect(markers.contains(1) && markers.contains(UInt8(ascii: "{")), "\(markers)")
        }
    }

    @Test func rowsWrittenBeforeCompressionReadTheSameAndLaterRowsAreDeflated() async throws {
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
}
