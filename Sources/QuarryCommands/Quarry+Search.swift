import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer

extension Quarry {
    /// `quarry search INDEX --query JSON|@file`: ES's `_search`, printing ES's response.
    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search the embedded store with the Query DSL.",
            discussion: """
                Examples:
                  quarry search 'packetbeat-*' --query '{"query": {"term": {"dns.question.name": "github.com"}}}'
                  quarry search 'packetbeat-*' --query @hunt.json --data ./data
                  quarry search 'packetbeat-*' --kql 'dns.question.name:*.evil-cdn.example and not client.ip:10.1.0.9'
                  quarry search 'packetbeat-*' --kql 'destination.port >= 1024' --query '{"size": 3}'

                --kql takes the Kibana Query Language and becomes the body's "query" (docs/embedded-store.md).

                Exit status: 0 with the response, 1 when the store answers an error (printed as Elasticsearch's \
                JSON) or the data directory does not exist, 64 for a usage error.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "Index expression (packetbeat-*, a,b, _all).") var index: String
        @Option(name: .long, help: "The search body (with \"query\", \"size\", \"sort\", …) as JSON, @file or -.")
        var query: String = "{}"
        @Option(name: .long, help: "A Kibana Query Language filter: the body's \"query\" (with --query for the rest).")
        var kql: String?

        /// The search body: --query, with --kql translated into its "query".
        func body() throws -> JSON {
            let text = try readArgument(query)
            guard let kql else { return try JSON.parse(text) }
            guard case .object(var body) = try JSON.parse(text) else {
                throw ValidationError("--query must be a JSON object")
            }
            guard body["query"] == nil else {
                throw ValidationError("give the query with --kql or in --query's \"query\", not both")
            }
            do {
                body["query"] = try KQL.query(kql)
            } catch {
                throw ValidationError("--kql: \(error)")
            }
            return .object(body)
        }

        func run() async throws {
            let directory = try store.existingDataDirectory()
            let body = try body()
            if let served = ServedDataDirectory.running(in: directory) {
                // `quarry serve` holds the store: ask it.
                let path = "/" + ServedDataDirectory.pathSegment(index) + "/_search"
                print(try await served.perform(.post, path, body: body).serialized(pretty: true))
                return
            }
            let embedded = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? embedded.close() }
            let api = ElasticsearchAPI(store: embedded)
            let response = api.handle(
                ESRequest(method: .post, path: [index, "_search"], body: body.serializedBytes())
            )
            guard let json = response.json else { return }
            print(json.serialized(pretty: true))
            if response.status >= 400 { throw ExitCode(1) }
        }
    }
}
