import ArgumentParser
import Foundation
import QuarryCore
import QuarryStories

extension Quarry {
    /// `quarry credentials set|list|remove`: secrets encrypted at rest, for `{% credential NAME %}`.
    struct Credentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage credentials (AES-GCM encrypted; key in QUARRY_SECRET_KEY or DATA/stories/secret.key).",
            subcommands: [Set.self, List.self, Show.self, Remove.self]
        )

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set NAME to a value asked for without echo on a terminal, or read from standard input.",
                discussion: """
                    With --allowed-host, agents send the credential only to those hosts (an agent that would connect \
                    elsewhere with it fails), as Tines' credentials carry allowed domains. A story reads only the \
                    credentials it declares.

                    Examples:
                      quarry credentials set smtp_password
                      printf %s "$TOKEN" | quarry credentials set virustotal --allowed-host www.virustotal.com

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The credential's name.") var name: String
            @Option(
                name: .customLong("allowed-host"),
                help: "A host the credential may be sent to (repeatable; *.example.com for any name under it)."
            )
            var allowedHosts: [String] = []
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let value = readSecret(prompt: "Value of \(name): ")
                guard !value.isEmpty else { throw CommandFailure("no value given for \(name)") }
                let hosts = allowedHosts.isEmpty ? nil : allowedHosts
                try await withEngine(store) { try $0.vault.setCredential(name, value: value, allowedHosts: hosts) }
                print(
                    "credential \(name) set" + (hosts.map { " (allowed hosts: \($0.joined(separator: ", ")))" } ?? "")
                )
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the value of credential NAME (for a generated webhook secret, say) and its hosts.",
                discussion: """
                    Examples:
                      quarry credentials show webhook_secret

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The credential's name.") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let (value, hosts) = try await withEngine(store, readOnly: true) { engine in
                    (try engine.vault.credential(name), try engine.vault.allowedHosts(name))
                }
                guard let value else { throw CommandFailure("no credential named \(name)") }
                print(value)
                if let hosts { printError("allowed hosts: \(hosts.joined(separator: ", "))") }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List credential names (never their values).",
                discussion: """
                    Examples:
                      quarry credentials list

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions

            func run() async throws {
                try await withEngine(store, readOnly: true) { engine in
                    for name in try engine.vault.credentialNames() { print(name) }
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a credential.",
                discussion: """
                    Examples:
                      quarry credentials remove old_token

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The credential's name.") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let removed = try await withEngine(store, readOnly: true) { try $0.vault.removeCredential(name) }
                guard removed else { throw CommandFailure("no credential named \(name)") }
            }
        }
    }

    /// `quarry resources set|list|show|remove`: values stories share, for `{% global_resource NAME %}`.
    struct Resources: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage global resources (text or JSON).",
            subcommands: [Set.self, List.self, Show.self, Remove.self]
        )

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set NAME to VALUE (text, or JSON; @file and - read it).",
                discussion: """
                    Examples:
                      quarry resources set report_to soc@example.com
                      quarry resources set resolver '"https://dns.example/dns-query"'
                      quarry resources set allow_list @allow.json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The resource's name.") var name: String
            @Argument(help: "The value: text, JSON, @file or - for standard input.") var value: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let text = String(decoding: try readArgument(value), as: UTF8.self)
                try await withEngine(store) { try $0.vault.setResource(name, value: text) }
                print("resource \(name) set")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List resource names.",
                discussion: """
                    Examples:
                      quarry resources list

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions

            func run() async throws {
                try await withEngine(store, readOnly: true) { engine in
                    for name in try engine.vault.resourceNames() { print(name) }
                }
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print a resource's value.",
                discussion: """
                    Examples:
                      quarry resources show report_to

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The resource's name.") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let value = try await withEngine(store, readOnly: true) { try $0.vault.resource(name) }
                guard let value else { throw CommandFailure("no resource named \(name)") }
                print(value.stringValue ?? value.serialized(pretty: true))
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a resource.",
                discussion: """
                    Examples:
                      quarry resources remove report_to

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The resource's name.") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let removed = try await withEngine(store, readOnly: true) { try $0.vault.removeResource(name) }
                guard removed else { throw CommandFailure("no resource named \(name)") }
            }
        }
    }
}

/// Opens the engine's state (not the store, so these commands work while `quarry serve` holds it).
func withEngine<Result>(
    _ store: StoreOptions,
    readOnly: Bool = false,
    _ body: (StoryEngine<ContinuousClock>) async throws -> Result
) async throws -> Result {
    let runtime = try await StoryRuntime(
        dataDirectory: readOnly ? try store.existingDataDirectory() : store.dataDirectory,
        openStore: false,
        trustedCertificates: nil,
        resolver: nil,
        logger: store.makeLogger()
    )
    do {
        let result = try await body(runtime.engine)
        await runtime.shutdown()
        return result
    } catch {
        await runtime.shutdown()
        throw error
    }
}
