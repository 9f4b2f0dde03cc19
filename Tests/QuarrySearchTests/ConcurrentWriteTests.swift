import Foundation
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

@testable import QuarrySearch

/// A write indexes its documents before it takes the index's lock (`StoredIndex.prepare`), so another write may
/// change the mapping or make the `_source` dictionary in between; what was prepared from the old ones must then be
/// done again, and writers running side by side must store exactly what they were sent.
@Suite(.mayBlock)
struct ConcurrentWriteTests {
    /// Index requests of `count` documents made by `document`, as `_bulk` passes them (bytes only, no tree).
    static func operations(_ count: Int, _ document: (Int) -> JSON) -> [WriteOperation] {
        (0..<count).map { position in
            .index(IndexRequest(id: "d\(position)", source: document(position).serializedBytes()))
        }
    }

    @Test func documentsPreparedBeforeAMappingChangeAreIndexedWithTheNewMapping() async throws {
        try await withStore { store in
            try store.createIndex("hosts", body: ["mappings": ["properties": ["name": ["type": "keyword"]]]])
            try store.index("hosts", [["name": "first"]], ids: ["seed"])
            let index = try #require(store.openIndices(["hosts"]).first)
            let operations = Self.operations(300) { ["name": .string("Host-\($0)")] }
            let prepared = index.prepare(operations)
            #expect(prepared.operations.contains { $0?.chunk != nil })
            // Between preparing and committing, the field gains a lowercased sub-field.
            try store.putMapping(
                "hosts",
                body: [
                    "properties": [
                        "name": [
                            "type": "keyword", "fields": ["lower": ["type": "keyword", "normalizer": "lowercase"]],
                        ]
                    ]
                ]
            )
            let results = try index.write(operations, prepared: prepared)
            #expect(results.allSatisfy { $0.error == nil })
            _ = try store.refresh("hosts")
            let hits = try store.search("hosts", ["query": ["term": ["name.lower": "host-7"]]])
            #expect(hits["hits"]?["total"]?["value"]?.intValue == 1, "\(hits)")
        }
    }

    @Test func documentsPreparedBeforeAnotherWriteMadeTheDictionaryAreStoredWithIt() async throws {
        try await withStore { store in
            try store.createIndex("logs")
            let index = try #require(store.openIndices(["logs"]).first)
            // Both requests are prepared on an index without a dictionary; the one committed first makes it.
            let late = Self.operations(300) { ["message": .string("late \($0)"), "n": .int(Int64($0))] }
            let early = (0..<300).map { position in
                let document: JSON = ["other": .string("early \(position)")]
                return WriteOperation.index(IndexRequest(id: "e\(position)", source: document.serializedBytes()))
            }
            let preparedLate = index.prepare(late)
            #expect(preparedLate.newDictionary != nil)
            _ = try index.write(early)
            let results = try index.write(late, prepared: preparedLate)
            #expect(results.allSatisfy { $0.error == nil })
            for position in [0, 1, 150, 299] {
                let stored = try #require(try store.get(index: "logs", id: "d\(position)"))
                let expected: JSON = ["message": .string("late \(position)"), "n": .int(Int64(position))]
                #expect(try JSON.parse(stored.source) == expected)
            }
        }
    }

    /// A large request indexed in batches before the transaction, one of whose items then fails (a create of an id
    /// that exists): the documents are numbered with a gap, the batches cannot join the segment whole, and the
    /// stored documents are indexed one at a time instead. Every one is found, the failed one is not.
    @Test func aFailedItemLeavesTheBatchedDocumentsOfItsRequestSearchable() async throws {
        try await withStore { store in
            try store.createIndex(
                "hosts",
                body: ["mappings": ["properties": ["name": ["type": "keyword"], "n": ["type": "long"]]]]
            )
            try store.index("hosts", [["name": "seed"]], ids: ["d150"])
            let index = try #require(store.openIndices(["hosts"]).first)
            var operations = Self.operations(600) { ["name": .string("host-\($0)"), "n": .int(Int64($0))] }
            let conflicting: JSON = ["name": "conflict", "n": 150]
            operations[150] = .index(IndexRequest(id: "d150", source: conflicting.serializedBytes(), createOnly: true))
            let prepared = index.prepare(operations)
            #expect(prepared.operations.compactMap { $0?.chunk }.count > 1)
            let results = try index.write(operations, prepared: prepared)
            #expect(results[150].status == 409)
            #expect(results.enumerated().allSatisfy { $0.offset == 150 || $0.element.error == nil })
            _ = try store.refresh("hosts")
            for position in [0, 149, 151, 299, 300, 599] {
                let hits = try store.search("hosts", ["query": ["term": ["name": .string("host-\(position)")]]])
                #expect(hits["hits"]?["total"]?["value"]?.intValue == 1, "host-\(position): \(hits)")
            }
            let range = try store.search("hosts", ["query": ["range": ["n": ["gte": 0, "lte": 599]]], "size": 0])
            #expect(range["hits"]?["total"]?["value"]?.intValue == 599, "\(range)")
            let conflict = try store.search("hosts", ["query": ["term": ["name": "conflict"]]])
            #expect(conflict["hits"]?["total"]?["value"]?.intValue == 0)
        }
    }

    /// Four writers, each sending requests large enough to be prepared outside the lock, into one index whose
    /// mapping grows as they go; every document is then found by every query as a scan of what was sent finds it.
    @Test func writersSideBySideStoreExactlyWhatTheySent() async throws {
        try await withStore(segmentDocuments: 2_000) { store in
            try store.createIndex("merged", body: ["mappings": MergeTests.mappings])
            let models = try await onThreads(4) { writer -> [String: JSON] in
                var random = SplitMix64(seed: 90 + UInt64(writer))
                var model: [String: JSON] = [:]
                for request in 0..<6 {
                    var documents: [(String, JSON)] = []
                    for position in 0..<300 {
                        var document = MergeTests.document(&random)
                        // A field new to the mapping now and then: dynamic mapping while the others prepare.
                        if position == 100 { document["w\(writer)r\(request)"] = .string("new") }
                        documents.append(("w\(writer)-\(request)-\(position)", document))
                    }
                    let results = store.bulk(
                        documents.map { id, document in
                            EmbeddedStore.BulkItem(
                                index: "merged",
                                operation: .index(IndexRequest(id: id, source: document.serializedBytes()))
                            )
                        }
                    )
                    for ((id, document), result) in zip(documents, results) where result.error == nil {
                        model[id] = document
                    }
                }
                return model
            }
            let model = models.reduce(into: [String: JSON]()) { $0.merge($1) { _, new in new } }
            #expect(model.count == 4 * 6 * 300)
            _ = try store.refresh("merged")
            try MergeTests.compare(store, model, context: "four writers side by side")
        }
    }
}

/// Runs `work` on `count` threads at once and collects what each one stored, in thread order; the wait for them is
/// itself off Swift's cooperative pool, whose two threads every other test of the process needs meanwhile.
private func onThreads(
    _ count: Int,
    _ work: @escaping @Sendable (Int) -> [String: JSON]
) async throws -> [[String: JSON]] {
    try await onThreadOfItsOwn {
        let results = Results()
        let group = DispatchGroup()
        for thread in 0..<count {
            group.enter()
            Thread {
                let value = work(thread)
                results.lock.withLock { results.values[thread] = value }
                group.leave()
            }.start()
        }
        group.wait()
        return (0..<count).map { results.values[$0] ?? [:] }
    }
}

private final class Results: @unchecked Sendable {
    let lock = NSLock()
    var values: [Int: [String: JSON]] = [:]
}
