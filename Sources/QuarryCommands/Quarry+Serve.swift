import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryStories
import ServiceLifecycle
import UnixSignals

extension Quarry {
    /// `quarry serve`: the Elasticsearch REST API over the embedded store, the web application, and the stories:
    /// their engine (which resumes the deliveries a stopped process left), their schedules and their webhooks.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the web application and the Elasticsearch REST API, and run stories.",
            discussion: """
                Every request to the Elasticsearch API is authenticated, as on a secured Elasticsearch cluster: Basic \
                (users) or ApiKey. On first start the elastic superuser is created with the password in \
                $QUARRY_ELASTIC_PASSWORD, or a generated one printed once (reset it with `quarry users \
                reset-password elastic`). Mint API keys with `quarry es api-key create` or POST /_security/api_key.

                With --es-tls-cert and --es-tls-key the API speaks HTTPS only. It listens on loopback by default; \
                another --es-host needs TLS, or --allow-insecure-es-host to accept that passwords and data cross the \
                network in clear.

                The web application (sign-in, stories, forms, runs, credentials, /api/v1, /metrics, /healthz) \
                listens on --host and --port, by default http://127.0.0.1:8080; every page needs a user (`quarry \
                users add NAME --role admin|analyst|viewer`). Webhooks answer there at /webhook/<story>/<secret> for \
                stories whose webhook declares a secret, and public forms at /forms/<story>/<secret>. --stories DIR \
                is watched: new and changed files load within a second, and files that do not lint are shown on \
                /stories.

                Examples:
                  quarry serve --stories ./stories
                  quarry serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem --public-url https://quarry.example
                  quarry serve --data ./data --port 8080 --es-port 9200

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

        @Option(name: .long, help: "Address of the web application (pages, REST API, webhooks).")
        var host = "127.0.0.1"

        @Option(name: .long, help: "Port of the web application (0 picks a free port).")
        var port = 8080

        @Option(name: .long, help: "The web application's certificate chain (PEM, leaf first): serve HTTPS.")
        var tlsCert: String?

        @Option(name: .long, help: "The private key (PEM) of --tls-cert.")
        var tlsKey: String?

        @Flag(
            name: .long,
            help: "Let the web application listen on an address other than loopback without TLS."
        )
        var allowInsecureHost = false

        @Option(
            name: .long,
            help: """
                The URL people reach the web application at (behind a proxy): links in emails \
                ({% story_run_link %}) and cookies' Secure flag follow it.
                """
        )
        var publicURL: String?

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
            guard (tlsCert == nil) == (tlsKey == nil) else {
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            guard
                Self.isLoopback(host) || tlsCert != nil || allowInsecureHost
                    || publicURL?.lowercased().hasPrefix("https://") == true
            else {
                throw ValidationError(
                    "--host \(host) is not a loopback address, and without --tls-cert and --tls-key passwords and "
                        + "session cookies would cross the network in clear. Give a certificate, put the application "
                        + "behind a proxy that terminates TLS (--public-url https://…), or pass --allow-insecure-host."
                )
            }
            if let publicURL,
                URL(string: publicURL)?.scheme.map({ ["http", "https"].contains($0.lowercased()) }) != true
            {
                throw ValidationError("--public-url must be an http:// or https:// URL")
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
            // The users serve the web application even when the Elasticsearch API runs without authentication.
            let users = try openSecurity(logger: logger)
            let security = noEsAuthentication ? nil : users
            var directory: StoryDirectory<ContinuousClock>?
            if let stories {
                let watched = StoryDirectory(path: stories, engine: runtime.engine, logger: logger)
                do {
                    try await watched.scan()
                } catch {
                    throw CommandFailure("cannot read the story directory \(stories): \(error.localizedDescription)")
                }
                for failure in watched.failures {
                    printError("\(stories)/\(failure.file) does not load (it is shown on /stories):")
                    for problem in failure.problems {
                        printError("  " + (problem.line.map { "line \($0): " } ?? "") + problem.message)
                    }
                }
                directory = watched
            }
            var webTLS: TLSConfiguration?
            if let tlsCert, let tlsKey {
                do {
                    webTLS = try serverTLS(certificateFile: tlsCert, keyFile: tlsKey)
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
            let engine = runtime.engine
            let webScheme = webTLS == nil ? "http" : "https"
            let webHost = host.contains(":") ? "[\(host)]" : host
            let publicURL = publicURL
            // Once both listeners have their ports (they start in either order), `serve.json` is written and then
            // both announcements are printed: a script that waits for either line finds the file there.
            let dataDirectory = store.dataDirectory
            let listening = NIOLockedValueBox<(web: String?, elasticsearch: String?, lines: String)>((nil, nil, ""))
            let published = NIOLockedValueBox<ServedDataDirectory?>(nil)
            @Sendable func announceOnceBothListen(web: String? = nil, elasticsearch: String? = nil, lines: String) {
                let ready = listening.withLockedValue { state -> (String, String, String)? in
                    if let web { state.web = web }
                    if let elasticsearch { state.elasticsearch = elasticsearch }
                    state.lines += lines
                    guard let web = state.web, let elasticsearch = state.elasticsearch else { return nil }
                    return (web, elasticsearch, state.lines)
                }
                guard let (web, elasticsearch, lines) = ready else { return }
                defer {
                    // Scripts wait for these lines; write them unbuffered.
                    FileHandle.standardOutput.write(Data(lines.utf8))
                }
                do {
                    let served = try Self.publish(
                        directory: dataDirectory,
                        security: security,
                        users: users,
                        elasticsearch: elasticsearch,
                        web: web
                    )
                    published.withLockedValue { $0 = served }
                } catch {
                    logger.error("cannot leave serve.json for the commands", metadata: ["error": "\(error)"])
                }
            }
            let web = try buildWebApplication(
                engine: engine,
                security: users,
                store: embedded,
                stories: directory,
                configuration: .init(host: host, port: port, tls: webTLS, publicURL: publicURL),
                logger: logger
            ) { port in
                let base = publicURL ?? "\(webScheme)://\(webHost):\(port)"
                var lines = "Web app listening on \(webScheme)://\(webHost):\(port)\n"
                for name in engine.storyNames {
                    guard let story = engine.story(named: name) else { continue }
                    let key = Story.snakeCase(name)
                    var urls: [String] = []
                    if story.form != nil { urls.append("form \(base)/forms/\(key)") }
                    if story.agents.contains(where: \.isWebhook) {
                        urls.append("webhook \(base)/webhook/\(key)/<secret>")
                    }
                    if !urls.isEmpty { lines += "  \(name): \(urls.joined(separator: ", "))\n" }
                }
                announceOnceBothListen(web: "\(webScheme)://\(webHost):\(port)", lines: lines)
            }
            // The engine is first so that it stops last: the listeners that start runs stop before it.
            var services: [any Service] = [runtime.engine, web]
            if let directory { services.append(directory) }
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
                let url = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
                // The commands run beside the server find it (and credentials for it) in the data directory.
                announceOnceBothListen(elasticsearch: url, lines: "Elasticsearch API listening on \(url)\n")
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: services + [application],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            defer {
                if let served = published.withLockedValue({ $0 }) {
                    Self.withdraw(served, directory: dataDirectory, security: security, users: users)
                }
            }
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
