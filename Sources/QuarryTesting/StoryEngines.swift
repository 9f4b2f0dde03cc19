import AsyncHTTPClient
public import Foundation
public import Logging
public import QuarryAgents
public import QuarryCore
public import QuarryStories

/// Runs `body` with an engine on a fresh directory, started, and shuts everything down afterwards.
public func withEngine<T>(
    environment: [String: String] = [:],
    trusting certificates: String? = nil,
    defaultCluster: (any SearchCluster)? = nil,
    _ body: (StoryEngine, URL) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        let client = BuiltInServices.makeHTTPClient(trustedCertificatesFile: certificates)
        let engine = try StoryEngine(
            configuration: .init(
                directory: directory.appendingPathComponent("engine"),
                workers: 4,
                environment: environment
            ),
            services: AgentServices(
                BuiltInServices(
                    httpClient: client,
                    defaultCluster: defaultCluster,
                    trustedCertificatesFile: certificates
                )
            ),
            agents: .builtIn,
            logger: Logger(label: "quarry.test") { LogCapture.Handler(label: $0) }
        )
        do {
            let result = try await engine.withRunning { try await body(engine, directory) }
            try await client.shutdown()
            return result
        } catch {
            try await client.shutdown()
            throw error
        }
    }
}

/// A story of a webhook feeding one agent, run once; returns the run, the agent's events and the timeline.
public func runOne(
    _ engine: StoryEngine,
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
    try engine.register(try Story(text: source.serialized()))
    let guid = try engine.startRun(story: name, payload: input, dryRun: dryRun)
    let record = try await engine.waitForRun(guid)
    return (record, try engine.events(run: guid, agent: "Agent"), try engine.timeline(guid))
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
