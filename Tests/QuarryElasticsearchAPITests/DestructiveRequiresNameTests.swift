import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// `action.destructive_requires_name`, on by default as in Elasticsearch 8: indices are deleted by name only, until
/// `PUT /_cluster/settings` turns it off; the setting survives a restart when persistent.
@Suite(.mayBlock)
struct DestructiveRequiresNameTests {
    /// Runs `body` with the API over a store on `directory`, closed afterwards.
    func withAPI(_ directory: URL, _ body: (ElasticsearchAPI) throws -> Void) throws {
        let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
        defer { try? store.close() }
        try body(ElasticsearchAPI(store: store))
    }

    /// The index names `_cat/indices` lists, sorted.
    func indexNames(_ api: ElasticsearchAPI) throws -> [String] {
        guard case .text(let text) = api.handle(try request(.get, "/_cat/indices?h=index")).body else { return [] }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.sorted()
    }

    @Test func wildcardAndAllDeletesAreRefusedUntilTheSettingIsOff() async throws {
        try await withTemporaryDirectory { directory in
            try withAPI(directory) { api in
                for name in ["logs-a", "logs-b", "other"] {
                    #expect(api.handle(try request(.put, "/\(name)")).status == 200)
                }
                for expression in ["*", "_all", "logs-*", "other,logs-*"] {
                    let refused = api.handle(try request(.delete, "/\(expression)"))
                    #expect(refused.status == 400, "\(expression)")
                    #expect(refused.json?["error"]?["type"] == "illegal_argument_exception")
                    #expect(refused.json?["error"]?["reason"] == "Wildcard expressions or all indices are not allowed")
                }
                #expect(try indexNames(api) == ["logs-a", "logs-b", "other"])
                // By name, and the pattern that names nothing, pass.
                #expect(api.handle(try request(.delete, "/other")).status == 200)
                #expect(api.handle(try request(.delete, "/*,-*")).status != 400)

                let defaults = api.handle(
                    try request(.get, "/_cluster/settings?include_defaults=true&flat_settings=true")
                )
                #expect(defaults.json?["defaults"]?["action.destructive_requires_name"] == "true")
                #expect(defaults.json?["persistent"] == [:])

                // Unknown settings and wrong values are refused, and change nothing.
                let unknown = api.handle(
                    try request(.put, "/_cluster/settings", #"{"persistent": {"no.such.setting": 1}}"#)
                )
                #expect(unknown.status == 400)
                #expect(unknown.json?["error"]?["reason"] == "persistent setting [no.such.setting], not recognized")
                let wrong = api.handle(
                    try request(
                        .put,
                        "/_cluster/settings",
                        #"{"persistent": {"action.destructive_requires_name": "maybe"}}"#
                    )
                )
                #expect(wrong.status == 400)

                let off = api.handle(
                    try request(
                        .put,
                        "/_cluster/settings",
                        #"{"persistent": {"action": {"destructive_requires_name": false}}}"#
                    )
                )
                #expect(off.status == 200)
                #expect(off.json?["persistent"] == ["action": ["destructive_requires_name": "false"]])

            }
            // Persistent: the next store on the directory has it.
            try withAPI(directory) { api in
                #expect(
                    api.handle(try request(.get, "/_cluster/settings")).json?["persistent"]?["action"] == [
                        "destructive_requires_name": "false"
                    ]
                )
                #expect(api.handle(try request(.delete, "/logs-*")).status == 200)
                #expect(try indexNames(api).isEmpty)

                // null resets it to the default.
                let reset = api.handle(
                    try request(
                        .put,
                        "/_cluster/settings",
                        #"{"persistent": {"action.destructive_requires_name": null}}"#
                    )
                )
                #expect(reset.status == 200)
                #expect(api.handle(try request(.put, "/again")).status == 200)
                #expect(api.handle(try request(.delete, "/_all")).status == 400)
            }
        }
    }
}
