import ArgumentParser
import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch

extension Quarry {
    /// `quarry users add|list|remove|reset-password|roles`: the users of the Elasticsearch API's native realm, kept in
    /// the data directory's `security.sqlite`. They work while `quarry serve` runs: it notices changes within a second.
    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the users of the Elasticsearch API (passwords stored as bcrypt hashes).",
            discussion: """
                A password is read from standard input when it is not a terminal (`echo … | quarry users add …`); \
                otherwise one is generated and printed once.

                Exit status: 0 on success, 1 when the user does not exist or the data directory cannot be used, 64 \
                for a usage error.
                """,
            subcommands: [Add.self, List.self, Remove.self, ResetPassword.self, Roles.self, Token.self]
        )

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add a user, or replace one's roles and password.",
                discussion: """
                    Examples:
                      quarry users add ana --role analyst
                      echo "$PASSWORD" | quarry users add ingest --role beats_writer --data ./data

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The user's name.") var name: String
            @Option(
                name: .customLong("role"),
                help: """
                    A role (repeatable). The web application's: admin, analyst, viewer; the Elasticsearch API's also \
                    superuser, editor, beats_writer, or a stored one.
                    """
            )
            var roles: [String] = []
            @Option(help: "The user's full name.") var fullName: String?
            @Option(help: "The user's email address.") var email: String?
            @OptionGroup var store: StoreOptions

            func validate() throws {
                guard !roles.isEmpty else { throw ValidationError("give the user at least one --role") }
            }

            func run() async throws {
                let security = try openSecurity(store)
                let (password, generated) = try passwordFromInput()
                var body: JSONObject = [
                    "password": .string(password), "roles": .array(roles.map { .string($0) }),
                ]
                if let fullName { body["full_name"] = .string(fullName) }
                if let email { body["email"] = .string(email) }
                try security.putUser(name, body: .object(body))
                print("user \(name) saved with roles \(roles.joined(separator: ", "))")
                // As in Elasticsearch, a role that does not exist (yet) is kept, and grants nothing until it does.
                let known = try security.roles().map(\.0)
                for role in roles where !known.contains(role) {
                    printError(
                        "warning: role \(role) is not defined, so it grants nothing (roles: \(known.joined(separator: ", ")))"
                    )
                }
                if generated { print("password (shown once): \(password)") }
            }
        }

        struct Token: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Print a new web API token for a user (Authorization: Bearer …), replacing their earlier one.",
                discussion: """
                    The token authenticates on the web application's REST API (/api/v1) and /metrics with the user's \
                    role (admin, analyst or viewer). It is shown once and stored as a hash; a new token replaces the \
                    old, and removing or disabling the user ends it.

                    Examples:
                      quarry users token ana
                      curl -H "Authorization: Bearer $(quarry users token ana)" http://127.0.0.1:8080/api/v1/runs

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The user's name.") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let security = try openSecurity(store)
                do {
                    print(try security.issueUserToken(for: name))
                } catch {
                    throw CommandFailure("\(error)")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the users with their roles.",
                discussion: """
                    Examples:
                      quarry users list

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let users = try openSecurity(store).users()
                let width = max(4, users.map(\.username.count).max() ?? 0)
                print("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  ENABLED  ROLES")
                for user in users {
                    print(
                        user.username.padding(toLength: width, withPad: " ", startingAt: 0)
                            + "  " + (user.enabled ? "yes    " : "no     ") + "  " + user.roles.joined(separator: ",")
                    )
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove a user (not elastic).",
                discussion: """
                    Examples:
                      quarry users remove ana

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The user's name (not elastic).") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                guard try openSecurity(store).deleteUser(name) else { throw CommandFailure("no user \(name)") }
                print("user \(name) removed")
            }
        }

        struct ResetPassword: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "reset-password",
                abstract: "Set a user's password (elastic's too): from standard input, or generated and printed.",
                discussion: """
                    Examples:
                      quarry users reset-password elastic
                      echo "$NEW" | quarry users reset-password ana

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The user's name (elastic too).") var name: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let security = try openSecurity(store)
                let (password, generated) = try passwordFromInput()
                _ = try security.resetPassword(name, to: password)
                print("password of \(name) changed")
                if generated { print("password (shown once): \(password)") }
            }
        }

        struct Roles: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the roles (built-in and stored) with their privileges.",
                discussion: """
                    Examples:
                      quarry users roles

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions

            func run() async throws {
                for (name, descriptor) in try openSecurity(store).roles() {
                    let indices = descriptor.indices.map {
                        "\($0.names.joined(separator: ",")): \($0.privileges.joined(separator: ","))"
                    }
                    print(
                        "\(name)\n  cluster: \(descriptor.cluster.joined(separator: ", "))"
                            + "\n  indices: \(indices.joined(separator: "; "))"
                    )
                }
            }
        }
    }
}

/// Opens the data directory's security index without the store: it is a file of its own, so the commands that
/// manage users and keys work beside a running `quarry serve`.
func openSecurity(_ store: StoreOptions) throws -> ElasticsearchSecurity {
    try ElasticsearchSecurity(directory: store.dataDirectory, logger: store.makeLogger())
}

/// A password piped on standard input (its first line), or a generated one when standard input is a terminal or
/// empty; the flag says which.
func passwordFromInput() throws -> (String, generated: Bool) {
    if isatty(FileHandle.standardInput.fileDescriptor) == 0 {
        let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
        if let line = line?.trimmingCharacters(in: ["\r"]), !line.isEmpty { return (line, false) }
    }
    return (ElasticsearchSecurity.generatePassword(), true)
}
