import ArgumentParser
import Foundation
import QuarryCore
import QuarryElastic
import QuarrySearch

extension Quarry {
    /// `quarry index create|delete|list|template`: in process, or through the `quarry serve` that holds the data
    /// directory.
    struct Index: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, delete and list indices of the embedded store (through quarry serve when it runs).",
            subcommands: [Create.self, Delete.self, List.self, Template.self]
        )

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create an index.",
                discussion: """
                    Examples:
                      quarry index create logs --data ./data
                      quarry index create logs --body '{"mappings":{"properties":{"ts":{"type":"date"}}}}'
                      quarry index create logs --body @logs-index.json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions
            @Argument(help: "The index name.") var name: String
            @Option(name: .long, help: "Settings, mappings and aliases as JSON, @file or -.") var body: String?

            func run() async throws {
                let json = try body.map { try JSON.parse(readArgument($0)) }
                if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                    let answer = try await served.perform(.put, "/" + ServedDataDirectory.pathSegment(name), body: json)
                    let index = answer["index"] ?? .string(name)
                    print(JSON.object(["acknowledged": true, "index": index]).serialized(pretty: true))
                    return
                }
                let embedded = try EmbeddedStore(configuration: .init(dataDirectory: store.dataDirectory))
                let metadata = try embedded.createIndex(name, body: json)
                try embedded.close()
                print(JSON.object(["acknowledged": true, "index": .string(metadata.name)]).serialized(pretty: true))
            }
        }

        struct Template: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create or replace a composable index template (as PUT _index_template/NAME).",
                discussion: """
                    Examples:
                      quarry index template packetbeat --body @packetbeat-template.json
                      quarry sample template | quarry index template packetbeat --body -

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions
            @Argument(help: "The template name.") var name: String
            @Option(name: .long, help: "The template body as JSON, @file or -.") var body: String

            func run() async throws {
                guard case .object(let object) = try JSON.parse(readArgument(body)) else {
                    throw CommandFailure("the template body must be a JSON object")
                }
                if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                    let path = "/_index_template/" + ServedDataDirectory.pathSegment(name)
                    _ = try await served.perform(.put, path, body: .object(object))
                    print(JSON.object(["acknowledged": true]).serialized(pretty: true))
                    return
                }
                let embedded = try EmbeddedStore(configuration: .init(dataDirectory: store.dataDirectory))
                try embedded.putTemplate(name, body: object)
                try embedded.close()
                print(JSON.object(["acknowledged": true]).serialized(pretty: true))
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete indices (names, wildcards, a,b).",
                discussion: """
                    A pattern (`*`, `_all`, `logs-*`) deletes only with --yes, as Elasticsearch 8 refuses deletes by \
                    pattern (action.destructive_requires_name).

                    Examples:
                      quarry index delete logs
                      quarry index delete 'logs-2026.11.*' --yes

                    Exit status: 0 when deleted, 1 when a named index does not exist or a pattern lacks --yes, 64 \
                    for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions
            @Argument(help: "The index expression.") var expression: String
            @Flag(help: "Delete every index a pattern matches.") var yes = false

            func run() async throws {
                if IndexName.namesByPattern(expression), !yes {
                    throw CommandFailure(
                        "'\(expression)' names indices by a pattern: give their names, or --yes to delete every index "
                            + "it matches"
                    )
                }
                let directory = try store.existingDataDirectory()
                let deleted: [String]
                if let served = ServedDataDirectory.running(in: directory) {
                    // The server refuses a delete by pattern (destructive_requires_name), as Elasticsearch does: the
                    // pattern, confirmed above, is resolved to names first.
                    let path = "/_cat/indices/" + ServedDataDirectory.pathSegment(expression) + "?format=json&h=index"
                    let names = (try await served.perform(.get, path).arrayValue ?? []).compactMap {
                        $0["index"]?.stringValue
                    }
                    .sorted()
                    if !names.isEmpty {
                        let list = names.map(ServedDataDirectory.pathSegment).joined(separator: ",")
                        _ = try await served.perform(.delete, "/" + list)
                    }
                    deleted = names
                } else {
                    let embedded = try EmbeddedStore(configuration: .init(dataDirectory: directory))
                    deleted = try embedded.deleteIndices(expression)
                    try embedded.close()
                }
                print(
                    JSON.object(["acknowledged": true, "deleted": .array(deleted.map { .string($0) })]).serialized(
                        pretty: true
                    )
                )
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List indices with document counts and sizes.",
                discussion: """
                    Examples:
                      quarry index list --data ./data
                      quarry index list --json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @OptionGroup var store: StoreOptions
            @Flag(name: .long, help: "Print JSON instead of a table.") var json = false

            func run() async throws {
                let directory = try store.existingDataDirectory()
                let summaries: [(name: String, documentCount: Int, sizeInBytes: Int64)]
                if let served = ServedDataDirectory.running(in: directory) {
                    // `quarry serve` holds the store: ask it for the same numbers.
                    let rows = try await served.perform(
                        .get,
                        "/_cat/indices?format=json&bytes=b&h=index,docs.count,store.size"
                    )
                    summaries = (rows.arrayValue ?? []).map { row in
                        (
                            row["index"]?.stringValue ?? "",
                            Int(row["docs.count"]?.stringValue ?? "") ?? 0,
                            Int64(row["store.size"]?.stringValue ?? "") ?? 0
                        )
                    }.sorted { $0.name < $1.name }
                } else {
                    let embedded = try EmbeddedStore(configuration: .init(dataDirectory: directory))
                    summaries = try embedded.summaries().sorted { $0.name < $1.name }.map {
                        ($0.name, $0.documentCount, $0.sizeInBytes)
                    }
                    try embedded.close()
                }
                if json {
                    let list: [JSON] = summaries.map {
                        [
                            "index": .string($0.name), "docs.count": .int(Int64($0.documentCount)),
                            "store.size": .int($0.sizeInBytes),
                        ]
                    }
                    print(JSON.array(list).serialized(pretty: true))
                    return
                }
                let width = max(5, summaries.map(\.name.count).max() ?? 0)
                print("index".padding(toLength: width, withPad: " ", startingAt: 0) + "  docs.count  store.size")
                for summary in summaries {
                    let count = String(summary.documentCount)
                    print(
                        summary.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                            + String(repeating: " ", count: max(0, 10 - count.count)) + count + "  "
                            + String(summary.sizeInBytes)
                    )
                }
            }
        }
    }
}
