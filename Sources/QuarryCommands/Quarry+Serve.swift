import ArgumentParser
import Foundation
import Logging
import QuarrySearch
import QuarryServer
import QuarryStories
import ServiceLifecycle
import UnixSignals

extension Quarry {
    /// `quarry serve`: the Elasticsearch REST API over the embedded store, and the stories: their engine (which
    /// resumes the deliveries a stopped process left), their schedules and their webhooks.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the Elasticsearch REST API for the embedded store, and run stories (webhooks, schedules).",
            discussion: """
                Listens on loopback only by default: the Elasticsearch API has no authentication yet, so binding \
                another address exposes every index to whoever can reach it. Webhooks answer only at \
                /webhook/<story>/<secret> for stories whose webhook declares a secret.
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Address of the Elasticsearch API.")
        var esHost = "127.0.0.1"

        @Option(name: .long, help: "Port of the Elasticsearch API (0 picks a free port).")
        var esPort = 9200

        @Option(name: .long, help: "Address of the webhooks.")
        var host = "127.0.0.1"

        @Option(name: .long, help: "Port of the webhooks, which listen when --stories is given (0 picks a free port).")
        var port = 8080

        @Option(name: .long, help: "Load every story file (.yaml, .yml, .json) in this directory.")
        var stories: String?

        @Option(name: .long, help: "Extra certificate authorities (PEM) to trust for HTTPS and SMTP.")
        var caFile: String?

        func run() async throws {
            tuneMemoryAllocator()
            let logger = store.makeLogger()
            let runtime = try await StoryRuntime(
                dataDirectory: store.dataDirectory,
                openStore: true,
                trustedCertificates: caFile,
                resolver: nil,
                logger: logger
            )
            guard let embedded = runtime.store else { return }
            if let stories {
                for file in try FileManager.default.contentsOfDirectory(atPath: stories).sorted()
                where [".yaml", ".yml", ".json"].contains(where: file.hasSuffix) {
                    let path = (stories as NSString).appendingPathComponent(file)
                    do {
                        try await runtime.engine.register(try Story(contentsOf: path))
                    } catch {
                        throw CommandFailure("\(path):\n\(error)")
                    }
                    logger.info("story loaded", metadata: ["file": "\(path)"])
                }
            }
            // The engine is first so that it stops last: the listeners that start runs stop before it.
            var services: [any Service] = [runtime.engine]
            // The webhooks listen only when stories were given: nothing listens that the user did not open.
            if stories != nil {
                let webhookHost = host
                services.append(
                    buildWebhookApplication(engine: runtime.engine, host: host, port: port, logger: logger) { port in
                        FileHandle.standardOutput.write(
                            Data("Webhooks listening on http://\(webhookHost):\(port)\n".utf8)
                        )
                    }
                )
            }
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
                    services: services + [application],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
            await runtime.shutdown()
        }
    }
}
