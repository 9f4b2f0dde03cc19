import ArgumentParser
import Foundation
import Logging
import NIOSSL
import QuarryCore
import QuarryElasticsearchAPI
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
                Every request to the Elasticsearch API is authenticated, as on a secured Elasticsearch cluster: Basic \
                (users) or ApiKey. On first start the elastic superuser is created with the password in \
                $QUARRY_ELASTIC_PASSWORD, or a generated one printed once (reset it with `quarry users \
                reset-password elastic`). Mint API keys with `quarry es api-key create` or POST /_security/api_key.

                With --es-tls-cert and --es-tls-key the API speaks HTTPS only. It listens on loopback by default; \
                another --es-host needs TLS, or --allow-insecure-es-host to accept that passwords and data cross the \
                network in clear. Webhooks answer only at /webhook/<story>/<secret> for stories whose webhook \
                declares a secret.

                Exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 1 when the data directory or a story cannot \
                be loaded or an address cannot be bound, 64 for a usage error.
                """
        )

        @OptionGroup var store: StoreOptions

        @Option(name: .long, help: "Address of the Elasticsearch API.")
        var esHost = "127.0.0.1"

        @Option(name: .long, help: "Port of the Elasticsearch API (0 picks a free port).")
        var esPort = 9200

        @Option(name: .long, help: "The Elasticsearch API's certificate chain (PEM, leaf first): serve HTTPS.")
        var esTlsCert: String?

        @Option(name: .long, help: "The private key (PEM) of --es-tls-cert.")
        var esTlsKey: String?

        @Flag(
            name: .long,
            help: """
                Let the Elasticsearch API listen on an address other than loopback without TLS: passwords, API \
                keys and documents cross the network in clear.
                """
        )
        var allowInsecureEsHost = false

        @Option(
            name: .long,
            help: """
                A role given to requests without credentials (Elasticsearch's anonymous access; repeatable). \
                Without it, such requests are answered 401.
                """
        )
        var esAnonymousRole: [String] = []

        @Flag(
            name: .long,
            help: """
                Serve the Elasticsearch API without authentication (as Elasticsearch with security disabled): \
                whoever reaches it reads and writes every index. Loopback only.
                """
        )
        var noEsAuthentication = false

        @Option(name: .long, help: "Address of the webhooks.")
        var host = "127.0.0.1"

        @Option(name: .long, help: "Port of the webhooks, which listen when --stories is given (0 picks a free port).")
        var port = 8080

        @Option(name: .long, help: "Load every story file (.yaml, .yml, .json) in this directory.")
        var stories: String?

        @Option(name: .long, help: "Extra certificate authorities (PEM) to trust for HTTPS and SMTP.")
        var caFile: String?

        func validate() throws {
            guard (esTlsCert == nil) == (esTlsKey == nil) else {
                throw ValidationError("--es-tls-cert and --es-tls-key go together")
            }
            guard Self.isLoopback(esHost) || esTlsCert != nil || allowInsecureEsHost else {
                throw ValidationError(
                    "--es-host \(esHost) is not a loopback address, and without --es-tls-cert and --es-tls-key "
                        + "passwords, API keys and documents would cross the network in clear. Give a certificate, "
                        + "keep the default (127.0.0.1) behind a proxy that terminates TLS, or pass "
                        + "--allow-insecure-es-host to accept it."
                )
            }
            if noEsAuthentication, !Self.isLoopback(esHost) {
                throw ValidationError("--no-es-authentication is refused with a non-loopback --es-host")
            }
            if noEsAuthentication, !esAnonymousRole.isEmpty {
                throw ValidationError("--es-anonymous-role has no meaning with --no-es-authentication")
            }
        }

        /// `localhost`, 127.0.0.0/8 or ::1.
        static func isLoopback(_ host: String) -> Bool {
            host == "localhost" || IPAddress(host.trimmingCharacters(in: ["[", "]"]))?.isLoopback == true
        }

        func run() async throws {
            tuneMemoryAllocator()
            let logger = store.makeLogger()
            if !Self.isLoopback(esHost), esTlsCert == nil {
                logger.warning(
                    "the Elasticsearch API listens beyond loopback without TLS",
                    metadata: ["address": "\(esHost)"]
                )
            }
            if noEsAuthentication {
                logger.warning("the Elasticsearch API answers without authentication (--no-es-authentication)")
            }
            let runtime = try await StoryRuntime(
                dataDirectory: store.dataDirectory,
                openStore: true,
                trustedCertificates: caFile,
                resolver: nil,
                logger: logger
            )
            guard let embedded = runtime.store else { return }
            let security = noEsAuthentication ? nil : try openSecurity(logger: logger)
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
            var tls: TLSConfiguration?
            if let esTlsCert, let esTlsKey {
                do {
                    tls = try serverTLS(certificateFile: esTlsCert, keyFile: esTlsKey)
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
            let scheme = tls == nil ? "http" : "https"
            let application = try buildElasticsearchApplication(
                store: embedded,
                security: security,
                configuration: .init(host: host, port: esPort, tls: tls),
                logger: logger
            ) { port in
                // Scripts wait for this line; write it unbuffered.
                FileHandle.standardOutput.write(
                    Data("Elasticsearch API listening on \(scheme)://\(host):\(port)\n".utf8)
                )
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

        /// Opens the security index and creates the elastic user on first start, printing its password when it was
        /// generated (once: it is stored only as a hash).
        func openSecurity(logger: Logger) throws -> ElasticsearchSecurity {
            let security = try ElasticsearchSecurity(
                directory: store.dataDirectory,
                configuration: .init(anonymousRoles: esAnonymousRole),
                logger: logger
            )
            let given = ProcessInfo.processInfo.environment["QUARRY_ELASTIC_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
            if let generated = try security.bootstrapElasticUser(password: given) {
                FileHandle.standardOutput.write(
                    Data(
                        """
                        Created the elastic superuser. Its password, shown this once (reset it with \
                        `quarry users reset-password elastic`):
                          \(generated)

                        """.utf8
                    )
                )
            }
            return security
        }
    }
}
