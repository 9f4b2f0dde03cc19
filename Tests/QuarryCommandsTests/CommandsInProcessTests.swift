import ArgumentParser
import Foundation
import QuarryCore
import QuarrySearch
import QuarryTesting
import Testing

@testable import QuarryCommands

/// The commands run in process, as the executable runs them: parsed from arguments, validated, run.
@Suite(.serialized, .mayBlock) struct CommandsInProcessTests {
    /// Parses `arguments` as `quarry` would and runs the command.
    func quarry(_ arguments: [String]) async throws {
        var command = try Quarry.parseAsRoot(arguments)
        if var asynchronous = command as? any AsyncParsableCommand {
            try await asynchronous.run()
        } else {
            try command.run()
        }
    }

    @Test func aGeneratedCaptureIngestedTwiceIsStoredOnce() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("sample.pcap").path
            let data = directory.appendingPathComponent("data").path
            try await quarry(["sample", "capture", "--out", capture, "--hosts", "3", "--minutes", "2", "--rate", "4"])
            try await quarry(["ingest", capture, "--data", data, "--index", "pb", "--log-level", "error"])
            try await quarry(["ingest", capture, "--data", data, "--index", "pb", "--log-level", "error"])

            let store = try EmbeddedStore(configuration: .init(dataDirectory: URL(fileURLWithPath: data)))
            defer { try? store.close() }
            let dns = try store.count("pb", query: Query.parse(["term": ["type": "dns"]]))
            let flows = try store.count("pb", query: Query.parse(["term": ["type": "flow"]]))
            #expect(dns > 0)
            #expect(flows > 0)
            // The second ingest of the same file stored nothing new: ids come from the documents' content.
            let all = try store.count("pb", query: .matchAll(boost: 1))
            #expect(all == dns + flows)
        }
    }

    /// `quarry bulk` sends a batch of documents without ids beside the one before it, and any other batch after
    /// it: a later line for an id wins over an earlier one, updates and deletes apply in the file's order, and no
    /// document is lost or stored twice.
    @Test func bulkKeepsTheFilesOrderWhereItMatters() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let file = directory.appendingPathComponent("mixed.ndjson")
            var lines: [String] = []
            func withoutIDs(_ batch: Int) {
                for position in 0..<300 {
                    lines += [#"{"index":{"_index":"t"}}"#, #"{"batch":\#(batch),"n":\#(position)}"#]
                }
            }
            func withIDs(_ version: Int) {
                for position in 0..<300 {
                    lines += [#"{"index":{"_index":"t","_id":"k\#(position)"}}"#, #"{"v":\#(version)}"#]
                }
            }
            // Batches of 300 items: sent beside the one before are the second and the last only.
            withoutIDs(1)
            withoutIDs(2)
            withIDs(1)
            withIDs(2)
            lines += [
                #"{"update":{"_index":"t","_id":"k0"}}"#, #"{"doc":{"v":3}}"#,
                #"{"delete":{"_index":"t","_id":"k1"}}"#,
            ]
            for position in 0..<298 { lines += [#"{"index":{"_index":"t","_id":"m\#(position)"}}"#, #"{"v":5}"#] }
            withoutIDs(6)
            try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            try await quarry(["bulk", file.path, "--data", data, "--batch-size", "300"])

            let store = try EmbeddedStore(configuration: .init(dataDirectory: URL(fileURLWithPath: data)))
            defer { try? store.close() }
            #expect(try store.count("t", query: .matchAll(boost: 1)) == 3 * 300 + 299 + 298)
            #expect(try store.count("t", query: Query.parse(["exists": ["field": "batch"]])) == 3 * 300)
            func version(_ id: String) throws -> JSON? {
                try store.get(index: "t", id: id).map { try JSON.parse($0.source)["v"] } ?? nil
            }
            #expect(try version("k0") == 3)
            #expect(try version("k1") == nil)
            #expect(try version("k2") == 2)
            #expect(try version("k299") == 2)
            #expect(try version("m297") == 5)
        }
    }

    /// Only batches of `index` and `create` actions that leave the id to the store may be sent beside another.
    @Test func onlyActionsWithoutIDsMayOvertake() throws {
        let overtaking = [#"{"index":{}}"#, #"{"create":{"_index":"t"}}"#, #"{"index":{"_index":"t","pipeline":"p"}}"#]
        let ordered = [
            #"{"index":{"_id":"1"}}"#, #"{"create":{"_index":"t","_id":"x"}}"#, #"{"update":{"_id":"1"}}"#,
            #"{"delete":{"_id":"1"}}"#, #"{"nope":{}}"#, "[]", "not json",
        ]
        for line in overtaking { #expect(BulkLoader.addsWithoutID(try? JSON.parse(Array(line.utf8))), "\(line)") }
        for line in ordered { #expect(!BulkLoader.addsWithoutID(try? JSON.parse(Array(line.utf8))), "\(line)") }
    }

    @Test func usageErrorsAreRefusedBeforeAnythingRuns() throws {
        #expect(throws: (any Error).self) { try Quarry.parseAsRoot(["ingest"]) }
        #expect(throws: (any Error).self) { try Quarry.parseAsRoot(["search", "--log-level", "loud", "*"]) }
        #expect(throws: (any Error).self) { try Quarry.parseAsRoot(["no-such-command"]) }
    }

    /// Without TLS, `serve` refuses to open the Elasticsearch API beyond loopback unless told so on purpose.
    @Test func serveRefusesANonLoopbackElasticsearchAddressUnlessAllowed() throws {
        for host in ["0.0.0.0", "192.0.2.10", "::", "es.example.org"] {
            #expect(throws: (any Error).self, "\(host)") { try Quarry.parseAsRoot(["serve", "--es-host", host]) }
            _ = try Quarry.parseAsRoot(["serve", "--es-host", host, "--allow-insecure-es-host"])
            _ = try Quarry.parseAsRoot(["serve", "--es-host", host, "--es-tls-cert", "c.pem", "--es-tls-key", "k.pem"])
            #expect(throws: (any Error).self) {
                try Quarry.parseAsRoot([
                    "serve", "--es-host", host, "--no-es-authentication", "--allow-insecure-es-host",
                ])
            }
        }
        #expect(throws: (any Error).self) { try Quarry.parseAsRoot(["serve", "--es-tls-cert", "c.pem"]) }
        for host in ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"] {
            _ = try Quarry.parseAsRoot(["serve", "--es-host", host])
        }
    }

    @Test func lintExitsWithOneOnAnInvalidStoryAndZeroOnTheReferenceStory() async throws {
        try await withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let broken = directory.appendingPathComponent("broken.yaml")
            try """
            name: broken
            agents:
              - {name: Start, type: webhok}
            """.write(to: broken, atomically: true, encoding: .utf8)
            await #expect(throws: ExitCode(1)) { try await quarry(["story", "lint", broken.path]) }
            let reference = ProjectPaths.root.appendingPathComponent("stories/dns-threat-hunt.yaml").path
            try await quarry(["story", "lint", reference])
        }
    }
}
