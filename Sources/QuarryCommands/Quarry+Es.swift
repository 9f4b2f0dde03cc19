import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarryElasticsearchAPI
import QuarrySearch

extension Quarry {
    /// `quarry es api-key create|list|invalidate`, `quarry es token`, `quarry es ping`: API keys and checks for
    /// Quarry's own Elasticsearch API (the data directory) or a remote cluster (`--cluster URL`).
    struct Es: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "API keys and connection checks for Quarry's Elasticsearch API or a remote cluster.",
            discussion: """
                Without --cluster the commands act on the data directory's security index, as the elastic user \
                (they work while `quarry serve` runs). With --cluster URL they call that cluster's REST API with \
                the credentials in $QUARRY_ES_API_KEY (id:key or encoded) or $QUARRY_ES_USERNAME and \
                $QUARRY_ES_PASSWORD, never on the command line where other users could read them.

                Exit status: 0 on success, 1 when the cluster or the data directory refuses, 64 for a usage error.
                """,
            subcommands: [APIKey.self, Token.self, Ping.self]
        )

        /// Where the commands act: `--cluster` or the data directory.
        struct Target: ParsableArguments {
            @Option(name: .long, help: "A remote cluster's URL (https://host:9200); default: the data directory.")
            var cluster: String?
            @OptionGroup var store: StoreOptions

            /// A client for `--cluster`, or `nil` for the data directory.
            func client() throws -> ElasticClient? {
                cluster.map { Es.client(for: $0) }
            }
        }

        /// A client for `url` with the credentials of the environment.
        static func client(for cluster: String, tls: ElasticClient.TLS = .systemTrustStore) -> ElasticClient {
            let environment = ProcessInfo.processInfo.environment
            var authorization: String?
            if let key = environment["QUARRY_ES_API_KEY"], !key.isEmpty {
                authorization = ElasticClient.authorization(key)
            } else if let user = environment["QUARRY_ES_USERNAME"], let password = environment["QUARRY_ES_PASSWORD"] {
                authorization = ElasticClient.Credentials.basic(username: user, password: password).header
            }
            return ElasticClient(
                configuration: .init(nodes: [cluster], tls: tls),
                authorization: authorization,
                httpClient: ElasticClient.sharedHTTPClient
            )
        }

        struct APIKey: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "api-key",
                abstract: "Create, list and invalidate API keys.",
                subcommands: [Create.self, List.self, Invalidate.self]
            )

            struct Create: AsyncParsableCommand {
                static let configuration = CommandConfiguration(
                    abstract: "Create an API key and print its id, secret, encoded token and Authorization header.",
                    discussion: """
                        With --index, the key may do only --privileges (default: read) on those index patterns, \
                        and --cluster-privilege on the cluster; without, it has its owner's privileges, as in \
                        Elasticsearch.

                        Examples:
                          quarry es api-key create --name hunts --index 'packetbeat-*' --expiration 30d
                          QUARRY_ES_API_KEY=… quarry es api-key create --name ci --cluster https://es.example:9200

                        Exit status: 0 on success, 1 when the cluster or the data directory refuses, 64 for a usage \
                        error.
                        """
                )
                @Option(help: "The key's name.") var name: String
                @Option(help: "How long the key lives (14d, 12h); default: it does not expire.") var expiration: String?
                @Option(name: .customLong("index"), help: "An index pattern the key may use (repeatable).")
                var indices: [String] = []
                @Option(help: "Index privileges on --index, comma-separated (read, write, create_doc, …).")
                var privileges = "read"
                @Option(name: .customLong("cluster-privilege"), help: "A cluster privilege (repeatable: monitor, …).")
                var clusterPrivileges: [String] = []
                @Option(help: "The user owning the key (data directory only).") var owner = "elastic"
                @Flag(help: "Print Elasticsearch's JSON response instead.") var json = false
                @OptionGroup var target: Target

                func run() async throws {
                    var body: JSONObject = ["name": .string(name)]
                    if let expiration { body["expiration"] = .string(expiration) }
                    if !indices.isEmpty || !clusterPrivileges.isEmpty {
                        var role: JSONObject = ["cluster": .array(clusterPrivileges.map { .string($0) })]
                        if !indices.isEmpty {
                            let privileges = privileges.split(separator: ",").map { JSON.string(String($0)) }
                            role["indices"] = [
                                ["names": .array(indices.map { .string($0) }), "privileges": .array(privileges)]
                            ]
                        }
                        body["role_descriptors"] = [name + "-role": .object(role)]
                    }
                    let response: JSON
                    if let client = try target.client() {
                        response = try await client.perform(.post, "/_security/api_key", body: .object(body))
                    } else {
                        let milliseconds = try expiration.map { text throws(StoreError) in
                            try SearchRequest.timeValueMilliseconds(text, setting: "expiration")
                        }
                        response = try openSecurity(target.store).createAPIKey(
                            owner: owner,
                            name: name,
                            expiration: milliseconds,
                            roleDescriptors: body["role_descriptors"]
                        ).json
                    }
                    if json {
                        print(response.serialized(pretty: true))
                        return
                    }
                    let encoded = response["encoded"]?.stringValue ?? ""
                    print("id:       \(response["id"]?.stringValue ?? "")")
                    print("name:     \(response["name"]?.stringValue ?? "")")
                    if let expiration = response["expiration"]?.intValue {
                        let date = Date(timeIntervalSince1970: Double(expiration) / 1000)
                        print("expires:  \(ISO8601DateFormatter().string(from: date))")
                    }
                    print("api_key:  \(response["api_key"]?.stringValue ?? "")")
                    print("encoded:  \(encoded)")
                    print("Authorization: ApiKey \(encoded)")
                }
            }

            struct List: AsyncParsableCommand {
                static let configuration = CommandConfiguration(
                    abstract: "List API keys (never their secrets).",
                    discussion: """
                        Examples:
                          quarry es api-key list
                          quarry es api-key list --cluster https://es.example:9200

                        Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                        """
                )
                @OptionGroup var target: Target

                func run() async throws {
                    let keys: [JSON]
                    if let client = try target.client() {
                        keys = try await client.perform(.get, "/_security/api_key")["api_keys"]?.arrayValue ?? []
                    } else {
                        keys = try openSecurity(target.store).apiKeys()
                    }
                    print("ID                    NAME                OWNER       STATE")
                    for key in keys {
                        var state = key["invalidated"]?.boolValue == true ? "invalidated" : "active"
                        if state == "active", let expiration = key["expiration"]?.intValue,
                            Double(expiration) / 1000 < Date().timeIntervalSince1970
                        {
                            state = "expired"
                        }
                        func column(_ text: String, _ width: Int) -> String {
                            text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
                        }
                        print(
                            column(key["id"]?.stringValue ?? "", 21) + " " + column(key["name"]?.stringValue ?? "", 19)
                                + " " + column(key["username"]?.stringValue ?? "", 11) + " " + state
                        )
                    }
                }
            }

            struct Invalidate: AsyncParsableCommand {
                static let configuration = CommandConfiguration(
                    abstract: "Invalidate API keys by id.",
                    discussion: """
                        Examples:
                          quarry es api-key invalidate VuaCfGcBCdbkQm-e5aOx

                        Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                        """
                )
                @Argument(help: "The ids of the keys.") var ids: [String]
                @OptionGroup var target: Target

                func validate() throws {
                    guard !ids.isEmpty else { throw ValidationError("name at least one key id") }
                }

                func run() async throws {
                    let invalidated: [String]
                    if let client = try target.client() {
                        let response = try await client.perform(
                            .delete,
                            "/_security/api_key",
                            body: ["ids": .array(ids.map { .string($0) })]
                        )
                        invalidated = response["invalidated_api_keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    } else {
                        invalidated = try openSecurity(target.store).invalidateAPIKeys(ids)
                    }
                    for id in ids {
                        print(invalidated.contains(id) ? "\(id) invalidated" : "\(id) not found or already invalid")
                    }
                    if invalidated.isEmpty { throw ExitCode.failure }
                }
            }
        }

        struct Token: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the encoded token of ID:API_KEY (base64), as Authorization: ApiKey takes it.",
                discussion: """
                    Examples:
                      quarry es token VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The key's id and secret, separated by a colon.") var key: String

            func validate() throws {
                guard key.contains(":") else { throw ValidationError("expected ID:API_KEY") }
            }

            func run() throws {
                print(Data(key.utf8).base64EncodedString())
            }
        }

        struct Ping: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Report a cluster's product and version and who the credentials authenticate as.",
                discussion: """
                    Examples:
                      quarry es ping
                      QUARRY_ES_API_KEY=… quarry es ping --cluster https://es.example:9200

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Option(name: .long, help: "The cluster's URL (default: http://127.0.0.1:9200, `quarry serve`'s).")
            var cluster = "http://127.0.0.1:9200"

            func run() async throws {
                let client = Es.client(for: cluster)
                let info: JSON?
                do throws(ElasticError) {
                    info = try await client.perform(.get, "/")
                } catch {
                    // Reading `GET /` takes the `monitor` cluster privilege, which a key for searches may lack.
                    guard error.status == 403 else { throw error }
                    info = nil
                }
                if let info {
                    let distribution = info["version"]?["distribution"]?.stringValue ?? "elasticsearch"
                    print(
                        "\(cluster): \(distribution) \(info["version"]?["number"]?.stringValue ?? "?"), cluster "
                            + (info["cluster_name"]?.stringValue ?? "?")
                    )
                } else {
                    print("\(cluster): answers, but the credentials may not read its version (no monitor privilege)")
                }
                let me = try await client.perform(.get, "/_security/_authenticate")
                var who = "authenticated as \(me["username"]?.stringValue ?? "?")"
                if let key = me["api_key"]?["id"]?.stringValue { who += " with API key \(key)" }
                let roles = me["roles"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if !roles.isEmpty { who += " (roles: \(roles.joined(separator: ", ")))" }
                print(who)
            }
        }
    }
}
