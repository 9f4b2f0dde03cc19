import Foundation
import GRDB
import QuarryCore
import QuarryTesting
import Testing

@testable import QuarrySearch

/// A data directory written before segments merged (`Tests/fixtures/store-before-merging`, written by Quarry at
/// 5a82bad from the three bulk files beside it: 150 documents in three segments, 20 of them replaced and 15
/// deleted) opens and reads the same, merges into the new layout, and reads the same again.
@Suite(.mayBlock)
struct StoreUpgradeTests {
    static let fixture = ProjectPaths.root.appendingPathComponent("Tests/fixtures/store-before-merging")
    static let index = "old-packets"

    /// What the three bulk files leave: each id's last document.
    static func expectedDocuments() throws -> [String: JSON] {
        var documents: [String: JSON] = [:]
        for run in 1...3 {
            let text = try String(contentsOf: fixture.appendingPathComponent("run\(run).ndjson"), encoding: .utf8)
            var lines = text.split(separator: "\n").makeIterator()
            while let line = lines.next() {
                let action = try JSON.parse(String(line))
                if let delete = action["delete"] {
                    documents[delete["_id"]!.stringValue!] = nil
                } else if let index = action["index"], let source = lines.next() {
                    documents[index["_id"]!.stringValue!] = try JSON.parse(String(source))
                }
            }
        }
        return documents
    }

    /// Every document by id, the count, and term queries on a few keyword fields against a scan of `expected`.
    static func compare(_ store: EmbeddedStore, _ expected: [String: JSON], _ context: String) throws {
        #expect(try store.count(index, query: .matchAll(boost: 1)) == expected.count, "\(context): count")
        for (id, document) in expected {
            let stored = try store.get(index: index, id: id)
            #expect(stored.map { try? JSON.parse($0.source) } == document, "\(context): \(id)")
        }
        for field in ["dns.question.name", "source.ip", "network.transport", "dns.response_code", "labels.rewritten"] {
            let values = Set(expected.values.compactMap { $0[field]?.stringValue })
            for value in values {
                let query: JSON = ["term": [.init(stringLiteral: field + ".keyword"): .string(value)]]
                let found = Set(try store.ids(index, ["query": query, "size": 500]))
                #expect(
                    found == Set(expected.filter { $0.value[field]?.stringValue == value }.keys),
                    "\(context): \(field) \(value)"
                )
            }
        }
        let matched = Set(try store.ids(index, ["query": ["match": ["query": "linkedin"]], "size": 500]))
        let scanned = expected.filter { $0.value["query"]?.stringValue?.contains("linkedin") == true }.keys
        #expect(matched == Set(scanned), "\(context): match on a text field")
        let range: JSON = ["range": ["destination.port": ["gte": 53, "lte": 53]]]
        #expect(
            try store.ids(index, ["query": range, "size": 500]).count
                == expected.values.filter { $0["destination"]?["port"]?.intValue == 53 }.count,
            "\(context): range"
        )
    }

    @Test func aDataDirectoryFromBeforeMergingReadsTheSameAndMergesIntoTheNewLayout() async throws {
        try await withTemporaryDirectory { directory in
            try FileManager.default.removeItem(at: directory)
            try FileManager.default.copyItem(at: Self.fixture, to: directory)
            let expected = try Self.expectedDocuments()
            #expect(expected.count == 135)
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                defer { try? store.close() }
                let segments = try store.segments(Self.index)[0].segments
                #expect(segments.map(\.documents) == [42, 43, 50], "live documents of the three old segments")
                try Self.compare(store, expected, "as written")
                _ = try store.forceMerge(Self.index, maxSegments: 1)
                #expect(try store.segments(Self.index)[0].segments.map(\.documents) == [135])
                #expect(try store.summaries(Self.index)[0].deletedCount == 0)
                try Self.compare(store, expected, "merged")
            }
            // Reopened: the merged segment, and no row of the old layout left behind.
            let store = try EmbeddedStore(configuration: configuration)
            defer { try? store.close() }
            try Self.compare(store, expected, "merged and reopened")
            let file = try #require(
                try FileManager.default.contentsOfDirectory(
                    at: directory.appendingPathComponent("indices"),
                    includingPropertiesForKeys: nil
                ).first { $0.lastPathComponent.hasSuffix(".segments.sqlite") }
            )
            let segments = try DatabaseQueue(path: file.path)
            let oldRows = try segments.read { db in
                try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM postings) + (SELECT COUNT(*) FROM columns)")
            }
            #expect(oldRows == 0)
        }
    }
}
