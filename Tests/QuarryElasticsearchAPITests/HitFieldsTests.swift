import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// What a hit carries besides `_source`: `fields`, `docvalue_fields`, `stored_fields`, `explain`; the index-level
/// limits Elasticsearch checks per shard; and the `track_total_hits` / `rest_total_hits_as_int` combinations.
@Suite(.mayBlock)
struct HitFieldsTests {
    /// An API over a fresh store in `directory`, with `body` as the mapping of index `docs` and `documents` in it.
    private func api(_ directory: URL, mapping: String, documents: [String]) throws -> (EmbeddedStore, ElasticsearchAPI)
    {
        let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
        let api = ElasticsearchAPI(store: store)
        let created = api.handle(try request(.put, "/docs", mapping))
        #expect(created.status == 200, "\(created.json ?? .null)")
        for (number, document) in documents.enumerated() {
            let indexed = api.handle(try request(.put, "/docs/_doc/\(number + 1)", document))
            #expect(indexed.status == 201, "\(indexed.json ?? .null)")
        }
        return (store, api)
    }

    private func search(_ api: ElasticsearchAPI, _ body: String, _ target: String = "/docs/_search") throws -> JSON {
        let response = api.handle(try request(.post, target, body))
        return response.json ?? .null
    }

    /// Elasticsearch's own example ("Retrieve selected fields"), then what the mapping does to values: multi-fields,
    /// normalizers, coercion, floats, null_value, malformed values, constant keywords, unmapped paths.
    @Test func fieldsReadTheSourceThroughTheMapping() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping: #"""
                    {"mappings":{"properties":{
                      "user":{"properties":{"id":{"type":"keyword"}}},
                      "@timestamp":{"type":"date"},
                      "http":{"properties":{"response":{"properties":{"bytes":{"type":"long"},"status_code":{"type":"long"}}}}},
                      "tag":{"type":"keyword","normalizer":"lowercase"},
                      "ratio":{"type":"float"},
                      "count":{"type":"integer"},
                      "seen":{"type":"boolean"},
                      "address":{"type":"ip"},
                      "level":{"type":"keyword","null_value":"none"},
                      "port":{"type":"integer","ignore_malformed":true},
                      "message":{"type":"text","fields":{"raw":{"type":"keyword"}}},
                      "kind":{"type":"constant_keyword","value":"dns"},
                      "extra":{"type":"object","enabled":false}
                    }}}
                    """#,
                documents: [
                    #"""
                    {"user.id":"kimchy","@timestamp":"2099-11-15T14:12:12","http":{"response":{"bytes":1070000,"status_code":200}},
                     "tag":["Evil","CDN"],"ratio":1.1,"count":"42","seen":"true","address":"2001:DB8::1","level":null,
                     "port":"http","message":"Mixed Case Words","extra":{"note":"kept as is"}}
                    """#
                ]
            )
            defer { try? store.close() }
            let docs = try search(
                api,
                #"""
                {"query":{"match":{"user.id":"kimchy"}},"_source":false,
                 "fields":["user.id","http.response.*",{"field":"@timestamp","format":"epoch_millis"}]}
                """#
            )
            let hit = try #require(docs["hits"]?["hits"]?[0])
            #expect(hit["_source"] == nil)
            #expect(
                hit["fields"] == [
                    "user.id": ["kimchy"], "http.response.bytes": [1_070_000], "http.response.status_code": [200],
                    "@timestamp": ["4098435132000"],
                ]
            )
            let typed = try search(
                api,
                #"""
                {"fields":["tag","ratio","count","seen","address","level","port","message*","kind","extra*","user",
                           {"field":"extra.*","include_unmapped":true},"@timestamp"]}
                """#
            )
            let fields = try #require(typed["hits"]?["hits"]?[0]?["fields"])
            #expect(fields["tag"] == ["evil", "cdn"])
            #expect(fields["ratio"] == [1.1])
            #expect(fields["count"] == [42])
            #expect(fields["seen"] == [true])
            #expect(fields["address"] == ["2001:db8::1"])
            #expect(fields["level"] == ["none"])
            // A value the field could not index is not among its values; objects are never listed.
            #expect(fields["port"] == nil)
            #expect(fields["user"] == nil)
            #expect(fields["message"] == ["Mixed Case Words"])
            #expect(fields["message.raw"] == ["Mixed Case Words"])
            #expect(fields["kind"] == ["dns"])
            #expect(fields["extra.note"] == ["kept as is"])
            #expect(fields["@timestamp"] == ["2099-11-15T14:12:12.000Z"])
            // `_source` is still there: `fields` does not turn it off.
            #expect(typed["hits"]?["hits"]?[0]?["_source"]?["tag"] == ["Evil", "CDN"])
            let badFormat = api.handle(
                try request(.post, "/docs/_search", #"{"fields":[{"field":"@timestamp","format":"yyyy-QQ-bogus"}]}"#)
            )
            #expect(badFormat.status == 400)
        }
    }

    @Test func docValueFieldsAreSortedTermsInTheRequestedFormatWithinTheIndexLimit() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping: #"""
                    {"settings":{"index":{"max_docvalue_fields_search":3}},
                     "mappings":{"properties":{"name":{"type":"keyword"},"size":{"type":"double"},"at":{"type":"date"},
                       "body":{"type":"text"},"n":{"type":"long"},"m":{"type":"long"}}}}
                    """#,
                documents: [#"{"name":["b","a","b"],"size":[2.5,1.25],"at":"2024-05-01T10:00:00Z","body":"x","n":3}"#]
            )
            defer { try? store.close() }
            let docs = try search(
                api,
                #"""
                {"docvalue_fields":["name",{"field":"size","format":"0.00"},{"field":"at","format":"yyyy-MM-dd"},"b*"]}
                """#
            )
            let fields = try #require(docs["hits"]?["hits"]?[0]?["fields"])
            #expect(fields == ["name": ["a", "b"], "size": ["1.25", "2.50"], "at": ["2024-05-01"]])
            let plain = try search(api, #"{"docvalue_fields":["at","n","m"]}"#)
            #expect(plain["hits"]?["hits"]?[0]?["fields"] == ["at": ["2024-05-01T10:00:00.000Z"], "n": [3]])
            // The URL parameter says the same.
            let url = api.handle(try request(.get, "/docs/_search?docvalue_fields=name,n"))
            #expect(url.json?["hits"]?["hits"]?[0]?["fields"] == ["name": ["a", "b"], "n": [3]])

            let text = api.handle(try request(.post, "/docs/_search", #"{"docvalue_fields":["body"]}"#))
            #expect(text.status == 400)
            #expect(
                text.json?["error"]?["root_cause"]?[0]?["reason"]?.stringValue?.hasPrefix("Text fields are not") == true
            )
            let tooMany = api.handle(try request(.post, "/docs/_search", #"{"docvalue_fields":["*"]}"#))
            #expect(tooMany.status == 400)
            #expect(
                tooMany.json?["error"]?["root_cause"]?[0]?["reason"]?.stringValue
                    == "Trying to retrieve too many docvalue_fields. Must be less than or equal to: [3] but was [5]. "
                    + "This limit can be set by changing the [index.max_docvalue_fields_search] index level setting."
            )
        }
    }

    @Test func storedFieldsDecideWhetherHitsCarryIdsSourcesAndStoredValues() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping:
                    #"{"mappings":{"properties":{"title":{"type":"keyword","store":true},"body":{"type":"text"}}}}"#,
                documents: [#"{"title":"Hunt","body":"which hosts asked"}"#]
            )
            defer { try? store.close() }
            let none = try search(api, #"{"stored_fields":"_none_"}"#)
            let bare = try #require(none["hits"]?["hits"]?[0])
            #expect(bare["_id"] == nil && bare["_source"] == nil && bare["_index"] == "docs")
            let named = try search(api, #"{"stored_fields":["title","body"]}"#)
            #expect(named["hits"]?["hits"]?[0]?["_id"] == "1")
            #expect(named["hits"]?["hits"]?[0]?["_source"] == nil)
            // Only fields the mapping stores have stored values.
            #expect(named["hits"]?["hits"]?[0]?["fields"] == ["title": ["Hunt"]])
            let withSource = try search(api, #"{"stored_fields":["title"],"_source":true}"#)
            #expect(withSource["hits"]?["hits"]?[0]?["_source"] == ["title": "Hunt", "body": "which hosts asked"])
            let url = api.handle(try request(.get, "/docs/_search?stored_fields=_none_"))
            #expect(url.json?["hits"]?["hits"]?[0]?["_id"] == nil)

            for (body, problem) in [
                (
                    #"{"stored_fields":"_none_","_source":true}"#,
                    "[stored_fields] cannot be disabled if [_source] is requested"
                ),
                (
                    #"{"stored_fields":"_none_","fields":["title"]}"#,
                    "[stored_fields] cannot be disabled when using the [fields] option"
                ),
            ] {
                let refused = api.handle(try request(.post, "/docs/_search", body))
                #expect(refused.status == 400)
                #expect(refused.json?["error"]?["reason"] == .string("Validation Failed: 1: \(problem);"))
            }
        }
    }

    @Test func explainSaysTheScoreShardAndNode() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping: #"{"mappings":{"properties":{"body":{"type":"text"}}}}"#,
                documents: [#"{"body":"dns tunnel"}"#, #"{"body":"dns"}"#]
            )
            defer { try? store.close() }
            let docs = try search(api, #"{"explain":true,"query":{"match":{"body":"tunnel"}}}"#)
            let hit = try #require(docs["hits"]?["hits"]?[0])
            #expect(hit["_shard"] == "[docs][0]")
            #expect(hit["_node"] != nil)
            #expect(hit["_explanation"]?["value"] == hit["_score"])
            #expect(hit["_explanation"]?["details"] == [])
            // Without `explain`, none of it (ElastAlert's results showed a stray `_shard` once).
            let plain = try #require(try search(api, #"{"query":{"match":{"body":"tunnel"}}}"#)["hits"]?["hits"]?[0])
            #expect(plain.objectValue?.map(\.key) == ["_index", "_id", "_score", "_source"])
            let url = api.handle(try request(.get, "/docs/_search?explain=true&q=body:dns"))
            #expect(url.json?["hits"]?["hits"]?[0]?["_explanation"] != nil)
        }
    }

    /// The query rescorer: the best hits of the window scored again (weights, score modes), the rest left behind
    /// them; its limits and refusals as Elasticsearch's.
    @Test func rescoreReordersTheWindow() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping:
                    #"{"settings":{"index":{"max_rescore_window":20}},"mappings":{"properties":{"body":{"type":"text"},"tag":{"type":"keyword"}}}}"#,
                documents: [
                    #"{"body":"dns dns dns tunnel","tag":"a"}"#, #"{"body":"dns tunnel","tag":"b"}"#,
                    #"{"body":"dns","tag":"c"}"#, #"{"body":"dns query","tag":"b"}"#,
                ]
            )
            defer { try? store.close() }
            let plain = try search(api, #"{"query":{"match":{"body":"dns"}}}"#)
            let firstScores = Dictionary(
                uniqueKeysWithValues: (plain["hits"]?["hits"]?.arrayValue ?? []).map {
                    ($0["_id"]?.stringValue ?? "", $0["_score"]?.doubleValue ?? 0)
                }
            )
            for mode in ["total", "multiply", "avg", "max", "min"] {
                let rescored = try search(
                    api,
                    #"{"query":{"match":{"body":"dns"}},"rescore":{"window_size":3,"query":{"rescore_query":{"constant_score":{"filter":{"term":{"tag":"b"}},"boost":10}},"query_weight":0.5,"rescore_query_weight":2,"score_mode":"\#(mode)"}}}"#
                )
                let hits = rescored["hits"]?["hits"]?.arrayValue ?? []
                #expect(hits.count == 4)
                // The first three by the first score were rescored; the fourth kept its score.
                let window = Set(
                    firstScores.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3).map(
                        \.key
                    )
                )
                for hit in hits {
                    let id = hit["_id"]?.stringValue ?? ""
                    let first = firstScores[id] ?? 0
                    let isB = ["2", "4"].contains(id)
                    let expected: Double
                    if !window.contains(id) {
                        expected = first
                    } else if !isB {
                        expected = first * 0.5
                    } else {
                        let (a, b) = (first * 0.5, 20.0)
                        expected = [
                            "total": a + b, "multiply": a * b, "avg": (a + b) / 2, "max": max(a, b), "min": min(a, b),
                        ][mode]!
                    }
                    #expect(abs((hit["_score"]?.doubleValue ?? -1) - expected) < 1e-3, "\(mode) \(id)")
                }
                let windowScores = hits.filter { window.contains($0["_id"]?.stringValue ?? "") }.compactMap {
                    $0["_score"]?.doubleValue
                }
                #expect(windowScores == windowScores.sorted(by: >), "\(mode)")
            }
            let tooLarge = api.handle(
                try request(
                    .post,
                    "/docs/_search",
                    #"{"rescore":{"window_size":21,"query":{"rescore_query":{"match_all":{}}}}}"#
                )
            )
            #expect(tooLarge.status == 400)
            #expect(
                tooLarge.json?["error"]?["root_cause"]?[0]?["reason"]?.stringValue?.hasPrefix(
                    "Rescore window [21] is too large"
                ) == true
            )
            let sorted = api.handle(
                try request(
                    .post,
                    "/docs/_search",
                    #"{"sort":["tag"],"rescore":{"query":{"rescore_query":{"match_all":{}}}}}"#
                )
            )
            #expect(sorted.json?["error"]?["reason"] == "Cannot use [sort] option in conjunction with [rescore].")
        }
    }

    /// Scripts (Quarry runs none) and every index-level limit, with Elasticsearch's wording.
    @Test func scriptsAndIndexLimitsAreRefusedAsElasticsearchRefusesThem() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping: #"""
                    {"settings":{"index":{"max_script_fields":2,"max_terms_count":3,"max_inner_result_window":5,
                                          "max_result_window":50}},
                     "mappings":{"properties":{"name":{"type":"keyword"}}}}
                    """#,
                documents: [#"{"name":"a"}"#]
            )
            defer { try? store.close() }
            func rootCause(_ body: String) throws -> String? {
                let response = api.handle(try request(.post, "/docs/_search", body))
                #expect(response.status == 400, "\(body)")
                return response.json?["error"]?["root_cause"]?[0]?["reason"]?.stringValue
            }
            let script = #"{"script":{"source":"1"}}"#
            #expect(try rootCause(#"{"script_fields":{"a":\#(script)}}"#) == "cannot execute [inline] scripts")
            #expect(
                try rootCause(#"{"script_fields":{"a":\#(script),"b":\#(script),"c":\#(script)}}"#)
                    == "Trying to retrieve too many script_fields. Must be less than or equal to: [2] but was [3]. "
                    + "This limit can be set by changing the [index.max_script_fields] index level setting."
            )
            #expect(
                try rootCause(#"{"runtime_mappings":{"day":{"type":"keyword","script":"emit('x')"}}}"#)
                    == "cannot execute [inline] scripts"
            )
            #expect(
                try rootCause(#"{"query":{"terms":{"name":["a","b","c","d"]}}}"#)
                    == "The number of terms [4] used in the Terms Query request has exceeded the allowed maximum of "
                    + "[3]. This maximum can be set by changing the [index.max_terms_count] index level setting."
            )
            #expect(
                try rootCause(#"{"size":0,"aggs":{"top":{"top_hits":{"size":6}}}}"#)
                    == "Top hits result window is too large, the top hits aggregator [top]'s from + size must be less "
                    + "than or equal to: [5] but was [6]. This limit can be set by changing the "
                    + "[index.max_inner_result_window] index level setting."
            )
            #expect(try rootCause(#"{"from":45,"size":6}"#)?.contains("[50] but was [51]") == true)
            let badSetting = api.handle(
                try request(.put, "/other", #"{"settings":{"index":{"max_terms_count":"many"}}}"#)
            )
            #expect(badSetting.status == 400)
            #expect(
                badSetting.json?["error"]?["reason"]
                    == "Failed to parse value [many] for setting [index.max_terms_count]"
            )
        }
    }

    /// `track_total_hits` in the body or URL against `rest_total_hits_as_int`, as Elasticsearch answers each pair.
    @Test func totalHitsTrackingCombinations() async throws {
        try await withTemporaryDirectory { directory in
            let (store, api) = try api(
                directory,
                mapping: #"{"mappings":{"properties":{"n":{"type":"long"}}}}"#,
                documents: (0..<12).map { #"{"n":\#($0)}"# }
            )
            defer { try? store.close() }
            let cases: [(target: String, body: String, total: JSON?)] = [
                ("/docs/_search", "{}", ["value": 12, "relation": "eq"]),
                ("/docs/_search", #"{"track_total_hits":5}"#, ["value": 5, "relation": "gte"]),
                ("/docs/_search", #"{"track_total_hits":12}"#, ["value": 12, "relation": "eq"]),
                ("/docs/_search", #"{"track_total_hits":false}"#, nil),
                ("/docs/_search", #"{"track_total_hits":-1}"#, nil),
                ("/docs/_search?track_total_hits=3", "{}", ["value": 3, "relation": "gte"]),
                ("/docs/_search?track_total_hits=false", "{}", nil),
                ("/docs/_search?rest_total_hits_as_int=true", "{}", 12),
                ("/docs/_search?rest_total_hits_as_int=true", #"{"track_total_hits":true}"#, 12),
                ("/docs/_search?rest_total_hits_as_int=true", #"{"track_total_hits":false}"#, -1),
                ("/docs/_search?rest_total_hits_as_int=true&track_total_hits=false", "{}", -1),
            ]
            for (target, body, total) in cases {
                let response = api.handle(try request(.post, target, body))
                #expect(response.status == 200, "\(target) \(body)")
                #expect(response.json?["hits"]?["total"] == total, "\(target) \(body)")
            }
            let inexact = api.handle(
                try request(.post, "/docs/_search?rest_total_hits_as_int=true", #"{"track_total_hits":100}"#)
            )
            #expect(inexact.status == 400)
            #expect(
                inexact.json?["error"]?["reason"]
                    == "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got 100"
            )
            let scroll = api.handle(try request(.post, "/docs/_search?scroll=1m", #"{"track_total_hits":false}"#))
            #expect(scroll.status == 400)
            #expect(
                scroll.json?["error"]?["reason"]
                    == "Validation Failed: 1: disabling [track_total_hits] is not allowed in a scroll context;"
            )
        }
    }

    /// Two independent readings of the same values: `docvalue_fields` from the columns the index keeps, `fields`
    /// from the source parsed again through the mapping. Over generated documents they must agree (a keyword's
    /// distinct values, numbers and addresses sorted).
    @Test func docValuesAndSourceFieldsAgreeOverGeneratedDocuments() async throws {
        try await withTemporaryDirectory { directory in
            var generator = SystemRandomNumberGenerator()
            let names = ["a.example", "B.example", "c.EXAMPLE", "d"]
            var documents: [String] = []
            for _ in 0..<300 {
                var fields: [String] = []
                let nameCount = Int.random(in: 0...3, using: &generator)
                if nameCount > 0 {
                    let picked = (0..<nameCount).map { _ in "\"\(names.randomElement(using: &generator)!)\"" }
                    fields.append(#""name":[\#(picked.joined(separator: ","))]"#)
                }
                if Bool.random(using: &generator) {
                    let numbers = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                        String(Int.random(in: -5...5, using: &generator))
                    }
                    fields.append(#""n":[\#(numbers.joined(separator: ","))]"#)
                }
                if Bool.random(using: &generator) {
                    fields.append(
                        #""ip":"10.0.\#(Int.random(in: 0...3, using: &generator)).\#(Int.random(in: 0...255, using: &generator))""#
                    )
                }
                fields.append(#""at":\#(Int64.random(in: 0...4_000_000_000_000, using: &generator))"#)
                documents.append("{\(fields.joined(separator: ","))}")
            }
            let (store, api) = try api(
                directory,
                mapping: #"""
                    {"mappings":{"properties":{"name":{"type":"keyword","normalizer":"lowercase"},"n":{"type":"long"},
                      "ip":{"type":"ip"},"at":{"type":"date"}}}}
                    """#,
                documents: documents
            )
            defer { try? store.close() }
            let fromSource = try search(api, #"{"size":300,"_source":false,"fields":["*"]}"#)
            let fromColumns = try search(api, #"{"size":300,"_source":false,"docvalue_fields":["name","n","ip","at"]}"#)
            let hits = try #require(fromSource["hits"]?["hits"]?.arrayValue)
            let columnHits = try #require(fromColumns["hits"]?["hits"]?.arrayValue)
            #expect(hits.count == 300 && columnHits.count == 300)
            for (source, columns) in zip(hits, columnHits) {
                #expect(source["_id"] == columns["_id"])
                for field in ["name", "n", "ip", "at"] {
                    let read = source["fields"]?[field]?.arrayValue ?? []
                    let kept = columns["fields"]?[field]?.arrayValue ?? []
                    let expected: [JSON]
                    switch field {
                    case "name": expected = Array(Set(read.compactMap(\.stringValue))).sorted().map(JSON.string)
                    case "n": expected = read.compactMap(\.intValue).sorted().map(JSON.int)
                    case "ip":
                        expected = read.compactMap { $0.stringValue.flatMap(IPAddress.init) }.sorted().map {
                            .string($0.description)
                        }
                    default: expected = read
                    }
                    #expect(kept == expected, "\(field) of \(source["_id"] ?? .null)")
                }
            }
        }
    }
}
