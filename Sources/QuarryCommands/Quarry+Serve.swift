import ArgumentParser
import Foundation
import Logging
import QuarryCore
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
                Listens on loopback only by default: the Elasticsearch API has no authentication or TLS yet, so \
                another --es-host is refused unless --allow-insecure-es-host accepts that every index is then open \
                to whoever reaches the address. Webhooks answer only at /webhook/<story>/<secret> for stories whose \
                webhook declares a secret.
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Address of the Elasticsearch API.")
        var esHost = "127.0.0.1"

        @Option(name: .long, help: "Port of the Elasticsearch API (0 picks a free port).")
        var esPort = 9200

        @Flag(
            name: .long,
            help: """
                Let the Elasticsearch API listen on an address other than loopback although it has no \
                authentication or TLS yet: whoever reaches the address reads and writes every index.
                """
        )
        var allowInsecureEsHost = false

        @Option(name: .long, help: "Address of the webhooks.")
        var host = "127.0.0.1"

        @Option(name: .long, help: "Port of the webhooks, which listen when --stories is given (0 picks a free port).")
        var port = 8080

        @Option(name: .long, help: "Load every story file (.yaml, .yml, .json) in this directory.")
        var stories: String?

        @Option(name: .long, help: "Extra certificate authorities (PEM) to trust for HTTPS and SMTP.")
        var caFile: String?

        func validate() throws {
            guard Self.isLoopback(esHost) || allowInsecureEsHost else {
                throw ValidationError(
                    "--es-host \(esHost) is not a loopback address, and the Elasticsearch API has no authentication or "
                        + "TLS yet: every index would be open to whoever reaches it. Keep the default (127.0.0.1) behind "
                        + "a proxy that authenticates and terminates TLS, or pass --allow-insecure-es-host to accept it."
                )
            }
        }

        /// `localhost`, 127.0.0.0/8 or ::1.
        static func isLoopback(_ host: String) -> Bool {
            host == "localhost" || IPAddress(host.trimmingCharacters(in: ["[", "]"]))?.isLoopback == true
        }

        func run() async throws {
            tuneMemoryAllocator()
            let logger = store.makeLogger()
            if !Self.isLoopback(esHost) {
                logger.warning(
                    "the Elasticsearch API listens beyond loopback without authentication or TLS",
                    metadata: ["address": "\(esHost)"]
                )
            }
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
