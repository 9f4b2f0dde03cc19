import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryTesting
import Testing

/// Mangled requests of every kind get an answer (an ES error or per-item errors), never a crash, and nothing
/// that was acknowledged is lost.
@Suite(.mayBlock)
struct BadInputTests {
    @Test func mangledBulkAndSearchBodiesNeverCrashOrLoseAcknowledgedDocuments() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory, segmentDocuments: 50))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            var generator = SystemRandomNumberGenerator()
            var acknowledged = Set<String>()
            for round in 0..<400 {
                var body = ""
                for item in 0..<5 {
                    let id = "r\(round)-\(item)"
                    body += #"{"index":{"_index":"fuzz","_id":"\#(id)"}}"# + "\n"
                    body += #"{"n":\#(item),"ip":"10.0.0.\#(item)","at":"2026-11-29T10:00:00Z","s":"x y"}"# + "\n"
                }
                var bytes = Array(body.utf8)
                if round % 2 == 1 {
                    for _ in 0..<Int.random(in: 1...3, using: &generator) {
                        let position = Int.random(in: 0..<bytes.count, using: &generator)
                        bytes[position] = UInt8.random(in: 0...255, using: &generator)
                    }
                }
                let response = api.handle(ESRequest(method: .post, path: ["_bulk"], body: bytes))
                guard response.status == 200, let json = response.json else {
                    #expect(response.status == 400, "a refused bulk request is a client error")
                    continue
                }
                for item in json["items"]?.arrayValue ?? [] {
                    guard let (_, result) = item.objectValue?.first, result["error"] == nil,
                        let id = result["_id"]?.stringValue, result["_index"] == "fuzz"
                    else { continue }
                    acknowledged.insert(id)
                }
                let search = api.handle(
                    ESRequest(method: .post, path: ["fuzz", "_search"], body: Array(bytes.prefix(40)))
                )
                #expect(search.status == 200 || (400..<500).contains(search.status))
            }
            let missing = try acknowledged.filter { try store.get(index: "fuzz", id: $0) == nil }
            #expect(missing.isEmpty)
            #expect(acknowledged.count > 1_000)
        }
    }
}

/// Sources of `index` and `create` reach the store as bytes: every way one can be wrong still fails its own item in
/// Elasticsearch's words, and the items around it are stored.
@Suite(.mayBlock)
struct BulkSourceErrorTests {
    @Test func eachBadSourceFailsItsItemAsElasticsearchWords() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            let lines = [
                #"{"index":{"_index":"t","_id":"1"}}"#, #"{"a":1,"b":"x"}"#,
                #"{"index":{"_index":"t","_id":"2"}}"#, #"{"a":1,"a":2}"#,
                #"{"index":{"_index":"t","_id":"3"}}"#, #"{"a": tru}"#,
                #"{"create":{"_index":"t","_id":"4"}}"#, #"[1,2]"#,
                #"{"index":{"_index":"t","_id":"5"}}"#, #"{"a":1} x"#,
                #"{"index":{"_index":"t"}}"#, #"{"a":"not a number"}"#,
                #"{"index":{"_index":"t","_id":"7"}}"#, #"{"c":{"d":"\u00e9"},"a":[1,null,3]}"#,
            ]
            let response = api.handle(
                ESRequest(method: .post, path: ["_bulk"], body: Array((lines.joined(separator: "\n") + "\n").utf8))
            )
            let items = try #require(response.json?["items"]?.arrayValue).compactMap { $0.objectValue?.first?.value }
            #expect(items.map { $0["status"]?.intValue } == [201, 400, 400, 400, 400, 400, 201])
            #expect(items[1]["error"]?["reason"] == "[1:8] failed to parse: Duplicate field 'a'")
            #expect(items[1]["error"]?["caused_by"]?["type"] == "x_content_parse_exception")
            #expect(items[2]["error"]?["type"] == "document_parsing_exception")
            #expect(items[3]["error"]?["reason"] == "failed to parse, document is empty")
            #expect(
                items[4]["error"]?["reason"]
                    == "[1:9] failed to parse: Unexpected character ('x' (code 120)): expected end-of-input"
            )
            // A document refused by its mapping names the id it was given.
            let generated = try #require(items[5]["_id"]?.stringValue)
            #expect(generated.count == 20)
            #expect(items[5]["error"]?["reason"]?.stringValue?.contains("with id '\(generated)'") == true)
            #expect(try store.get(index: "t", id: "7")?.source == Array(lines[13].utf8))
            #expect(try store.get(index: "t", id: "2") == nil)
        }
    }
}
