import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// The reference hunt on a capture, as a newcomer runs it: `quarry sample capture`, `quarry ingest` into the
/// embedded store, then the hunt's two searches with `quarry search`.
@Suite("quarry ingest")
struct IngestCommandTests {
    struct Result {
        var status: Int32
        var output: Data
        var error: String
    }

    func quarry(_ arguments: [String]) throws -> Result {
        let executable = try #require(ProjectPaths.quarryExecutable, "build quarry first (swift build)")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            output: outputData,
            error: String(decoding: errorData, as: UTF8.self)
        )
    }

    func hits(_ result: Result) throws -> [JSON] {
        let response = try JSON.parse(Array(result.output))
        return response["hits"]?["hits"]?.arrayValue ?? []
    }

    @Test func huntOnACapture() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("network.pcapng").path
            let data = directory.appendingPathComponent("store").path
            let written = try quarry([
                "sample", "capture", "--out", capture, "--hosts", "30", "--minutes", "20", "--format", "pcapng",
            ])
            #expect(written.status == 0, "\(written.error)")

            let ingested = try quarry(["ingest", capture, "--data", data])
            #expect(ingested.status == 0, "\(ingested.error)")
            #expect(ingested.error.contains("no errors"), "\(ingested.error)")

            // Which hosts asked about the domain in the last four hours, and what did it resolve to?
            let query: JSON = [
                "size": 1000, "_source": ["client.ip", "dns.resolved_ip"],
                "query": [
                    "bool": [
                        "must": [
                            ["term": ["dns.question.name": "update.evil-cdn.example"]],
                            ["range": ["@timestamp": ["gte": "now-4h"]]],
                        ]
                    ]
                ],
            ]
            let dns = try hits(try quarry(["search", "packetbeat-*", "--data", data, "--query", query.serialized()]))
            let askers = Set(dns.compactMap { $0["_source"]?["client"]?["ip"]?.stringValue })
            #expect(askers == ["10.1.0.2", "10.1.0.3", "10.1.0.4"])
            let addresses = Set(dns.flatMap { $0["_source"]?["dns"]?["resolved_ip"]?.arrayValue ?? [] })
            #expect(addresses == ["203.0.113.66"])

            // Which hosts then sent traffic to those addresses? The planted hosts, and one that never asked.
            let flows: JSON = [
                "size": 1000, "_source": ["source.ip"],
                "query": ["bool": ["filter": [["terms": ["destination.ip": .array(Array(addresses))]]]]],
            ]
            let flowHits = try hits(
                try quarry(["search", "packetbeat-*", "--data", data, "--query", flows.serialized()])
            )
            let senders = Set(flowHits.compactMap { $0["_source"]?["source"]?["ip"]?.stringValue })
            #expect(senders == askers.union(["10.1.0.31"]))

            // --ndjson writes the same documents to standard output, and leaves the store alone.
            let ndjson = try quarry(["ingest", capture, "--ndjson", "--data", data])
            #expect(ndjson.status == 0)
            let lines = String(decoding: ndjson.output, as: UTF8.self).split(separator: "\n")
            let count = try JSON.parse(
                Array(
                    try quarry([
                        "search", "packetbeat-*", "--data", data, "--query", #"{"size":0,"track_total_hits":true}"#,
                    ]).output
                )
            )
            #expect(Int64(lines.count) == count["hits"]?["total"]?["value"]?.intValue)
        }
    }

    @Test func badFilesGiveAClearErrorAndAFailingStatus() async throws {
        try await withTemporaryDirectory { directory in
            let notCapture = directory.appendingPathComponent("notes.txt")
            try Data("hello".utf8).write(to: notCapture)
            let result = try quarry(["ingest", notCapture.path, "--ndjson"])
            #expect(result.status == 1)
            #expect(result.error.contains("not a pcap or pcapng file"))
            let missing = try quarry(["ingest", directory.appendingPathComponent("missing.pcap").path, "--ndjson"])
            #expect(missing.status == 1)
            #expect(missing.error.contains("cannot read the file"))
        }
    }
}
