import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

/// The Elasticsearch REST API over a real socket: headers, error shapes and statuses, and request forms that
/// clients use.
@Suite(.mayBlock)
struct ElasticsearchAPITests {
    struct Reply {
        var status: Int
        var headers: HTTPFields
        var body: [UInt8]
        var json: JSON? { try? JSON.parse(body) }
    }

    func call(
        _ client: any TestClientProtocol,
        _ method: HTTPRequest.Method,
        _ uri: String,
        _ body: String? = nil,
        contentType: String = "application/json"
    ) async throws -> Reply {
        var headers = HTTPFields()
        if body != nil { headers[.contentType] = contentType }
        return try await client.execute(
            uri: uri,
            method: method,
            headers: headers,
            body: body.map { ByteBuffer(string: $0) }
        ) { response in
            Reply(status: Int(response.status.code), headers: response.headers, body: Array(buffer: response.body))
        }
    }

    @Test(.timeLimit(.minutes(8))) func rootAnnouncesElasticsearch() async throws {
        try await withElasticsearchServer { client, _ in
            let reply = try await call(client, .get, "/")
            #expect(reply.status == 200)
            #expect(reply.headers[HTTPField.Name("X-Elastic-Product")!] == "Elasticsearch")
            #expect(reply.json?["version"]?["number"] == "8.17.0")
            #expect(reply.json?["tagline"] == "You Know, for Search")
            let head = try await call(client, .head, "/")
            #expect(head.status == 200 && head.body.isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(8))) func malformedBodiesGetElasticsearchErrors() async throws {
        try await withElasticsearchServer { client, _ in
            let search = try await call(client, .post, "/_search", #"{"query": }"#)
            #expect(search.status == 400)
            #expect(search.json?["error"]?["type"] == "x_content_parse_exception")
            #expect(search.json?["error"]?["root_cause"]?[0]?["type"] == "x_content_parse_exception")
            #expect(search.json?["status"] == 400)

            let document = try await call(client, .put, "/docs/_doc/1", #"{"a": tru}"#)
            #expect(document.status == 400)
            #expect(document.json?["error"]?["type"] == "document_parsing_exception")

            let badName = try await call(client, .put, "/Bad", nil)
            #expect(badName.status == 400)
            #expect(badName.json?["error"]?["type"] == "invalid_index_name_exception")
            #expect(badName.json?["error"]?["reason"] == "Invalid index name [Bad], must be lowercase")

            let missing = try await call(client, .get, "/nope/_search")
            #expect(missing.status == 404)
            #expect(missing.json?["error"]?["type"] == "index_not_found_exception")

            let wrongType = try await call(client, .post, "/_search", #"{"size": "ten"}"#)
            #expect(wrongType.status == 400)

            let noHandler = try await call(client, .get, "/_nothing_here/x/y")
            #expect(noHandler.status == 400)
            let method = try await call(client, .delete, "/_search")
            #expect(method.status == 405)

            let form = try await call(client, .post, "/_search", "{}", contentType: "application/x-www-form-urlencoded")
            #expect(form.status == 406)

            let typo = try await call(client, .get, "/_search?sise=5")
            #expect(typo.status == 400)
            #expect(typo.json?["error"]?["reason"] == "request [/_search] contains unrecognized parameter: [sise]")
        }
    }

    @Test(.timeLimit(.minutes(8))) func bulkReportsItemsAndRejectsMalformedRequests() async throws {
        try await withElasticsearchServer { client, store in
            let body = """
                {"index":{"_index":"b","_id":"1"}}
                {"n":1}
                {"create":{"_index":"b","_id":"1"}}
                {"n":2}
                {"index":{"_index":"b","_id":"2"}}
                {"n": not json}
                {"delete":{"_index":"b","_id":"9"}}
                {"update":{"_index":"b","_id":"1"}}
                {"doc":{"m":3}}

                """
            let reply = try await call(client, .post, "/_bulk?refresh=true", body, contentType: "application/x-ndjson")
            #expect(reply.status == 200)
            let json = try #require(reply.json)
            #expect(json["errors"] == true)
            let items = try #require(json["items"]?.arrayValue)
            #expect(items.count == 5)
            #expect(items[0]["index"]?["status"] == 201)
            #expect(items[0]["index"]?["forced_refresh"] == true)
            #expect(items[1]["create"]?["status"] == 409)
            #expect(items[1]["create"]?["error"]?["type"] == "version_conflict_engine_exception")
            #expect(items[2]["index"]?["error"]?["type"] == "document_parsing_exception")
            #expect(items[3]["delete"]?["result"] == "not_found")
            #expect(items[4]["update"]?["result"] == "updated")
            #expect(try store.count("b", query: .matchAll(boost: 1)) == 1)

            let badAction = try await call(
                client,
                .post,
                "/_bulk",
                "{\"nope\":{}}\n{}\n",
                contentType: "application/x-ndjson"
            )
            #expect(badAction.status == 400)
            #expect(badAction.json?["error"]?["type"] == "illegal_argument_exception")
            let notJSON = try await call(client, .post, "/_bulk", "nonsense\n", contentType: "application/x-ndjson")
            #expect(notJSON.status == 400)
            let unterminated = try await call(client, .post, "/_bulk", #"{"delete":{"_index":"b","_id":"1"}}"#)
            #expect(unterminated.json?["error"]?["reason"] == "The bulk request must be terminated by a newline [\\n]")
            #expect(try store.count("b", query: .matchAll(boost: 1)) == 1, "a refused request writes nothing")
        }
    }

    @Test(.timeLimit(.minutes(8))) func multiGetAndMultiSearchAnswerEachPartOnItsOwn() async throws {
        try await withElasticsearchServer { client, _ in
            _ = try await call(client, .put, "/m/_doc/1?refresh=true", #"{"a":"x","b":1}"#)
            let mget = try await call(
                client,
                .post,
                "/_mget",
                #"{"docs":[{"_index":"m","_id":"1","_source":"a"},{"_index":"m","_id":"2"},{"_index":"none","_id":"1"}]}"#
            )
            let docs = try #require(mget.json?["docs"]?.arrayValue)
            #expect(docs[0]["_source"] == ["a": "x"])
            #expect(docs[1]["found"] == false)
            #expect(docs[2]["error"]?["type"] == "index_not_found_exception")
            let body = """
                {}
                {"query":{"term":{"a.keyword":"x"}}}
                {"index":"none"}
                {}
                {}
                {"query":{"nope":{}}}

                """
            let msearch = try await call(client, .post, "/m/_msearch", body, contentType: "application/x-ndjson")
            let responses = try #require(msearch.json?["responses"]?.arrayValue)
            #expect(responses.count == 3)
            #expect(responses[0]["hits"]?["total"]?["value"] == 1 && responses[0]["status"] == 200)
            #expect(responses[1]["status"] == 404)
            #expect(responses[2]["error"]?["type"] == "parsing_exception" && responses[2]["status"] == 400)
        }
    }

    @Test(.timeLimit(.minutes(8))) func documentLifecycleAndCommonParameters() async throws {
        try await withElasticsearchServer { client, _ in
            let created = try await call(
                client,
                .put,
                "/logs/_doc/1?refresh=wait_for",
                #"{"host":{"ip":"10.0.0.1"},"msg":"hello"}"#
            )
            #expect(created.status == 201)
            #expect(created.json?["result"] == "created")
            #expect(created.json?["_version"] == 1)
            let got = try await call(client, .get, "/logs/_doc/1?_source_includes=host")
            #expect(got.json?["_source"] == ["host": ["ip": "10.0.0.1"]])
            #expect(got.json?["found"] == true)
            let missing = try await call(client, .get, "/logs/_doc/2")
            #expect(missing.status == 404 && missing.json?["found"] == false)
            let exists = try await call(client, .head, "/logs/_doc/1")
            #expect(exists.status == 200)
            let pretty = try await call(client, .get, "/logs/_count?pretty")
            #expect(String(decoding: pretty.body, as: UTF8.self).contains("\n  \"count\" : 1"))
            let filtered = try await call(client, .get, "/logs/_search?filter_path=hits.hits._id,hits.total.value")
            #expect(filtered.json == ["hits": ["total": ["value": 1], "hits": [["_id": "1"]]]])
            let q = try await call(client, .get, "/logs/_search?q=msg:hello&size=0")
            #expect(q.json?["hits"]?["total"]?["value"] == 1)
            let cat = try await call(client, .get, "/_cat/indices?format=json")
            #expect(cat.json?[0]?["index"] == "logs")
            #expect(cat.json?[0]?["docs.count"] == "1")
            _ = try await call(client, .put, "/logs/_doc/1", #"{"host":{"ip":"10.0.0.2"},"msg":"hello again"}"#)
            let replaced = try await call(client, .get, "/_cat/indices/logs?format=json&h=docs.count,docs.deleted")
            #expect(replaced.json == [["docs.count": "1", "docs.deleted": "1"]])
            let text = try await call(client, .get, "/_cat/indices?v")
            #expect(String(decoding: text.body, as: UTF8.self).hasPrefix("health status index"))
            let compatible = try await client.execute(
                uri: "/logs/_count",
                method: .get,
                headers: [
                    .accept: "application/vnd.elasticsearch+json; compatible-with=8",
                    .contentType: "application/vnd.elasticsearch+json; compatible-with=8",
                ],
                body: ByteBuffer(string: "{}")
            ) { response in (response.status.code, response.headers[.contentType]) }
            #expect(compatible.0 == 200)
            #expect(compatible.1?.hasPrefix("application/vnd.elasticsearch+json") == true)
            let deleted = try await call(client, .delete, "/logs")
            #expect(deleted.json == ["acknowledged": true])
        }
    }
}
