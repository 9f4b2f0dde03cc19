import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// Search request features: paging, sorting, `search_after`, `_source` filtering, totals and limits.
@Suite(.mayBlock)
struct SearchTests {
    /// 25 documents over several segments (segments of 7 documents), so every feature crosses segment borders.
    func withNumbers(_ body: (EmbeddedStore) throws -> Void) async throws {
        try await withStore(segmentDocuments: 7) { (store: EmbeddedStore) throws in
            try store.createIndex(
                "numbers",
                body: ["mappings": ["properties": ["name": ["type": "keyword"], "ip": ["type": "ip"]]]]
            )
            var documents: [JSON] = []
            for n in 0..<25 {
                var document: JSONObject = [
                    "n": .int(Int64(n)), "name": .string("doc-\(String(format: "%02d", n))"),
                    "even": .bool(n % 2 == 0), "ip": .string("10.0.0.\(25 - n)"),
                    "nested": ["a": ["b": .int(Int64(n * 10))], "c": "x"],
                ]
                if n % 5 == 0 { document["rare"] = .int(Int64(100 - n)) }
                documents.append(.object(document))
            }
            try store.index("numbers", documents, ids: (0..<25).map { "id\($0)" })
            try body(store)
        }
    }

    @Test func defaultsAreTenHitsFromZeroInIndexOrder() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            let response = try store.search("numbers", [:])
            #expect(response["hits"]?["total"] == ["value": 25, "relation": "eq"])
            #expect(response["hits"]?["hits"]?.arrayValue?.count == 10)
            #expect(try store.ids("numbers", ["from": 20, "size": 10]) == (20..<25).map { "id\($0)" })
            #expect(response["_shards"]?["total"] == 1)
        }
    }

    @Test func sortsByFieldsWithMissingValuesLast() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            #expect(try store.ids("numbers", ["sort": [["n": "desc"]], "size": 3]) == ["id24", "id23", "id22"])
            #expect(try store.ids("numbers", ["sort": ["name"], "size": 2]) == ["id0", "id1"])
            #expect(try store.ids("numbers", ["sort": [["ip": "asc"]], "size": 2]) == ["id24", "id23"])
            let rare: JSON = ["sort": [["rare": "asc"]], "size": 6]
            let response = try store.search("numbers", rare)
            let hits = try #require(response["hits"]?["hits"]?.arrayValue)
            #expect(hits.map { $0["_id"]?.stringValue } == ["id20", "id15", "id10", "id5", "id0", "id1"])
            #expect(hits[0]["sort"] == [80])
            #expect(hits[5]["sort"] == [.int(Int64.max)], "missing sorts last, reported as Long.MAX_VALUE as ES does")
            #expect(hits[0]["_score"] == .null)
            let first: JSON = ["sort": [["rare": ["order": "asc", "missing": "_first"]], "n"], "size": 2]
            #expect(try store.ids("numbers", first) == ["id1", "id2"])
            let byTwo: JSON = ["sort": [["even": "desc"], ["n": "desc"]], "size": 3]
            #expect(try store.ids("numbers", byTwo) == ["id24", "id22", "id20"])
        }
    }

    @Test func searchAfterPagesThroughEverything() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            var seen: [String] = []
            var after: JSON?
            while true {
                var body: JSONObject = ["size": 4, "sort": [["name": "desc"]]]
                if let after { body["search_after"] = after }
                let response = try store.search("numbers", .object(body))
                let hits = try #require(response["hits"]?["hits"]?.arrayValue)
                if hits.isEmpty { break }
                seen += hits.compactMap { $0["_id"]?.stringValue }
                after = hits.last?["sort"]
            }
            #expect(seen == (0..<25).reversed().map { "id\($0)" })
        }
    }

    @Test func sourceFilteringIncludesAndExcludes() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            func source(_ filter: JSON) throws -> JSON? {
                try store.search("numbers", ["size": 1, "_source": filter, "query": ["ids": ["values": ["id3"]]]])[
                    "hits"
                ]?["hits"]?[0]?["_source"]
            }
            #expect(try source(false) == nil)
            #expect(try source("n") == ["n": 3])
            #expect(try source(["nested.a.*", "name"]) == ["name": "doc-03", "nested": ["a": ["b": 30]]])
            #expect(try source(["includes": ["nested"], "excludes": ["nested.c"]]) == ["nested": ["a": ["b": 30]]])
            #expect(try source(["excludes": ["nested", "ip", "even"]]) == ["n": 3, "name": "doc-03"])
        }
    }

    @Test func totalHitsTracking() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            #expect(
                try store.search("numbers", ["track_total_hits": 10])["hits"]?["total"] == [
                    "value": 10, "relation": "gte",
                ]
            )
            #expect(try store.search("numbers", ["track_total_hits": false])["hits"]?["total"] == nil)
            #expect(try store.search("numbers", ["track_total_hits": true])["hits"]?["total"]?["value"] == 25)
            #expect(
                try store.search("numbers", SearchRequest(body: [:])).responseBody(totalHitsAsInt: true)["hits"]?[
                    "total"
                ] == 25
            )
        }
    }

    @Test func resultWindowAndNegativeValuesAreRejectedAsElasticsearchDoes() async throws {
        try await withNumbers { (store: EmbeddedStore) throws in
            #expect { try store.search("numbers", ["from": 9_995, "size": 10]) } throws: { error in
                guard let error = error as? StoreError else { return false }
                return error.type == "search_phase_execution_exception" && error.status == 400
                    && error.rootCauses.first?.type == "illegal_argument_exception"
                    && error.rootCauses.first?.reason.hasPrefix(
                        "Result window is too large, from + size must be less than or equal to: [10000] but was [10005]"
                    ) == true
            }
            #expect { try store.search("numbers", ["size": -1]) } throws: { error in
                (error as? StoreError)?.rootCauses.first?.reason == "[size] parameter cannot be negative, found [-1]"
            }
            try store.putSettings("numbers", body: ["index": ["max_result_window": 20_000]])
            #expect(
                try store.search("numbers", ["from": 9_995, "size": 10])["hits"]?["hits"]?.arrayValue?.isEmpty == true
            )
        }
    }

    @Test func scoresOrderMatchesAndFiltersScoreZero() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.index(
                "texts",
                [
                    ["body": "dns tunnel dns tunnel dns"],
                    ["body": "a long text that mentions dns once among many words"],
                    ["body": "nothing relevant"],
                ],
                ids: ["many", "once", "none"]
            )
            let response = try store.search("texts", ["query": ["match": ["body": "dns"]]])
            let hits = try #require(response["hits"]?["hits"]?.arrayValue)
            #expect(hits.map { $0["_id"]?.stringValue } == ["many", "once"])
            let first = try #require(hits[0]["_score"]?.doubleValue)
            let second = try #require(hits[1]["_score"]?.doubleValue)
            #expect(first > second && second > 0)
            #expect(response["hits"]?["max_score"]?.doubleValue == first)
            let filtered = try store.search("texts", ["query": ["bool": ["filter": [["match": ["body": "dns"]]]]]])
            #expect(filtered["hits"]?["hits"]?[0]?["_score"] == 0.0)
        }
    }

    @Test func wildcardIndexExpressionsAndOptions() async throws {
        try await withStore { (store: EmbeddedStore) throws in
            try store.index("logs-a", [["x": 1]])
            try store.index("logs-b", [["x": 2]])
            try store.index("other", [["x": 3]])
            #expect(try store.search("logs-*", [:])["hits"]?["total"]?["value"] == 2)
            #expect(try store.search("logs-*,-logs-b", [:])["hits"]?["total"]?["value"] == 1)
            #expect(try store.search("logs-a,other", [:])["hits"]?["total"]?["value"] == 2)
            #expect(try store.search("_all", [:])["hits"]?["total"]?["value"] == 3)
            #expect(try store.search("nothing-*", [:])["hits"]?["total"]?["value"] == 0)
            #expect { try store.search("missing", SearchRequest()) } throws: { error in
                (error as? StoreError)?.type == "index_not_found_exception" && (error as? StoreError)?.status == 404
            }
            #expect { try store.search("nothing-*", SearchRequest(), options: .init(allowNoIndices: false)) } throws: {
                (($0 as? StoreError)?.type == "index_not_found_exception")
            }
            let lenient = IndicesOptions(ignoreUnavailable: true)
            #expect(
                try store.search("missing,logs-a", SearchRequest(), options: lenient).total == 1
            )
        }
    }
}
