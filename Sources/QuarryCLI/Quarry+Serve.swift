import ArgumentParser
import Foundation
import Hummingbird
import Logging
import QuarrySearch
import QuarryServer
import ServiceLifecycle
import UnixSignals

extension Quarry {
    /// `quarry serve`: the Elasticsearch REST API over the embedded store.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the Elasticsearch REST API for the embedded store.",
            discussion: """
                Listens on loopback only by default: the API has no authentication yet, so binding another \
                address exposes every index to whoever can reach it.
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Address of the Elasticsearch API.")
        var esHost = "127.0.0.1"

        @Option(name: .long, help: "Port of the Elasticsearch API (0 picks a free port).")
        var esPort = 9200

        func run() async throws {
            tuneMemoryAllocator()
            let logger = store.makeLogger()
            let embedded = try EmbeddedStore(configuration: .init(dataDirectory: store.dataDirectory))
            let host = esHost
            let application = buildElasticsearchApplication(
                store: embedded,
                configuration: .init(host: host, port: esPort),
                logger: logger
            ) { port in
                // Scripts wait for this line; write it unbuffered.
                FileHandle.standardOutput.write(Data("Elasticsearch API listening on http://\(host):\(port)\n".utf8))
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: [application],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
            try embedded.close()
        }
    }
}
