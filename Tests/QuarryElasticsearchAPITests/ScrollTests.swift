import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// Scroll as Elasticsearch answers it: every matching document once, in the search's order, across indices; what
/// was written after the scroll opened unseen; Elasticsearch's validation errors and its 404 for a scroll that is
/// gone.
@Suite(.mayBlock)
struct ScrollTests {
    /// Scrolls to the end; returns the hits' ids and sort values, and the scroll id.
    func drain(_ api: ElasticsearchAPI, _ first: ESResponse) throws -> (ids: [String], sorts: [JSON], id: String) {
        var page = first
        var ids: [String] = []
        var sorts: [JSON] = []
        let id = page.json?["_scroll_id"]?.stringValue ?? ""
        while let hits = page.json?["hits"]?["hits"]?.arrayValue, !hits.isEmpty {
            ids += hits.compactMap { $0["_id"]?.stringValue }
            sorts += hits.compactMap { $0["sort"] }
            #expect(page.json?["_scroll_id"]?.stringValue == id, "the id stays the same from page to page")
            page = api.handle(try request(.post, "/_search/scroll", #"{"scroll": "1m", "scroll_id": "\#(id)"}"#))
            #expect(page.status == 200, "\(page.json ?? .null)")
        }
        return (ids, sorts, id)
    }

    @Test func everyDocumentOnceInOrderAndNothingWrittenLater() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            var expected: [String: Int] = [:]
            for (index, count) in [("logs-a", 1_300), ("logs-b", 700)] {
                var bulk = ""
                for n in 0..<count {
                    let id = "\(index)-\(n)"
                    // Many equal timestamps: the order between them is the index, then the document.
                    let minute = (n * 7) % 50
                    bulk += #"{"index":{"_index":"\#(index)","_id":"\#(id)"}}"# + "\n"
                    bulk += #"{"@timestamp":"2026-12-01T10:\#(String(format: "%02d", minute)):00Z","n":\#(n)}"# + "\n"
                    if n % 3 != 0 { expected[id] = minute }
                }
                #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)
            }
            let search =
                #"{"size": 128, "sort": [{"@timestamp": "asc"}], "query": {"bool": {"must_not": {"terms": {"n": [\#((0..<1_300).filter { $0 % 3 == 0 }.map(String.init).joined(separator: ","))]}}}}}"#
            let first = api.handle(try request(.post, "/logs-*/_search?scroll=1m", search))
            #expect(first.status == 200, "\(first.json ?? .null)")
            #expect(first.json?["hits"]?["total"]?["value"]?.intValue == Int64(expected.count))
            // Written after the scroll opened: not seen.
            #expect(
                api.handle(
                    try request(.put, "/logs-a/_doc/late?refresh=true", #"{"@timestamp":"2026-12-01T10:00:00Z","n":1}"#)
                ).status == 201
            )
            let (ids, sorts, id) = try drain(api, first)
            #expect(ids.count == expected.count)
            #expect(Set(ids) == Set(expected.keys))
            #expect(!ids.contains("late"))
            let times = sorts.compactMap { $0[0]?.intValue }
            #expect(times == times.sorted(), "the pages keep the sort")

            // Cleared: gone, with Elasticsearch's 404; clearing again frees nothing (404 too).
            let cleared = api.handle(try request(.delete, "/_search/scroll", #"{"scroll_id": ["\#(id)"]}"#))
            #expect(cleared.status == 200)
            #expect(cleared.json == ["succeeded": true, "num_freed": 1])
            let gone = api.handle(try request(.post, "/_search/scroll", #"{"scroll": "1m", "scroll_id": "\#(id)"}"#))
            #expect(gone.status == 404)
            #expect(gone.json?["error"]?["root_cause"]?[0]?["type"] == "search_context_missing_exception")
            let again = api.handle(try request(.delete, "/_search/scroll/\(id)"))
            #expect(again.status == 404)
            #expect(again.json?["num_freed"] == 0)

            // Helpers sort by _doc; _all clears every open scroll.
            let byDoc = api.handle(try request(.get, "/logs-*/_search?scroll=30s&size=500&sort=_doc"))
            let (docIDs, _, _) = try drain(api, byDoc)
            #expect(docIDs.count == 2_001 && Set(docIDs).count == 2_001)
            _ = api.handle(try request(.get, "/logs-*/_search?scroll=30s&size=10"))
            let all = api.handle(try request(.delete, "/_search/scroll/_all"))
            #expect(all.json?["num_freed"] == 2)
        }
    }

    @Test func refusedAsElasticsearchRefusesThem() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            #expect(api.handle(try request(.put, "/logs")).status == 200)
            for (target, body, status, reason) in [
                (
                    "/logs/_search?scroll=1m&from=5", "", 400,
                    "Validation Failed: 1: using [from] is not allowed in a scroll context;"
                ),
                (
                    "/logs/_search?scroll=1m", #"{"size": 0}"#, 400,
                    "Validation Failed: 1: [size] cannot be [0] in a scroll context;"
                ),
                (
                    "/logs/_search?scroll=1m&size=10001", "", 400,
                    "Batch size is too large, size must be less than or equal to: [10000] but was [10001]. Scroll batch "
                        + "sizes cost as much memory as result windows so they are controlled by the "
                        + "[index.max_result_window] index level setting."
                ),
                (
                    "/logs/_search?scroll=2d", "", 400,
                    "Keep alive for request (2d) is too large. It must be less than (1d). This limit can be set by "
                        + "changing the [search.max_keep_alive] cluster level setting."
                ),
                (
                    "/logs/_search?scroll=soon", "", 400,
                    "failed to parse setting [scroll] with value [soon] as a time value: unit is missing or unrecognized"
                ),
                ("/_search/scroll", #"{"scroll": "1m"}"#, 400, "Validation Failed: 1: scrollId is missing;"),
                ("/_search/scroll", #"{"scroll_id": "not base64!"}"#, 400, "Cannot parse scroll id"),
            ] {
                let response = api.handle(try request(body.isEmpty ? .get : .post, target, body))
                #expect(response.status == status, "\(target) \(body): \(response.json ?? .null)")
                #expect(response.json?["error"]?["reason"]?.stringValue == reason, "\(target) \(body)")
            }
        }
    }
}

/// Point in time as Elasticsearch answers it (and OpenSearch's paths for it): `search_after` pages with the implicit
/// `_shard_doc` tiebreaker see every document once across indices, nothing written after the point in time opened,
/// and Elasticsearch's errors.
@Suite(.mayBlock)
struct PointInTimeTests {
    @Test func searchAfterPagesThroughAFrozenViewOfSeveralIndices() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            for (index, count) in [("dns-1", 900), ("dns-2", 600)] {
                var bulk = ""
                for n in 0..<count {
                    bulk += #"{"index":{"_index":"\#(index)","_id":"\#(index)-\#(n)"}}"# + "\n"
                    bulk += #"{"@timestamp":"2026-12-01T10:\#(String(format: "%02d", n % 60)):00Z","n":\#(n)}"# + "\n"
                }
                #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)
            }
            let opened = api.handle(try request(.post, "/dns-*/_pit?keep_alive=1m"))
            #expect(opened.status == 200, "\(opened.json ?? .null)")
            #expect(opened.json?["_shards"]?["total"] == 2)
            let id = try #require(opened.json?["id"]?.stringValue)
            #expect(
                api.handle(
                    try request(.put, "/dns-1/_doc/late?refresh=true", #"{"@timestamp":"2026-12-01T10:00:00Z"}"#)
                )
                .status == 201
            )
            var seen: [String] = []
            var after: JSON?
            var times: [Int64] = []
            while true {
                var body: JSONObject = [
                    "size": 250, "sort": [["@timestamp": "asc"]], "pit": ["id": .string(id), "keep_alive": "1m"],
                ]
                if let after { body["search_after"] = after }
                let page = api.handle(try request(.post, "/_search", JSON.object(body).serialized()))
                #expect(page.status == 200, "\(page.json ?? .null)")
                #expect(page.json?["pit_id"]?.stringValue == id)
                let hits = page.json?["hits"]?["hits"]?.arrayValue ?? []
                if hits.isEmpty { break }
                seen += hits.compactMap { $0["_id"]?.stringValue }
                times += hits.compactMap { $0["sort"]?[0]?.intValue }
                // The implicit tiebreaker is the last sort value.
                #expect(hits.allSatisfy { $0["sort"]?.arrayValue?.count == 2 })
                after = hits.last?["sort"]
            }
            #expect(seen.count == 1_500 && Set(seen).count == 1_500 && !seen.contains("late"))
            #expect(times == times.sorted())

            // Errors: an index beside a point in time, _shard_doc without one, a closed one.
            let withIndex = api.handle(try request(.post, "/dns-1/_search", #"{"pit": {"id": "\#(id)"}}"#))
            #expect(withIndex.status == 400)
            #expect(
                withIndex.json?["error"]?["reason"]
                    == "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;"
            )
            let shardDoc = api.handle(try request(.post, "/dns-1/_search", #"{"sort": ["_shard_doc"]}"#))
            #expect(shardDoc.status == 400)
            #expect(
                shardDoc.json?["error"]?["reason"] == "[_shard_doc] sort field cannot be used without [point in time]"
            )
            let missingKeepAlive = api.handle(try request(.post, "/dns-1/_pit"))
            #expect(missingKeepAlive.status == 400)
            let closed = api.handle(try request(.delete, "/_pit", #"{"id": "\#(id)"}"#))
            #expect(closed.json == ["succeeded": true, "num_freed": 1])
            let gone = api.handle(try request(.post, "/_search", #"{"pit": {"id": "\#(id)"}}"#))
            #expect(gone.status == 404)
            #expect(gone.json?["error"]?["root_cause"]?[0]?["type"] == "search_context_missing_exception")
            let again = api.handle(try request(.delete, "/_pit", #"{"id": "\#(id)"}"#))
            #expect(again.status == 404, "\(again.json ?? .null)")

            // OpenSearch's paths.
            let openSearch = api.handle(try request(.post, "/dns-2/_search/point_in_time?keep_alive=5m"))
            let pit = try #require(openSearch.json?["pit_id"]?.stringValue)
            #expect(openSearch.json?["creation_time"]?.intValue != nil)
            let counted = api.handle(
                try request(.post, "/_search", #"{"size": 0, "pit": {"id": "\#(pit)"}, "track_total_hits": true}"#)
            )
            #expect(counted.json?["hits"]?["total"]?["value"] == 600)
            let deleted = api.handle(try request(.delete, "/_search/point_in_time", #"{"pit_id": ["\#(pit)"]}"#))
            #expect(deleted.json == ["pits": [["pit_id": .string(pit), "successful": true]]])
        }
    }
}
