import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// The progress lines of `quarry ingest` and `quarry bulk` as a person sees them: the commands run in a real
/// terminal (Debian's tmux), and the test reads the pane.
@Suite(.serialized, .mayBlock) struct TerminalProgressTests {
    static let tmux = "/usr/bin/tmux"

    /// Runs `command` in a terminal (Tests/python/terminal_progress.py drives tmux) and returns every distinct
    /// screen line seen until it ended.
    static func watch(_ command: [String], session: String) async throws -> [String] {
        let script = ProjectPaths.root.appendingPathComponent("Tests/python/terminal_progress.py").path
        let (status, output) = try await runTool("/usr/bin/env", ["python3", script, session] + command)
        #expect(status == 0, "terminal_progress.py failed")
        return (try? JSON.parse(Array(output)))?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: tmux),
            "tmux is not installed (apt-get install tmux): the terminal test is skipped"
        ),
        .timeLimit(.minutes(5))
    )
    func ingestAndBulkShowTheirProgressInATerminal() async throws {
        guard let quarry = ProjectPaths.quarryExecutable?.path else {
            Issue.record("the quarry executable is built by `swift build` (scripts/test does it first)")
            return
        }
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("net.pcap").path
            let documents = directory.appendingPathComponent("dns.ndjson").path
            let data = directory.appendingPathComponent("data").path
            #expect(
                try await QuarryCommand.run(["sample", "capture", "--out", capture, "--hosts", "40", "--minutes", "30"])
                    .status == 0
            )
            #expect(
                try await QuarryCommand.run(["sample", "dns", "--documents", "30000", "--out", documents]).status == 0
            )

            let ingest = try await Self.watch([quarry, "ingest", capture, "--data", data], session: "quarry-ingest")
            // `net.pcap [1/1]  42%  12345 packets  1.2 MiB  987 documents  20000 packets/s  ETA 2 s`
            #expect(
                ingest.contains {
                    $0.contains("net.pcap [1/1]") && $0.contains("%") && $0.contains("MiB") && $0.contains("ETA")
                },
                "\(ingest)"
            )
            #expect(ingest.contains { $0.contains("documents stored") }, "\(ingest)")

            let bulk = try await Self.watch([quarry, "bulk", documents, "--data", data], session: "quarry-bulk")
            // `5000 documents  8.0 MiB  1420 documents/s   3.1%  1:50 left`
            #expect(
                bulk.contains { $0.contains("documents/s") && $0.contains("%") && $0.contains("left") },
                "\(bulk)"
            )
            #expect(bulk.contains { $0.hasPrefix("indexed 30000 documents") }, "\(bulk)")
        }
    }
}
