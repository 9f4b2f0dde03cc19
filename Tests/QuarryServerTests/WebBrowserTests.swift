import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuarryCore
import QuarryTesting
import Testing

/// The web application in a real browser: Debian's headless Chromium, driven by Selenium through chromium-driver,
/// against `quarry serve` with the reference story and a generated capture ingested. Screenshots of the sign-in
/// page, the form, the run page and the diagram are kept in `.build/test-artefacts/web/`.
@Suite(.mayBlock) struct WebBrowserTests {
    static var missing: String? {
        for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        where !FileManager.default.isExecutableFile(atPath: path) {
            return "\(path) is not installed (apt-get install chromium chromium-driver): the browser test is skipped"
        }
        guard (try? runToolBlocking("/usr/bin/env", ["python3", "-c", "import selenium"]).status) == 0 else {
            return "selenium is not installed (pip install selenium): the browser test is skipped"
        }
        return nil
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(8)))
    func anAnalystRunsTheReferenceHuntFromItsFormAndReadsTheReport() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let capture = directory.appendingPathComponent("network.pcap").path
            for arguments in [
                ["sample", "capture", "--out", capture, "--hosts", "20", "--minutes", "30"],
                ["ingest", capture, "--data", data],
            ] {
                let result = try await QuarryCommand.run(arguments)
                #expect(result.status == 0, "quarry \(arguments[0]): \(result.error)")
            }
            let added = try await QuarryCommand.run(
                ["users", "add", "ana", "--role", "analyst", "--data", data],
                input: "analyst-password\n"
            )
            #expect(added.status == 0, "\(added.error)")
            let token = try await QuarryCommand.run(["users", "token", "ana", "--data", data]).text
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let (server, port) = try await QuarryServerProcess.start(
                [
                    "serve", "--data", data, "--stories", ProjectPaths.root.appendingPathComponent("stories").path,
                    "--port", "0", "--es-port", "0", "--log-level", "warning",
                ],
                announcement: "Web app listening on",
                // No resolver: the hunt uses the resolutions seen on the wire (and reaches nothing outside).
                environment: ["QUARRY_RESOLVER": "none"]
            )
            defer { LoopbackServers.stop(server) }
            let artefacts = ProjectPaths.root.appendingPathComponent(".build/test-artefacts/web")
            try FileManager.default.createDirectory(at: artefacts, withIntermediateDirectories: true)
            let (status, output) = try await runTool(
                "/usr/bin/env",
                [
                    "python3", ProjectPaths.root.appendingPathComponent("Tests/python/web_browser.py").path,
                    "http://127.0.0.1:\(port)", "ana", "analyst-password", "Update.Evil-CDN.example.",
                    artefacts.path,
                ]
            )
            let text = String(decoding: output, as: UTF8.self)
            #expect(status == 0, "\(text)")
            let result = try JSON.parse(text.split(separator: "\n").last.map(String.init) ?? "")
            #expect(result["status"]?.stringValue == "succeeded")
            #expect((result["diagram_width"]?.intValue ?? 0) > 0)
            let rows = result["rows"]?.arrayValue ?? []
            #expect(!rows.isEmpty, "the report table lists no host")

            // The table shows exactly the hosts of the run's report, as the API gives it.
            let guid = try #require(result["run"]?.stringValue)
            let reply = try await Self.get(
                "http://127.0.0.1:\(port)/api/v1/runs/\(guid)/events?agent=build_report",
                token
            )
            let report = try #require(reply["events"]?[0]?["payload"])
            let reported = Set(report["hosts"]?.arrayValue?.compactMap { $0["ip"]?.stringValue } ?? [])
            #expect(Set(rows.compactMap { $0["ip"]?.stringValue }) == reported)
            for name in ["sign-in", "form", "run", "diagram"] {
                #expect(FileManager.default.fileExists(atPath: artefacts.appendingPathComponent("\(name).png").path))
            }
        }
    }

    static func get(_ url: String, _ token: String) async throws -> JSON {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return try JSON.parse(Array(buffer: try await response.body.collect(upTo: 16 << 20)))
    }
}
