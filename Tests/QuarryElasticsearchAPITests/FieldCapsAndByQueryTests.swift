import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// `_field_caps` merged over indices as Elasticsearch merges it, and `_delete_by_query` / `_update_by_query`
/// without scripts, in batches, with their counts and errors.
@Suite(.mayBlock)
struct FieldCapsAndByQueryTests {
    @Test func fieldCapabilitiesMergeTypesAndSayWhichIndicesDiffer() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            let mappings = [
                (
                    "logs-a",
                    #"{"mappings":{"properties":{"host":{"properties":{"ip":{"type":"ip"},"name":{"type":"keyword"}}},"message":{"type":"text","fields":{"raw":{"type":"keyword"}}},"port":{"type":"long"}}}}"#
                ),
                (
                    "logs-b",
                    #"{"mappings":{"properties":{"host":{"properties":{"ip":{"type":"keyword"},"name":{"type":"keyword","index":false}}},"port":{"type":"long"}}}}"#
                ),
            ]
            for (index, body) in mappings { #expect(api.handle(try request(.put, "/\(index)", body)).status == 200) }
            let caps = api.handle(try request(.get, "/logs-*/_field_caps?fields=host.*,message*,port"))
            #expect(caps.status == 200, "\(caps.json ?? .null)")
            let fields = try #require(caps.json?["fields"])
            #expect(caps.json?["indices"] == ["logs-a", "logs-b"])
            #expect(
                fields["port"] == [
                    "long": ["type": "long", "metadata_field": false, "searchable": true, "aggregatable": true]
                ]
            )
            // Two types: one entry each, with its indices.
            #expect(fields["host.ip"]?["ip"]?["indices"] == ["logs-a"])
            #expect(fields["host.ip"]?["keyword"]?["indices"] == ["logs-b"])
            // One type, not searchable everywhere.
            #expect(fields["host.name"]?["keyword"]?["searchable"] == false)
            #expect(fields["host.name"]?["keyword"]?["non_searchable_indices"] == ["logs-b"])
            #expect(fields["message"]?["text"]?["aggregatable"] == false)
            #expect(fields["message.raw"]?["keyword"]?["aggregatable"] == true)
            // Objects, and the indices without the field when asked.
            let unmapped = api.handle(
                try request(.get, "/logs-*/_field_caps?fields=message,host&include_unmapped=true")
            )
            #expect(unmapped.json?["fields"]?["message"]?["unmapped"]?["indices"] == ["logs-b"])
            #expect(unmapped.json?["fields"]?["host"]?["object"]?["searchable"] == false)
            // Metadata fields for `*`; no fields at all is refused.
            let all = api.handle(try request(.get, "/logs-a/_field_caps?fields=*"))
            #expect(all.json?["fields"]?["_id"]?["_id"]?["metadata_field"] == true)
            let none = api.handle(try request(.get, "/logs-a/_field_caps"))
            #expect(none.status == 400)
            #expect(
                none.json?["error"]?["reason"] == "Validation Failed: 1: specified fields can't be null or empty;"
            )
        }
    }

    @Test func byQueryDeletesAndRewritesTheMatchesInBatches() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            // `name` is not mapped at first (dynamic: false): a mapping added later reaches the documents only when
            // they are written again.
            #expect(
                api.handle(
                    try request(
                        .put,
                        "/dns",
                        #"{"mappings": {"dynamic": false, "properties": {"n": {"type": "long"}}}}"#
                    )
                ).status == 200
            )
            var bulk = ""
            for n in 0..<2_500 {
                bulk += #"{"index":{"_index":"dns","_id":"\#(n)"}}"# + "\n"
                bulk += #"{"n":\#(n),"name":"host-\#(n % 10)"}"# + "\n"
            }
            #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)

            let deleted = api.handle(
                try request(
                    .post,
                    "/dns/_delete_by_query?refresh=true&scroll_size=300&conflicts=proceed",
                    #"{"query": {"range": {"n": {"lt": 250}}}}"#
                )
            )
            #expect(deleted.status == 200, "\(deleted.json ?? .null)")
            #expect(deleted.json?["deleted"] == 250)
            #expect(deleted.json?["total"] == 250)
            #expect(deleted.json?["batches"] == 1)
            #expect(deleted.json?["failures"] == [])
            let count = { (query: String) throws -> JSON? in
                api.handle(try request(.post, "/dns/_count", query)).json?["count"]
            }
            #expect(try count(#"{"query": {"range": {"n": {"lt": 250}}}}"#) == 0)
            #expect(try count("") == 2_250)

            // max_docs stops part way; batches follow scroll_size.
            let some = api.handle(
                try request(
                    .post,
                    "/dns/_delete_by_query?refresh=true&scroll_size=100&max_docs=450",
                    #"{"query": {"range": {"n": {"gte": 1000}}}}"#
                )
            )
            #expect(some.json?["deleted"] == 450)
            #expect(some.json?["batches"] == 5)
            #expect(try count("") == 1_800)

            // Update by query without a script writes each document again: a field mapped since becomes searchable.
            #expect(
                api.handle(
                    try request(
                        .put,
                        "/dns/_mapping",
                        #"{"properties": {"name": {"type": "keyword"}}}"#
                    )
                ).status == 200
            )
            #expect(try count(#"{"query": {"term": {"name": "host-3"}}}"#) == 0)
            let updated = api.handle(try request(.post, "/dns/_update_by_query?refresh=true&conflicts=proceed"))
            #expect(updated.json?["updated"] == 1_800, "\(updated.json ?? .null)")
            #expect(try count(#"{"query": {"term": {"name": "host-3"}}}"#) == 180)
            #expect(try count("") == 1_800)

            // What Elasticsearch refuses.
            for (target, body, reason) in [
                (
                    "/dns/_delete_by_query?conflicts=maybe", "",
                    #"Validation Failed: 1: conflicts may only be "proceed" or "abort" but was [maybe];"#
                ),
                (
                    "/dns/_update_by_query", #"{"script": {"source": "ctx._source.n++"}}"#,
                    "[script] is not supported by this store: Quarry has no scripting"
                ),
                (
                    "/dns/_delete_by_query?max_docs=0", "",
                    "Validation Failed: 1: maxDocs must be greater than 0 if provided, was [0];"
                ),
            ] {
                let refused = api.handle(try request(.post, target, body))
                #expect(refused.status == 400, "\(target)")
                #expect(refused.json?["error"]?["reason"]?.stringValue == reason, "\(target)")
            }
        }
    }
}
