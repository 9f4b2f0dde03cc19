import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import QuarryCore
import QuarryElastic
import QuarrySearch
import QuarryTesting
import Testing

/// The client against a real Elasticsearch API on loopback: Quarry's own, over a socket.
@Suite(.mayBlock)
struct ElasticClientTests {
    @Test(.timeLimit(.minutes(8))) func searchesAClusterOverHTTP() async throws {
        try await withElasticsearchServer { server, store in
            let documents: [JSON] = [["host": "web-1", "n": 1], ["host": "web-2", "n": 2], ["host": "db-1", "n": 3]]
            let items = documents.map { document in
                EmbeddedStore.BulkItem(
                    index: "hosts",
                    operation: .index(IndexRequest(id: nil, source: document.serializedBytes(), document: document))
                )
            }
            #expect(store.bulk(items).allSatisfy { $0.error == nil })
            _ = try store.refresh("_all")

            let cluster = ElasticClient(
                url: "http://127.0.0.1:\(server.port ?? 0)/",
                authorization: TestElasticUser.authorization,
                httpClient: .shared
            )
            #expect(cluster.url == "http://127.0.0.1:\(server.port ?? 0)")
            let response = try await cluster.search(
                index: "host*",
                body: ["query": ["range": ["n": ["gte": 2]]], "sort": [["n": "asc"]]]
            )
            let hosts = response["hits"]?["hits"]?.arrayValue?.compactMap { $0["_source"]?["host"]?.stringValue }
            #expect(hosts == ["web-2", "db-1"])
        }
    }

    @Test(.timeLimit(.minutes(8))) func aRefusedRequestCarriesTheClustersReasonAndIsNotRetried() async throws {
        try await withElasticsearchServer { server, _ in
            let cluster = ElasticClient(
                url: "http://127.0.0.1:\(server.port ?? 0)",
                authorization: TestElasticUser.authorization,
                httpClient: .shared
            )
            do throws(ElasticError) {
                _ = try await cluster.search(index: "missing", body: ["query": ["match_all": [:]]])
                Issue.record("a search of a missing index succeeded")
            } catch {
                #expect(error == .rejected)
                #expect(error.status == 404)
                #expect(error.message.contains("no such index [missing]"))
                #expect(!error.isRetryable)
            }
        }
    }

    @Test(.timeLimit(.minutes(8))) func aClosedPortIsUnreachableAndMayBeRetried() async throws {
        // Port 1 (tcpmux): below the ephemeral range, so no server of another test running alongside can be
        // there, and nothing on a test machine listens on it.
        let port = 1
        // As Quarry configures its client: a refused connection is not tried again within a request (the caller
        // retries with backoff).
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let cluster = ElasticClient(url: "http://127.0.0.1:\(port)", authorization: nil, httpClient: httpClient)
        await #expect(throws: ElasticError.unreachable) {
            _ = try await cluster.search(index: "any", body: [:])
        }
        try await httpClient.shutdown()
        #expect(ElasticError.unreachable.isRetryable)
    }

    /// A server that answers 200 with something other than JSON (a proxy's login page) gives an error, never an
    /// empty result that a hunt would read as "nothing found".
    @Test(.timeLimit(.minutes(8))) func aSuccessThatIsNotJSONIsAnError() async throws {
        let router = Router()
        router.post("/{index}/_search") { _, _ in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "<html>Please sign in</html>")))
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await application.test(.live) { server in
            let cluster = ElasticClient(
                url: "http://127.0.0.1:\(server.port ?? 0)",
                authorization: TestElasticUser.authorization,
                httpClient: .shared
            )
            do throws(ElasticError) {
                _ = try await cluster.search(index: "packetbeat-*", body: ["query": ["match_all": [:]]])
                Issue.record("a page that is not JSON was taken for an answer")
            } catch {
                #expect(error == .invalidResponse)
                #expect(error.message.contains("not JSON"))
                #expect(!error.isRetryable)
            }
        }
    }

    @Test func authorizationFromAStoredSecret() {
        let idAndKey = "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"
        #expect(ElasticClient.authorization(idAndKey) == "ApiKey " + Data(idAndKey.utf8).base64EncodedString())
        #expect(ElasticClient.authorization(" Basic ZWxhc3RpYzpwYXNz\n") == "Basic ZWxhc3RpYzpwYXNz")
        #expect(ElasticClient.authorization("Bearer abc") == "Bearer abc")
        #expect(ElasticClient.authorization("VnVhQ2ZHY0JDZGJr") == "ApiKey VnVhQ2ZHY0JDZGJr")
    }
}
