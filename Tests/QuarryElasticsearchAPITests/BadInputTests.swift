import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryTesting
import Testing

/// Mangled requests of every kind get an answer (an ES error or per-item errors), never a crash, and nothing
/// that was acknowledged is lost.
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
