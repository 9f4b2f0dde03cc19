import Foundation
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

/// Document writes: versions, conflicts, updates, deletes, mapping errors, and what survives a reopen.
@Suite(.mayBlock)
struct DocumentTests {
    func write(_ store: EmbeddedStore, _ index: String, _ operation: WriteOperation) throws -> WriteResult {
        try store.write(index: index, operation)
    }

    func indexRequest(_ id: String?, _ document: JSON, create: Bool = false, ifSeqNo: Int64? = nil) -> WriteOperation {
        .index(
            IndexRequest(
                id: id,
                source: document.serializedBytes(),
                document: document,
                createOnly: create,
                conditions: .init(ifSeqNo: ifSeqNo, ifPrimaryTerm: ifSeqNo == nil ? nil : 1)
            )
        )
    }

    @Test func versionsSequenceNumbersAndResults() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            let created = try write(store, "docs", indexRequest("1", ["a": 1]))
            #expect(created.result == "created" && created.version == 1 && created.seqNo == 0 && created.status == 201)
            let updated = try write(store, "docs", indexRequest("1", ["a": 2]))
            #expect(updated.result == "updated" && updated.version == 2 && updated.seqNo == 1 && updated.status == 200)
            let document = try #require(try store.get(index: "docs", id: "1"))
            #expect(document.version == 2)
            #expect(try JSON.parse(document.source) == ["a": 2])
            let deleted = try write(store, "docs", .delete(id: "1", conditions: .init()))
            #expect(deleted.result == "deleted" && deleted.version == 3)
            #expect(try store.get(index: "docs", id: "1") == nil)
            let missing = try write(store, "docs", .delete(id: "1", conditions: .init()))
            #expect(missing.result == "not_found" && missing.status == 404)
            #expect(try store.count("docs", query: .matchAll(boost: 1)) == 0)
        }
    }

    @Test func createAndSequenceNumberConflicts() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            _ = try write(store, "docs", indexRequest("1", ["a": 1]))
            #expect { try write(store, "docs", indexRequest("1", ["a": 2], create: true)) } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.type == "version_conflict_engine_exception" && error.status == 409
                    && error.reason == "[1]: version conflict, document already exists (current version [1])"
            }
            #expect { try write(store, "docs", indexRequest("1", ["a": 2], ifSeqNo: 7)) } throws: { error in
                (error as? StoreError)?.type == "version_conflict_engine_exception"
            }
            let ok = try write(store, "docs", indexRequest("1", ["a": 3], ifSeqNo: 0))
            #expect(ok.version == 2)
        }
    }

    @Test func partialUpdatesMergeUpsertAndDetectNoops() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            _ = try write(store, "docs", indexRequest("1", ["a": 1, "n": ["x": 1, "y": 2]]))
            let merged = try write(store, "docs", .update(UpdateRequest(id: "1", doc: ["n": ["x": 5], "b": true])))
            #expect(merged.result == "updated" && merged.version == 2)
            let source = try JSON.parse(try #require(try store.get(index: "docs", id: "1")).source)
            #expect(source == ["a": 1, "n": ["x": 5, "y": 2], "b": true])
            let noop = try write(store, "docs", .update(UpdateRequest(id: "1", doc: ["a": 1])))
            #expect(noop.result == "noop" && noop.version == 2)
            #expect { try write(store, "docs", .update(UpdateRequest(id: "2", doc: ["a": 1]))) } throws: { error in
                (error as? StoreError)?.type == "document_missing_exception" && (error as? StoreError)?.status == 404
            }
            let upserted = try write(store, "docs", .update(UpdateRequest(id: "2", doc: ["a": 9], docAsUpsert: true)))
            #expect(upserted.result == "created")
            #expect(try store.ids("docs", ["query": ["term": ["a": 9]]]) == ["2"])
        }
    }

    @Test func mappingErrorsFailTheItemNotTheRequest() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.createIndex(
                "typed",
                body: ["mappings": ["properties": ["n": ["type": "byte"], "ip": ["type": "ip"]]]]
            )
            let results = store.bulk([
                .init(index: "typed", operation: indexRequest("1", ["n": 1])),
                .init(index: "typed", operation: indexRequest("2", ["n": "abc"])),
                .init(index: "typed", operation: indexRequest("3", ["n": 300])),
                .init(index: "typed", operation: indexRequest("4", ["ip": "999.1.1.1"])),
                .init(index: "typed", operation: indexRequest("5", ["n": ["not": "a number"]])),
                .init(index: "typed", operation: indexRequest("6", ["n": 2])),
                .init(index: "Bad-Name", operation: indexRequest("7", ["n": 2])),
            ])
            #expect(results.map { $0.error == nil } == [true, false, false, false, false, true, false])
            #expect(results[1].error?.type == "document_parsing_exception")
            #expect(results[1].error?.causedBy.first?.reason == "For input string: \"abc\"")
            #expect(results[2].error?.causedBy.first?.reason == "Value [300] is out of range for a byte")
            #expect(results[6].error?.type == "invalid_index_name_exception")
            #expect(try store.count("typed", query: .matchAll(boost: 1)) == 2)
        }
    }

    @Test func strictAndDisabledDynamicMapping() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.createIndex(
                "strict",
                body: ["mappings": ["dynamic": "strict", "properties": ["a": ["type": "long"]]]]
            )
            #expect { try write(store, "strict", indexRequest("1", ["b": 1])) } throws: { error in
                (error as? StoreError)?.type == "strict_dynamic_mapping_exception"
            }
            try store.createIndex("loose", body: ["mappings": ["dynamic": false]])
            _ = try write(store, "loose", indexRequest("1", ["b": 1]))
            #expect(try store.get(index: "loose", id: "1") != nil)
            #expect(
                try store.ids("loose", ["query": ["term": ["b": 1]]]) == [],
                "unmapped fields are kept, not indexed"
            )
            #expect(try store.metadata("loose")[0].mappings.json["properties"] == nil)
        }
    }

    @Test func mappingExplosionsAreRefused() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.createIndex("small", body: ["settings": ["index.mapping.total_fields.limit": 3]])
            _ = try write(store, "small", indexRequest("1", ["a": 1, "b": 2]))
            #expect { try write(store, "small", indexRequest("2", ["c": 1, "d": 2])) } throws: { error in
                (error as? StoreError)?.causedBy.first?.reason
                    == "Limit of total fields [3] has been exceeded while adding new fields [1]"
            }
            var deep: JSON = ["leaf": 1]
            for level in 0..<25 { deep = .object(["l\(level)": deep]) }
            #expect { try write(store, "deep", indexRequest("1", deep)) } throws: { error in
                (error as? StoreError)?.reason.hasPrefix("Limit of mapping depth [20] has been exceeded") == true
            }
        }
    }

    @Test func templatesApplyToAutoCreatedIndices() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.putTemplate(
                "low",
                body: [
                    "index_patterns": ["logs-*"], "priority": 1,
                    "template": ["mappings": ["properties": ["x": ["type": "keyword"]]]],
                ]
            )
            try store.putTemplate(
                "high",
                body: [
                    "index_patterns": "logs-special-*", "priority": 10,
                    "template": [
                        "settings": ["number_of_replicas": 0], "mappings": ["properties": ["x": ["type": "ip"]]],
                        "aliases": ["special": [:]],
                    ],
                ]
            )
            _ = try write(store, "logs-a", indexRequest("1", ["x": "10.0.0.1"]))
            _ = try write(store, "logs-special-a", indexRequest("1", ["x": "10.0.0.1"]))
            #expect(try store.metadata("logs-a")[0].mappings.field("x")?.type == .keyword)
            let special = try store.metadata("logs-special-a")[0]
            #expect(special.mappings.field("x")?.type == .ip)
            #expect(special.settings["index.number_of_replicas"] == "0")
            #expect(try store.ids("special", ["query": ["term": ["x": "10.0.0.0/8"]]]) == ["1"])
            #expect(store.templates(matching: "h*").map(\.name) == ["high"])
        }
    }

    @Test func invalidIndexNamesAreRefused() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            for name in ["UPPER", "a b", "a*b", "_under", "-dash", "+plus", "a#b", "a:b", ".", "..", "a/b", "a\"b", ""]
            {
                #expect(throws: StoreError.self, "\(name)") { try store.createIndex(name) }
            }
            #expect(throws: Never.self) { try store.createIndex(".hidden-ok") }
        }
    }

    @Test func segmentsFlushedAndUnflushedSurviveReopen() async throws {
        try await withTemporaryDirectory { url in
            let configuration = EmbeddedStore.Configuration(dataDirectory: url, segmentDocuments: 10)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                try store.index(
                    "logs",
                    (0..<35).map { ["n": .int(Int64($0)), "tag": .string("t\($0 % 3)")] },
                    ids: (0..<35).map { "d\($0)" }
                )
                _ = try store.write(index: "logs", .delete(id: "d4", conditions: .init()))
                _ = try store.write(index: "logs", .update(UpdateRequest(id: "d31", doc: ["tag": "moved"])))
                // No close(): the last segment was never flushed, as after a crash.
            }
            let reopened = try EmbeddedStore(configuration: configuration)
            defer { try? reopened.close() }
            #expect(try reopened.count("logs", query: .matchAll(boost: 1)) == 34)
            #expect(try reopened.ids("logs", ["query": ["term": ["tag.keyword": "moved"]]]) == ["d31"])
            #expect(
                try reopened.ids("logs", ["query": ["range": ["n": ["gte": 3, "lte": 5]]], "sort": ["n"]]) == [
                    "d3", "d5",
                ]
            )
            #expect(
                try reopened.count(
                    "logs",
                    query: .term(field: "tag.keyword", value: "t1", caseInsensitive: false, boost: 1)
                ) == 10,
                "12 minus the deleted d4 and the moved d31"
            )
        }
    }

    @Test func aSecondStoreOnTheSameDirectoryIsRefused() async throws {
        try await withTemporaryDirectory { url in
            let first = try EmbeddedStore(configuration: .init(dataDirectory: url))
            defer { try? first.close() }
            #expect { try EmbeddedStore(configuration: .init(dataDirectory: url)) } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.type == "lock_obtain_failed_exception" && error.reason.contains("pid \(getpid())")
            }
        }
    }

    /// A child process started while a store was open holds a copy of its lock until it execs; a store opened again
    /// at that moment waits for the copy to go instead of refusing. A second descriptor of the lock file, locked and
    /// released a little later by another thread, stands in for the child's copy.
    @Test func aLockHeldForAMomentByThisProcesssChildIsWaitedFor() async throws {
        try await withTemporaryDirectory { url in
            try EmbeddedStore(configuration: .init(dataDirectory: url)).close()
            let copy = open(url.appendingPathComponent("quarry.lock").path, O_RDWR | O_CLOEXEC)
            #expect(copy >= 0)
            // Other tests start processes all the time, so a real child may hold the store's lock for a moment too.
            var attempts = 0
            while flock(copy, LOCK_EX | LOCK_NB) != 0, attempts < 500 {
                attempts += 1
                usleep(10_000)
            }
            #expect(attempts < 500)
            let release = Thread {
                usleep(300_000)
                close(copy)
            }
            release.start()
            let started = ContinuousClock.now
            let store = try EmbeddedStore(configuration: .init(dataDirectory: url))
            try store.close()
            #expect(ContinuousClock.now - started >= .milliseconds(250), "it waited for the copy")
        }
    }
}
