import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// `_flush`, `_forcemerge` and `_cat/segments` as Elasticsearch answers them, with its errors for bad parameters.
@Suite(.mayBlock)
struct ForceMergeTests {
    func segments(_ api: ElasticsearchAPI, _ index: String = "logs") throws -> [JSON] {
        api.handle(try request(.get, "/_cat/segments/\(index)?format=json")).json?.arrayValue ?? []
    }

    @Test func flushedSegmentsMergeOnRequestAndDeletedDocumentsGoAway() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            for batch in 0..<4 {
                var body = ""
                for n in 0..<25 {
                    body += #"{"index":{"_index":"logs","_id":"\#((batch * 25 + n) % 40)"}}"# + "\n"
                    body += #"{"batch":\#(batch),"n":\#(n)}"# + "\n"
                }
                #expect(api.handle(try request(.post, "/_bulk", body)).json?["errors"] == false)
                let flushed = api.handle(try request(.post, "/logs/_flush"))
                #expect(flushed.status == 200)
                #expect(flushed.json?["_shards"]?["successful"] == 1)
            }
            let before = try segments(api)
            #expect(before.count == 4)
            // Every document of the first request was replaced by the next two (ids 0–9, then 10–24): none of the
            // first segment's is live, whether or not the background merge has rewritten it yet.
            #expect(before.first?["docs.count"] == "0")
            #expect(before.compactMap { $0["docs.count"]?.stringValue.flatMap { Int($0) } }.reduce(0, +) == 40)
            #expect(before.first?["index"] == "logs" && before.first?["prirep"] == "p")

            let merged = api.handle(try request(.post, "/logs/_forcemerge?max_num_segments=1"))
            #expect(merged.status == 200)
            #expect(merged.json?["_shards"]?["failed"] == 0)
            let after = try segments(api)
            #expect(after.count == 1)
            #expect(after.first?["docs.count"] == "40")
            #expect(after.first?["docs.deleted"] == "0")
            let indices = api.handle(try request(.get, "/_cat/indices/logs?format=json")).json?[0]
            #expect(indices?["docs.count"] == "40")
            #expect(indices?["docs.deleted"] == "0")
            let count = api.handle(try request(.post, "/logs/_count", #"{"query":{"term":{"batch":3}}}"#))
            #expect(count.json?["count"] == 25)
            // Every index, and nothing left to merge: still a success.
            #expect(api.handle(try request(.post, "/_forcemerge?only_expunge_deletes=true")).status == 200)
            #expect(api.handle(try request(.post, "/_forcemerge")).status == 200)
        }
    }

    @Test func badParametersAreRefusedAsElasticsearchRefusesThem() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            #expect(api.handle(try request(.put, "/logs")).status == 200)
            let both = api.handle(try request(.post, "/logs/_forcemerge?max_num_segments=1&only_expunge_deletes=true"))
            #expect(both.status == 400)
            #expect(both.json?["error"]?["type"] == "action_request_validation_exception")
            for target in [
                "/logs/_forcemerge?max_num_segments=0", "/logs/_forcemerge?max_num_segments=many",
                "/logs/_forcemerge?wait_for_completion=false", "/logs/_forcemerge?flush=maybe",
                "/logs/_forcemerge?max_segments=1",
            ] {
                let refused = api.handle(try request(.post, target))
                #expect(refused.status == 400, "\(target)")
                #expect(refused.json?["error"]?["type"] == "illegal_argument_exception", "\(target)")
            }
            #expect(api.handle(try request(.post, "/missing/_forcemerge")).status == 404)
            #expect(api.handle(try request(.get, "/logs/_forcemerge")).status == 405)
        }
    }
}
