import Foundation
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

/// Regressions of what an outside probe found in the store: names whose files collided, versions ignored, values
/// that trapped a conversion, and input that drove recursion without a bound.
@Suite(.mayBlock)
struct HostileInputStoreTests {
    func document(_ json: JSON, id: String, conditions: WriteConditions = .init()) -> WriteOperation {
        .index(IndexRequest(id: id, source: json.serializedBytes(), document: json, conditions: conditions))
    }

    @Test func indicesWhoseNamesLookAlikeKeepTheirDocumentsAcrossReopen() async throws {
        let names = ["foo", "foo.segments", "foo.sqlite", "nul\u{0}idx", "nul%00idx", "catalog", "a-b", "a_b"]
        try await withTemporaryDirectory { url in
            let configuration = EmbeddedStore.Configuration(dataDirectory: url)
            do {
                let store = try EmbeddedStore(configuration: configuration)
                for (position, name) in names.enumerated() {
                    _ = try store.write(index: name, document(["n": .int(Int64(position))], id: "only"))
                }
                try store.close()
            }
            let reopened = try EmbeddedStore(configuration: configuration)
            defer { try? reopened.close() }
            for (position, name) in names.enumerated() {
                let stored = try #require(try reopened.get(index: name, id: "only"), "index \(name)")
                #expect(try JSON.parse(stored.source) == ["n": .int(Int64(position))])
                #expect(try reopened.count(name, query: .matchAll(boost: 1)) == 1)
            }
        }
    }

    @Test func externalVersionsRefuseStaleWrites() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            func external(_ version: Int64, equal: Bool = false) -> WriteConditions {
                WriteConditions(externalVersion: .init(version: version, allowsEqual: equal))
            }
            let first = try store.write(index: "v", document(["a": 1], id: "1", conditions: external(5)))
            #expect(first.version == 5 && first.result == "created")
            #expect { try store.write(index: "v", document(["a": 2], id: "1", conditions: external(3))) } throws: {
                ($0 as? StoreError)?.status == 409
                    && ($0 as? StoreError)?.reason
                        == "[1]: version conflict, current version [5] is higher or equal to the one provided [3]"
            }
            #expect { try store.write(index: "v", document(["a": 2], id: "1", conditions: external(5))) } throws: {
                ($0 as? StoreError)?.status == 409
            }
            let equal = try store.write(index: "v", document(["a": 3], id: "1", conditions: external(5, equal: true)))
            #expect(equal.version == 5 && equal.result == "updated")
            let newer = try store.write(index: "v", document(["a": 4], id: "1", conditions: external(9)))
            #expect(newer.version == 9)
            #expect(try JSON.parse(try #require(try store.get(index: "v", id: "1")).source) == ["a": 4])
            #expect { try store.write(index: "v", .delete(id: "1", conditions: external(8))) } throws: {
                ($0 as? StoreError)?.status == 409
            }
            let deleted = try store.write(index: "v", .delete(id: "1", conditions: external(12)))
            #expect(deleted.result == "deleted" && deleted.version == 12)
        }
    }

    @Test func numbersPastEveryRangeAnswerWithoutTrapping() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            _ = try store.createIndex(
                "t",
                body: [
                    "mappings": [
                        "properties": ["n": ["type": "long"], "ts": ["type": "date"], "i": ["type": "integer"]]
                    ]
                ]
            )
            try store.index("t", [["n": 5, "ts": "2026-01-01", "i": 7], ["n": -5, "ts": 0, "i": -7]])
            let empty: [JSON] = [
                ["range": ["n": ["gte": 1e19]]], ["range": ["n": ["lte": -1e19]]],
                ["range": ["n": ["gte": .double(.infinity)]]],
                ["range": ["ts": ["gte": 1e300]]], ["range": ["i": ["gt": 1e300]]],
            ]
            for query in empty { #expect(try store.ids("t", ["query": query]).isEmpty, "\(query)") }
            let everything: [JSON] = [
                ["range": ["n": ["gte": -1e19]]], ["range": ["n": ["lte": .double(.infinity)]]],
                ["range": ["ts": ["gte": -1e300]]],
            ]
            for query in everything { #expect(try store.ids("t", ["query": query]).count == 2, "\(query)") }
            for query: JSON in [["term": ["n": 1e19]], ["terms": ["n": [1e19]]], ["term": ["i": 3e9]]] {
                #expect(throws: StoreError.self) { try store.ids("t", ["query": query]) }
            }
            #expect { try store.index("t", [["ts": 1e300]]) } throws: { ($0 as? StoreError)?.status == 400 }
            #expect { try store.index("t", [["ts": "99999999999999999999999"]]) } throws: {
                ($0 as? StoreError)?.status == 400
            }
        }
    }

    @Test func fieldNamesMadeOfDotsAreRefused() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            for name in [".", "..", "a.", ".a", "a..b", " .x"] {
                #expect(throws: StoreError.self, "\(name)") { try store.index("t", [[name: 1]]) }
            }
            try store.index("t", [["a.b": 1]])
            #expect(try store.count("t", query: .matchAll(boost: 1)) == 1)
        }
    }

    @Test func queriesNestDeeperThanTheLimitAreRefused() throws {
        func nested(_ depth: Int) -> JSON {
            var query: JSON = ["match_all": [:]]
            for _ in 1..<depth { query = ["bool": ["must": [query]]] }
            return query
        }
        _ = try Query.parse(nested(Query.maximumNestedDepth))
        #expect { try Query.parse(nested(Query.maximumNestedDepth + 1)) } throws: {
            ($0 as? StoreError)?.type == "parsing_exception"
        }
        let groups = String(repeating: "(", count: 10_000) + "a" + String(repeating: ")", count: 10_000)
        #expect(throws: StoreError.self) { try Query.parse(["query_string": ["query": .string(groups)]]) }
        for text in ["a\\", "/unterminated", "(a", "\"open"] {
            #expect(throws: StoreError.self, "\(text)") { try Query.parse(["query_string": ["query": .string(text)]]) }
        }
    }

    /// Found by `fuzz/run.sh es-api`: a mapped field whose name holds a `*` matched its own pattern, and a `match`
    /// on that pattern expanded to the field, which expanded again, until the stack overflowed.
    @Test func aFieldNamedLikeAPatternDoesNotExpandForever() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            _ = try store.write(index: "w", document(["a*b": "x y", "a*c": 5], id: "1"))
            _ = try store.refresh("w")
            for query: JSON in [
                ["match": ["a*": "x"]], ["match": ["a*b": "x"]], ["multi_match": ["query": "x", "fields": ["a*"]]],
                ["query_string": ["query": "x", "fields": ["a*"]]], ["query_string": ["query": "a*b:x"]],
            ] {
                #expect(try store.count("w", query: Query.parse(query)) == 1, "\(query.serialized())")
            }
        }
    }

    @Test func explicitMappingsPastTheFieldLimitAreRefused() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            var properties = JSONObject()
            for n in 0..<1_001 { properties["f\(n)"] = ["type": "keyword"] }
            #expect { try store.createIndex("wide", body: ["mappings": ["properties": .object(properties)]]) } throws: {
                ($0 as? StoreError)?.reason == "Limit of total fields [1000] has been exceeded"
            }
            _ = try store.createIndex("narrow")
            #expect(throws: StoreError.self) {
                try store.putMapping("narrow", body: ["properties": .object(properties)])
            }
        }
    }
}
