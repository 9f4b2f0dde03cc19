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

                Exit status: 0 with the response, 1 when the store answers an error (printed as Elasticsearch's \
                JSON) or the data directory does not exist, 64 for a usage error.
                """
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: "Index expression (packetbeat-*, a,b, _all).") var index: String
        @Option(name: .long, help: "The search body (with \"query\", \"size\", \"sort\", …) as JSON, @file or -.")
        var query: String = "{}"

        func run() async throws {
            let directory = try store.existingDataDirectory()
            if let served = ServedDataDirectory.running(in: directory) {
                // `quarry serve` holds the store: ask it.
                let body = try JSON.parse(readArgument(query))
                let path = "/" + ServedDataDirectory.pathSegment(index) + "/_search"
                print(try await served.perform(.post, path, body: body).serialized(pretty: true))
                return
            }
            let embedded = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? embedded.close() }
            let api = ElasticsearchAPI(store: embedded)
            let response = api.handle(
                ESRequest(method: .post, path: [index, "_search"], body: try readArgument(query))
            )
            guard let json = response.json else { return }
            print(json.serialized(pretty: true))
            if response.status >= 400 { throw ExitCode(1) }
        }
    }
}
