import AsyncHTTPClient
public import Clocks
public import Foundation
public import Logging
public import QuarryAgents
public import QuarryCore
public import QuarryStories
import QuarryStoriesSQLite

/// Runs `body` with an engine on a fresh data directory (the SQLite store a server uses), started, and shuts
/// everything down afterwards.
public func withEngine<T>(
    environment: [String: String] = [:],
    trusting certificates: String? = nil,
    defaultCluster: (any SearchCluster)? = nil,
    _ body: (StoryEngine<ContinuousClock>, URL) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        try await withBuiltInServices(trusting: certificates, defaultCluster: defaultCluster) { services in
            let engine = try await StoryEngine(
                directory: directory.appendingPathComponent("engine"),
                environment: environment,
                configuration: .init(workers: 4),
                services: services,
                agents: .builtIn,
                logger: testLogger
            )
            return try await engine.withRunning { try await body(engine, directory) }
        }
    }
}

/// Runs `body` with an engine over a ``MemoryStoryStore`` whose time is a `TestClock`, started: the test moves the
/// clock (`await clock.advance(by: .seconds(30))`) instead of waiting for delays, retries and schedules.
public func withTestClockEngine<T>(
    _ body: (StoryEngine<TestClock<Duration>>, TestClock<Duration>) async throws -> T
) async throws -> T {
    let clock = TestClock()
    return try await withBuiltInServices(trusting: nil, defaultCluster: nil) { services in
        let engine = try await StoryEngine(
            store: MemoryStoryStore(),
            vaultKey: .random(),
            configuration: .init(workers: 4),
            clock: clock,
            services: services,
            agents: .builtIn,
            logger: testLogger
        )
        return try await engine.withRunning { try await body(engine, clock) }
    }
}

private let testLogger = Logger(label: "quarry.test") { LogCapture.Handler(label: $0) }

/// The built-in agents' services over an HTTP client that is shut down after `body`.
private func withBuiltInServices<T>(
    trusting certificates: String?,
    defaultCluster: (any SearchCluster)?,
    _ body: (AgentServices) async throws -> T
) async throws -> T {
    let client = BuiltInServices.makeHTTPClient(trustedCertificatesFile: certificates)
    let services = AgentServices(
        BuiltInServices(httpClient: client, defaultCluster: defaultCluster, trustedCertificatesFile: certificates)
    )
    do {
        let result = try await body(services)
        try await client.shutdown()
        return result
    } catch {
        try await client.shutdown()
        throw error
    }
}

/// A story of a webhook feeding one agent, run once; returns the run, the agent's events and the timeline.
public func runOne<EngineClock: Clock>(
    _ engine: StoryEngine<EngineClock>,
    type: String,
    options: JSON,
    input: JSON = [:],
    retry: JSON = ["max_attempts": 1],
    dryRun: Bool = false,
    credentials: [String] = []
) async throws -> (RunRecord, [EventRecord], [TimelineEntry]) {
    let name = "one-\(UUID().uuidString.prefix(8))"
    let source: JSON = [
        "name": .string(name), "credentials": .array(credentials.map { .string($0) }),
        "agents": [
            ["name": "Start", "type": "webhook"],
            ["name": "Agent", "type": .string(type), "receives_from": "Start", "retry": retry, "options": options],
        ],
    ]
    try await engine.register(try Story(text: source.serialized()))
    let guid = try await engine.startRun(story: name, payload: input, dryRun: dryRun)
    let record = try await engine.waitForRun(guid)
    return (record, try await engine.events(run: guid, agent: "Agent"), try await engine.timeline(guid))
}

/// Polls `condition` every 10 ms of real time, up to two minutes (the whole suite's start on two cores can take
/// that long): for what happens in an engine's tasks after a test moves its clock or starts a run.
public func eventually(_ condition: () async throws -> Bool) async throws {
    for _ in 0..<12_000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw LoopbackServers.ServerError("the condition did not hold within 120 s")
}

/// Every log line the engines of these tests write, to check what reaches a log.
public final class LogCapture: @unchecked Sendable {
    public static let shared = LogCapture()
    private let lock = NSLock()
    private var lines: [String] = []

    public var text: String { lock.withLock { lines.joined(separator: "\n") } }

    public struct Handler: LogHandler {
        public var label: String
        public var metadata: Logger.Metadata = [:]
        public var logLevel: Logger.Level = .info

        public init(label: String) { self.label = label }

        public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        public func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let line = "\(event.level) \(event.message) \(merged.map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
            LogCapture.shared.lock.withLock { LogCapture.shared.lines.append(line) }
        }
    }
}
