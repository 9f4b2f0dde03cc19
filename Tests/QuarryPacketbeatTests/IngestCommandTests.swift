import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// The reference hunt on a capture, as a newcomer runs it: `quarry sample capture`, `quarry ingest` into the
/// embedded store, then the hunt's two searches with `quarry search`.
@Suite("quarry ingest", .mayBlock)
struct IngestCommandTests {
    func quarry(_ arguments: [String]) async throws -> QuarryCommand.Result {
        try await QuarryCommand.run(arguments)
    }

    func hits(_ result: QuarryCommand.Result) throws -> [JSON] {
        let response = try JSON.parse(Array(result.output))
        return response["hits"]?["hits"]?.arrayValue ?? []
    }

    /// `quarry search --kql` on Packetbeat documents finds exactly what a brute-force reading of every stored
    /// document finds, for the filters a hunter types into Kibana's search bar.
    @Test func kqlFindsWhatABruteForceReadingFinds() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("network.pcap").path
            let data = directory.appendingPathComponent("store").path
            #expect(
                try await quarry(["sample", "capture", "--out", capture, "--hosts", "12", "--minutes", "10"]).status
                    == 0
            )
            #expect(try await quarry(["ingest", capture, "--data", data]).status == 0)
            let everything = try hits(
                try await quarry(["search", "packetbeat-*", "--data", data, "--query", #"{"size": 10000}"#])
            ).compactMap { hit in hit["_id"]?.stringValue.map { ($0, hit["_source"] ?? .null) } }
            #expect(everything.count > 100 && everything.count < 10_000)
            func value(_ source: JSON, _ path: String) -> JSON? {
                path.split(separator: ".").reduce(Optional(source)) { $0?[String($1)] } ?? source[path]
            }
            let cases: [(String, (JSON) -> Bool)] = [
                ("type: flow", { value($0, "type") == "flow" }),
                (
                    "type: dns and not client.ip: 10.1.0.2",
                    { value($0, "type") == "dns" && value($0, "client.ip") != "10.1.0.2" }
                ),
                (
                    "network.transport: tcp and destination.port >= 443",
                    { value($0, "network.transport") == "tcp" && (value($0, "destination.port")?.intValue ?? 0) >= 443 }
                ),
                (
                    "dns.question.type: (AAAA or TXT)",
                    { ["AAAA", "TXT"].contains(value($0, "dns.question.type")?.stringValue ?? "") }
                ),
                (
                    "dns.resolved_ip: *",
                    { value($0, "dns.resolved_ip").map { $0.arrayValue.map { !$0.isEmpty } ?? ($0 != .null) } ?? false }
                ),
                (
                    "destination.ip: 203.0.113.66 or source.ip: 203.0.113.66",
                    { value($0, "destination.ip") == "203.0.113.66" || value($0, "source.ip") == "203.0.113.66" }
                ),
                (
                    "dns.question.registered_domain: *.example",
                    { value($0, "dns.question.registered_domain")?.stringValue?.hasSuffix(".example") == true }
                ),
            ]
            for (kql, matches) in cases {
                let found = try hits(
                    try await quarry([
                        "search", "packetbeat-*", "--data", data, "--kql", kql, "--query", #"{"size": 10000}"#,
                    ])
                )
                let expected = Set(everything.filter { matches($0.1) }.map(\.0))
                #expect(Set(found.compactMap { $0["_id"]?.stringValue }) == expected, "\(kql)")
                #expect(!expected.isEmpty, "\(kql) matches nothing in the sample")
            }
        }
    }

    @Test func huntOnACapture() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("network.pcapng").path
            let data = directory.appendingPathComponent("store").path
            let written = try await quarry([
                "sample", "capture", "--out", capture, "--hosts", "30", "--minutes", "20", "--format", "pcapng",
            ])
            #expect(written.status == 0, "\(written.error)")

            let ingested = try await quarry(["ingest", capture, "--data", data])
            #expect(ingested.status == 0, "\(ingested.error)")
            #expect(ingested.error.contains("no errors"), "\(ingested.error)")

            // Which hosts asked about the domain in the last four hours, and what did it resolve to?
            let query: JSON = [
                "size": 1000, "_source": ["client.ip", "dns.question.name", "dns.resolved_ip"],
                "query": [
                    "bool": [
                        "must": [
                            [
                                "term": [
                                    "dns.question.name": ["value": "update.evil-cdn.example", "case_insensitive": true]
                                ]
                            ],
                            ["range": ["@timestamp": ["gte": "now-4h"]]],
                        ]
                    ]
                ],
            ]
            let dns = try await hits(
                try quarry(["search", "packetbeat-*", "--data", data, "--query", query.serialized()])
            )
            let askers = Set(dns.compactMap { $0["_source"]?["client"]?["ip"]?.stringValue })
            // Three over UDP, one over TCP, one over IPv6, all in mixed case on the wire.
            #expect(askers == ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "fd00::10:2"])
            let names = Set(dns.compactMap { $0["_source"]?["dns"]?["question"]?["name"]?.stringValue })
            #expect(!names.contains("update.evil-cdn.example") && names.count > 1, "\(names)")
            let addresses = Set(dns.flatMap { $0["_source"]?["dns"]?["resolved_ip"]?.arrayValue ?? [] })
            #expect(addresses == ["203.0.113.66", "2001:db8::66"])

            // Which hosts then sent traffic to those addresses? The planted hosts, and one that never asked.
            let flows: JSON = [
                "size": 1000, "_source": ["source.ip"],
                "query": ["bool": ["filter": [["terms": ["destination.ip": .array(Array(addresses))]]]]],
            ]
            let flowHits = try await hits(
                try quarry(["search", "packetbeat-*", "--data", data, "--query", flows.serialized()])
            )
            let senders = Set(flowHits.compactMap { $0["_source"]?["source"]?["ip"]?.stringValue })
            #expect(senders == askers.union(["10.1.0.31"]))

            // --ndjson writes the same documents to standard output, and leaves the store alone.
            let ndjson = try await quarry(["ingest", capture, "--ndjson", "--data", data])
            #expect(ndjson.status == 0)
            let lines = String(decoding: ndjson.output, as: UTF8.self).split(separator: "\n")
            let count = try await JSON.parse(
                Array(
                    try quarry([
                        "search", "packetbeat-*", "--data", data, "--query", #"{"size":0,"track_total_hits":true}"#,
                    ]).output
                )
            )
            #expect(Int64(lines.count) == count["hits"]?["total"]?["value"]?.intValue)
        }
    }

    func storedCount(_ data: String) async throws -> Int64? {
        let query = #"{"size":0,"track_total_hits":true}"#
        let result = try await quarry(["search", "packetbeat-*", "--data", data, "--query", query])
        return try JSON.parse(Array(result.output))["hits"]?["total"]?["value"]?.intValue
    }

    /// The same capture twice, a copy of it, and an ingest stopped half way and run again: every document is stored
    /// once, under an id that comes from what it describes.
    @Test func ingestingTheSamePacketsAgainAddsNothing() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("network.pcap").path
            let written = try await quarry(["sample", "capture", "--out", capture, "--hosts", "40", "--minutes", "20"])
            #expect(written.status == 0, "\(written.error)")
            let once = directory.appendingPathComponent("once").path
            let first = try await quarry(["ingest", capture, "--data", once])
            #expect(first.status == 0, "\(first.error)")
            let expected = try await #require(try storedCount(once))
            #expect(first.error.contains("\(expected) documents stored (\(expected) new, 0 already there)"))

            let again = try await quarry(["ingest", capture, "--data", once])
            #expect(again.error.contains("(0 new, \(expected) already there)"), "\(again.error)")
            // A copy under another name is the same packets.
            let copy = directory.appendingPathComponent("copy.pcap").path
            try FileManager.default.copyItem(atPath: capture, toPath: copy)
            let copied = try await quarry(["ingest", copy, capture, "--data", once])
            #expect(copied.status == 0)
            #expect(copied.error.contains("(0 new, \(2 * expected) already there)"), "\(copied.error)")
            await #expect(try storedCount(once) == expected)

            // Ctrl-C half way, then the same command again: the documents of the first run are not written twice.
            let interrupted = directory.appendingPathComponent("interrupted").path
            let executable = try #require(ProjectPaths.quarryExecutable)
            let process = Process()
            process.executableURL = executable
            process.arguments = ["ingest", capture, "--data", interrupted, "--batch-size", "200"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            let stored = URL(fileURLWithPath: interrupted).appendingPathComponent("indices")
            for _ in 0..<400 where process.isRunning {
                let files = (try? FileManager.default.contentsOfDirectory(atPath: stored.path)) ?? []
                if !files.isEmpty { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            try await Task.sleep(for: .milliseconds(300))
            QuarryServerProcess.stop(process, signal: SIGINT)
            let before = try await storedCount(interrupted) ?? 0
            let resumed = try await quarry(["ingest", capture, "--data", interrupted])
            #expect(resumed.status == 0, "\(resumed.error)")
            await #expect(try storedCount(interrupted) == expected)
            #expect(
                resumed.error.contains("(\(expected - before) new, \(before) already there)"),
                "\(resumed.error)"
            )
        }
    }

    @Test func badFilesGiveAClearErrorAndAFailingStatus() async throws {
        try await withTemporaryDirectory { directory in
            let notCapture = directory.appendingPathComponent("notes.txt")
            try Data("hello".utf8).write(to: notCapture)
            let result = try await quarry(["ingest", notCapture.path, "--ndjson"])
            #expect(result.status == 1)
            #expect(result.error.contains("not a pcap or pcapng file"))
            let missing = try await quarry([
                "ingest", directory.appendingPathComponent("missing.pcap").path, "--ndjson",
            ])
            #expect(missing.status == 1)
            #expect(missing.error.contains("cannot read the file"))
        }
    }
}
