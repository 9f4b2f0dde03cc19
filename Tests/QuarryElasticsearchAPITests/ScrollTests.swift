import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// Scroll as Elasticsearch answers it: every matching document once, in the search's order, across indices; what
/// was written after the scroll opened unseen; Elasticsearch's validation errors and its 404 for a scroll that is
/// gone.
struct ScrollTests {
    func request(_ method: ESRequest.Method, _ target: String, _ body: String = "") throws -> ESRequest {
        try ESRequest(method: method, target: target, body: Array(body.utf8))
    }

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
