import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// The tools older than the 8.x client, unmodified, against `quarry serve`, from the virtual environment
/// scripts/test makes in `.build/python-legacy`: the 7.x official client (`elasticsearch7`), `opensearch-py` (its point
/// in time is OpenSearch's `_search/point_in_time`) and ElastAlert 2, whose `frequency` and `any` rules must report the
/// hits and matches a brute-force reading of the generated data gives.
@Suite(.mayBlock)
struct LegacyClientTests {
    static let environment = ProjectPaths.root.appendingPathComponent(".build/python-legacy/bin")

    /// Why the tests cannot run here (the environment scripts/test makes is missing or incomplete), or nil.
    static let missing: String? = {
        let python = environment.appendingPathComponent("python").path
        let check = "import elasticsearch7, opensearchpy, elastalert, pytz"
        guard let (status, _) = try? runToolBlocking(python, ["-c", check]), status == 0 else {
            return "ElastAlert 2, elasticsearch7 or opensearch-py is missing from \(environment.path) "
                + "(scripts/test installs them from PyPI)"
        }
        return nil
    }()

    /// Starts serve in `directory` and mints an API key that may do anything, as ElastAlert's set-up needs (it
    /// creates its own indices).
    private func serve(_ directory: URL) async throws -> (Process, Int, String) {
        let (server, port) = try await DurabilityTests.startServer(data: directory)
        let minted = try await QuarryCommand.run([
            "es", "api-key", "create", "--data", directory.path, "--name", "legacy", "--expiration", "1d",
            "--index", "*", "--privileges", "all", "--cluster-privilege", "all",
        ])
        #expect(minted.status == 0, "\(minted.error)")
        let line = minted.text.split(separator: "\n").first { $0.hasPrefix("Authorization: ApiKey ") } ?? ""
        return (server, port, String(line.dropFirst("Authorization: ApiKey ".count)))
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(8)))
    func sevenXAndOpenSearchClientsWorkUnchanged() async throws {
        try await withTemporaryDirectory { directory in
            let (server, port, key) = try await serve(directory)
            defer {
                QuarryServerProcess.stop(server)
            }
            let script = ProjectPaths.root.appendingPathComponent("Tests/python/legacy_clients.py")
            let (status, output) = try await runTool(
                Self.environment.appendingPathComponent("python").path,
                [script.path, "http://127.0.0.1:\(port)", key, TestElasticUser.password],
                mergingErrors: true
            )
            let text = String(decoding: output, as: UTF8.self)
            #expect(status == 0, "\(text)")
            #expect(text.contains("passed, 0 failed"), "\(text)")
        }
    }

    /// One generated burst of DNS questions: a client asking about a name, `count` times, `spacing` seconds apart.
    struct Burst {
        var client: String
        var name: String
        var start: Int64
        var count: Int
        var spacing: Int64
    }

    /// How many matches ElastAlert's `frequency` rule makes per `query_key`: each event joins its key's window, which
    /// drops its oldest events while it spans `timeframe` or more; `numEvents` in the window is a match, and the
    /// window starts again empty.
    static func frequencyMatches(_ times: [String: [Int64]], numEvents: Int, timeframe: Int64) -> Int {
        var matches = 0
        for (_, list) in times {
            var window: [Int64] = []
            for time in list.sorted() {
                window.append(time)
                while let first = window.first, let last = window.last, last - first >= timeframe {
                    window.removeFirst()
                }
                if window.count >= numEvents {
                    matches += 1
                    window = []
                }
            }
        }
        return matches
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(8)))
    func elastAlertRulesMatchWhatTheDataHolds() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data")
            let (server, port, key) = try await serve(data)
            defer {
                QuarryServerProcess.stop(server)
            }
            // Bursts of questions for evil.example from eight clients, between 20 and 1 hours ago, and background
            // traffic; a seeded generator, so that a failure can be replayed.
            let seed = UInt64(Date().timeIntervalSince1970)
            var state = seed
            func next(_ bound: Int) -> Int {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int((state >> 33) % UInt64(bound))
            }
            let now = Int64(Date().timeIntervalSince1970)
            var bursts: [Burst] = []
            for client in (2...9).map({ "10.3.0.\($0)" }) {
                for _ in 0..<(1 + next(3)) {
                    bursts.append(
                        Burst(
                            client: client,
                            name: next(4) == 0 ? "github.com" : "evil.example",
                            start: now - 20 * 3600 + Int64(next(18 * 3600)),
                            count: 1 + next(14),
                            spacing: Int64(10 + next(170))
                        )
                    )
                }
            }
            // And one burst that surely matches twice.
            bursts.append(Burst(client: "10.3.0.10", name: "evil.example", start: now - 7_200, count: 12, spacing: 30))
            // And questions from the client the `any` rule watches.
            bursts.append(Burst(client: "10.3.0.2", name: "evil.example", start: now - 3_600, count: 3, spacing: 700))
            var bulk = ""
            var evilTimes: [String: [Int64]] = [:]
            var used = Set<String>()
            var number = 0
            for burst in bursts {
                for step in 0..<burst.count {
                    let time = burst.start + Int64(step) * burst.spacing
                    // One question per client and second: ElastAlert's windows then hold distinct times.
                    guard used.insert("\(burst.client)@\(time)").inserted else { continue }
                    number += 1
                    bulk += #"{"index":{"_index":"packetbeat-alerts","_id":"q\#(number)"}}"# + "\n"
                    bulk +=
                        JSON.object([
                            "@timestamp": .string(ISO8601.format(time * 1000)), "client": ["ip": .string(burst.client)],
                            "dns": ["question": ["name": .string(burst.name)]],
                        ]).serialized() + "\n"
                    if burst.name == "evil.example" { evilTimes[burst.client, default: []].append(time * 1000) }
                }
            }
            // Loaded with quarry's own commands, which reach the running serve through the data directory.
            let mapping = #"""
                {"mappings":{"properties":{"@timestamp":{"type":"date"},"client":{"properties":{"ip":{"type":"ip"}}},
                  "dns":{"properties":{"question":{"properties":{"name":{"type":"keyword"}}}}}}}}
                """#
            let created = try await QuarryCommand.run([
                "index", "create", "packetbeat-alerts", "--body", mapping, "--data", data.path,
            ])
            #expect(created.status == 0, "\(created.error)")
            let bulkFile = directory.appendingPathComponent("events.ndjson")
            try bulk.write(to: bulkFile, atomically: true, encoding: .utf8)
            let loaded = try await QuarryCommand.run(["bulk", bulkFile.path, "--data", data.path])
            #expect(loaded.status == 0, "\(loaded.error)")

            let rules = directory.appendingPathComponent("rules")
            try FileManager.default.createDirectory(at: rules, withIntermediateDirectories: true)
            let config = directory.appendingPathComponent("config.yaml")
            try """
            rules_folder: \(rules.path)
            run_every: {minutes: 1}
            buffer_time: {minutes: 15}
            es_host: 127.0.0.1
            es_port: \(port)
            es_api_key: \(key)
            writeback_index: elastalert_status
            alert_time_limit: {days: 2}

            """.write(to: config, atomically: true, encoding: .utf8)
            try """
            name: evil-frequency
            type: frequency
            index: packetbeat-*
            num_events: 5
            timeframe: {minutes: 10}
            query_key: client.ip
            filter:
            - term: {dns.question.name: evil.example}
            alert: [debug]

            """.write(to: rules.appendingPathComponent("frequency.yaml"), atomically: true, encoding: .utf8)
            try """
            name: evil-any
            type: any
            index: packetbeat-*
            filter:
            - query: {query_string: {query: "dns.question.name:evil.example AND client.ip:10.3.0.2"}}
            alert: [debug]

            """.write(to: rules.appendingPathComponent("any.yaml"), atomically: true, encoding: .utf8)

            let setUp = try await runTool(
                Self.environment.appendingPathComponent("elastalert-create-index").path,
                ["--config", config.path],
                mergingErrors: true
            )
            let setUpText = String(decoding: setUp.output, as: UTF8.self)
            #expect(setUp.status == 0 && setUpText.contains("Done!"), "\(setUpText)")

            func testRule(_ file: String) async throws -> JSON {
                let (status, output) = try await runTool(
                    Self.environment.appendingPathComponent("elastalert-test-rule").path,
                    [
                        "--config", config.path, "--days", "1", "--formatted-output",
                        rules.appendingPathComponent(file).path,
                    ]
                )
                let text = String(decoding: output, as: UTF8.self)
                #expect(status == 0, "\(file): \(text)")
                let last = text.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""
                return try JSON.parse(Array(last.utf8))
            }
            let evilCount = evilTimes.values.reduce(0) { $0 + $1.count }
            let frequency = try await testRule("frequency.yaml")
            let status = frequency["writeback"]?["elastalert_status"]
            #expect(frequency["hits"]?.intValue == Int64(evilCount), "seed \(seed)")
            #expect(status?["hits"]?.intValue == Int64(evilCount), "seed \(seed)")
            let expectedMatches = Self.frequencyMatches(evilTimes, numEvents: 5, timeframe: 600_000)
            #expect(expectedMatches >= 2)
            #expect(status?["matches"]?.intValue == Int64(expectedMatches), "seed \(seed): \(status ?? .null)")

            let any = try await testRule("any.yaml")
            let asked = Int64(evilTimes["10.3.0.2"]?.count ?? 0)
            #expect(any["hits"]?.intValue == asked, "seed \(seed)")
            #expect(any["writeback"]?["elastalert_status"]?["matches"]?.intValue == asked, "seed \(seed)")
        }
    }
}
