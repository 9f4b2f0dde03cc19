import AsyncHTTPClient
import Foundation
import GRDB
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryStories
import QuarryStoriesSQLite

/// Events/s through a chain of 10 `message_only` agents with durable delivery, against the floor: the same
/// writes per event (insert the event, queue its delivery, remove the delivery handled) as bare SQLite
/// transactions with the engine's settings, measured in the same run.
func runStoryChainBenchmark(runs: Int, directory: URL, workers: Int = 32) async throws {
    try? FileManager.default.removeItem(at: directory)
    let client = BuiltInServices.makeHTTPClient(trustedCertificatesFile: nil)
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let engine = try await StoryEngine(
        directory: directory.appendingPathComponent("engine"),
        environment: [:],
        configuration: .init(workers: workers),
        services: AgentServices(BuiltInServices(httpClient: client)),
        agents: .builtIn,
        logger: logger
    )
    var agents = [#"{"name": "Step 0", "type": "webhook"}"#]
    for step in 1..<10 {
        agents.append(
            #"{"name": "Step \#(step)", "type": "transform", "receives_from": "Step \#(step - 1)", "options": {"payload": {"n": "{{ .step_\#(step - 1).n | plus: 1 | as_object }}", "host": "{{ .step_0.host }}"}}}"#
        )
    }
    try await engine.register(try Story(text: #"{"name": "chain", "agents": [\#(agents.joined(separator: ","))]}"#))
    let events = runs * 10
    let seconds = try await engine.withRunning {
        let start = DispatchTime.now()
        var guids: [String] = []
        for run in 0..<runs {
            guids.append(
                try await engine.startRun(story: "chain", payload: ["n": 0, "host": .string("10.0.0.\(run % 250)")])
            )
        }
        for guid in guids {
            let record = try await engine.waitForRun(guid)
            guard record.status == .succeeded else { throw BenchmarkFailure("run \(guid): \(record.status)") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        // Every run delivered each event once: ten events, one per agent.
        for guid in guids {
            let emitted = try await engine.events(run: guid)
            guard emitted.count == 10, Set(emitted.map(\.agent)).count == 10 else {
                throw BenchmarkFailure("run \(guid) has \(emitted.count) events")
            }
        }
        print(
            String(
                format: "engine: %d runs × 10 agents = %d events in %.2f s: %.0f events/s",
                runs,
                events,
                seconds,
                Double(events) / seconds
            )
        )
        return seconds
    }
    try await client.shutdown()

    let floorSeconds = try sqliteFloor(runs: runs, directory: directory)
    print(
        String(
            format: "sqlite floor: %d events in %.2f s: %.0f events/s",
            events,
            floorSeconds,
            Double(events) / floorSeconds
        )
    )
    print(String(format: "engine / floor: %.2f", floorSeconds / seconds))
}

/// Latency of the reference hunt from the webhook's POST to the end of the run (the email accepted by the SMTP
/// server), on the store in `directory`, with DoH and SMTP on loopback.
func runStoryHuntBenchmark(
    runs: Int,
    directory: URL,
    resolver: String,
    smtpPort: Int,
    certificates: String,
    story: String
) async throws {
    let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
    let client = BuiltInServices.makeHTTPClient(trustedCertificatesFile: certificates)
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let engineDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("quarry-hunt-bench-\(getpid())")
    defer { try? FileManager.default.removeItem(at: engineDirectory) }
    let engine = try await StoryEngine(
        directory: engineDirectory,
        environment: [:],
        services: AgentServices(
            BuiltInServices(
                httpClient: client,
                defaultCluster: EmbeddedCluster(api: ElasticsearchAPI(store: store)),
                trustedCertificatesFile: certificates,
                defaultResolver: resolver
            )
        ),
        agents: .builtIn,
        logger: logger
    )
    try engine.vault.setResource(
        "smtp",
        value:
            #"{"host": "localhost", "port": \#(smtpPort), "security": "starttls", "username": "bench", "from": "bench@quarry.test"}"#
    )
    try engine.vault.setCredential("smtp_password", value: "bench-password")
    // The reference story mails only recipients this resource allows.
    try engine.vault.setResource("hunt_recipients", value: #"["soc@quarry.test"]"#)
    try await engine.register(try Story(contentsOf: story))
    try await engine.withRunning {
        let ports = AsyncStream<Int>.makeStream()
        let security = try ElasticsearchSecurity(directory: engineDirectory, logger: logger)
        let application = try buildWebApplication(
            engine: engine,
            security: security,
            store: store,
            configuration: .init(port: 0),
            logger: logger
        ) { port in
            ports.continuation.yield(port)
        }
        let server = Task { try await application.runService() }
        var iterator = ports.stream.makeAsyncIterator()
        guard let port = await iterator.next() else { return }
        guard let webhook = engine.webhookSecrets(story: "DNS threat hunt").first else { return }
        let url = "http://127.0.0.1:\(port)/webhook/dns_threat_hunt/\(webhook)"
        var latencies: [Double] = []
        var agentTimes: [String: [Double]] = [:]
        var hosts = 0
        for run in 0..<(runs + 3) {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(
                ByteBuffer(
                    string:
                        #"{"domain": "update.evil-cdn.example", "from": "now-24h", "recipients": "soc@quarry.test"}"#
                )
            )
            let start = DispatchTime.now()
            let response = try await client.execute(request, timeout: .seconds(30))
            let answer = try JSON.parse(Array(buffer: try await response.body.collect(upTo: 1 << 16)))
            guard let guid = answer["run"]?.stringValue else { throw BenchmarkFailure("webhook answered \(answer)") }
            let record = try await engine.waitForRun(guid)
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            guard record.status == .succeeded else {
                throw BenchmarkFailure("run \(guid) \(record.status): \(record.error ?? "")")
            }
            if run < 3 { continue }  // warm-up
            latencies.append(milliseconds)
            for entry in try await engine.timeline(guid) {
                agentTimes[entry.agent, default: []].append((entry.ended - entry.started) * 1000)
            }
            hosts =
                try await engine.events(run: guid, agent: "Build report").first?.payload["hosts"]?.arrayValue?.count
                ?? 0
        }
        latencies.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
        }
        print(
            String(
                format: "webhook → email accepted: median %.1f ms, p95 %.1f ms over %d runs (%d hosts in each report)",
                percentile(latencies, 0.5),
                percentile(latencies, 0.95),
                latencies.count,
                hosts
            )
        )
        for (agent, times) in agentTimes.sorted(by: { percentile($0.value, 0.5) > percentile($1.value, 0.5) }) {
            print(String(format: "  %-22@ median %7.2f ms", agent as NSString, percentile(times, 0.5)))
        }
        server.cancel()
    }
    try await client.shutdown()
    try store.close()
}

/// The floor: the engine's durable writes per event with nothing else, in seconds for `runs` × 10 events.
private func sqliteFloor(runs: Int, directory: URL) throws -> Double {
    var configuration = Configuration()
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
    let pool = try DatabasePool(
        path: directory.appendingPathComponent("floor.sqlite").path,
        configuration: configuration
    )
    try pool.write { db in
        try db.execute(
            sql: """
                CREATE TABLE events(id INTEGER PRIMARY KEY, run TEXT, agent TEXT, payload BLOB);
                CREATE TABLE deliveries(id INTEGER PRIMARY KEY, event INTEGER, agent TEXT, run TEXT);
                """
        )
    }
    let payload = Data(#"{"n":5,"host":"10.0.0.1"}"#.utf8)
    let floorStart = DispatchTime.now()
    for run in 0..<runs {
        var delivery: Int64 = 0
        for step in 0..<10 {
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO events(run, agent, payload) VALUES (?, ?, ?)",
                    arguments: ["\(run)", "step_\(step)", payload]
                )
                let event = db.lastInsertedRowID
                try db.execute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery])
                try db.execute(
                    sql: "INSERT INTO deliveries(event, agent, run) VALUES (?, ?, ?)",
                    arguments: [event, "step_\(step + 1)", "\(run)"]
                )
                delivery = db.lastInsertedRowID
            }
        }
    }
    return Double(DispatchTime.now().uptimeNanoseconds - floorStart.uptimeNanoseconds) / 1e9
}

/// A benchmark that cannot report a number: a run that did not succeed, an answer not as expected.
struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
