import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QuarryAgents
import QuarryCore
import QuarryStories
import QuarryStoriesSQLite
import QuarryTesting
import Testing

/// `kill -9` of `quarry serve` in the middle of a run loses nothing: the next process resumes the pending
/// deliveries and the run completes with every event emitted once.
@Suite(.serialized, .mayBlock) struct CrashRecoveryTests {
    static let story = """
        name: crash test
        agents:
          - {name: Start, type: webhook, options: {secret: "0123456789abcdef-crash"}}
          - {name: Split, type: transform, receives_from: Start, options: {mode: explode, path: hosts, to: host}}
          - {name: Wait, type: transform, receives_from: Split, options: {mode: delay, seconds: 60}}
          - {name: Shape, type: transform, receives_from: Wait, options: {payload: {host: "{{ .split.host | upcase }}", guid: "{{ .split.guid }}", size: "{{ .split.size | as_object }}"}}}
          - {name: Gather, type: transform, receives_from: Shape, options: {mode: implode, guid_path: "{{ .shape.guid }}", size_path: "{{ .shape.size }}", item_path: "{{ .shape.host }}"}}
        """

    /// Starts `quarry serve` with the story and returns the process and the webhook port.
    static func serve(data: URL, stories: URL) async throws -> (Process, Int) {
        try await QuarryServerProcess.start(
            [
                "serve", "--data", data.path, "--stories", stories.path, "--es-port", "0", "--port", "0",
                "--log-level", "error",
            ],
            announcement: "Web app listening on"
        )
    }

    @Test(.timeLimit(.minutes(4))) func aRunKilledMidwayCompletesAfterRestart() async throws {
        try await withTemporaryDirectory { directory in
            let stories = directory.appendingPathComponent("stories-source")
            try FileManager.default.createDirectory(at: stories, withIntermediateDirectories: true)
            try Self.story.write(to: stories.appendingPathComponent("crash.yaml"), atomically: true, encoding: .utf8)
            let data = directory.appendingPathComponent("data")

            let (first, firstPort) = try await Self.serve(data: data, stories: stories)
            let client = HTTPClient.shared
            var request = HTTPClientRequest(
                url: "http://127.0.0.1:\(firstPort)/webhook/crash_test/0123456789abcdef-crash"
            )
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"hosts": ["web-1", "web-2", "db-1", "mail-1", "dns-1"]}"#))
            let response = try await client.execute(request, timeout: .seconds(10))
            #expect(response.status == .created)
            let answer = try JSON.parse(Array(buffer: try await response.body.collect(upTo: 1 << 16)))
            let guid = try #require(answer["run"]?.stringValue)

            // Kill once the five delayed deliveries wait (they are due 60 s after they were queued): read from the
            // engine's database rather than sleeping, so a loaded machine cannot make the kill come too late. (With
            // 30 s, a CI run's reads once came too late: the test process's reads waited behind other tests.)
            let observer = try await StoryEngine(
                directory: data.appendingPathComponent("stories"),
                environment: [:],
                services: AgentServices(BuiltInServices(httpClient: client)),
                agents: .builtIn
            )
            // A loop that ends as soon as the five are there (a `for … where` would go on reading to its end).
            var polls = 0
            while try await observer.events(run: guid, agent: "Wait").count < 5, polls < 1_200 {
                try await Task.sleep(for: .milliseconds(50))
                polls += 1
            }
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()

            let killed = try await observer.run(guid)
            let killedTimeline = try await observer.timeline(guid).map { $0.json.serialized() }
            #expect(killed?.status == .running, "\(String(describing: killed)): \(killedTimeline)")
            #expect(try await observer.pendingDeliveries() == 5)

            let (second, port) = try await Self.serve(data: data, stories: stories)
            defer { kill(second.processIdentifier, SIGKILL) }

            // The wrong secret, and a body that is not JSON.
            var wrong = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhook/crash_test/not-the-secret-at-all")
            wrong.method = .POST
            #expect(try await client.execute(wrong, timeout: .seconds(10)).status == .notFound)
            var bad = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhook/crash_test/0123456789abcdef-crash")
            bad.method = .POST
            bad.headers.add(name: "Content-Type", value: "application/json")
            bad.body = .bytes(ByteBuffer(string: "{not json"))
            let refused = try await client.execute(bad, timeout: .seconds(10))
            #expect(refused.status == .badRequest)
            let reason = try JSON.parse(Array(buffer: try await refused.body.collect(upTo: 1 << 16)))
            #expect(reason["error"]?.stringValue?.contains("not valid JSON") == true)

            let failed = try #require(try await observer.runs(story: "crash test").first { $0.status == .failed })
            #expect(failed.error?.contains("not valid JSON") == true)

            var record = try await observer.run(guid)
            for _ in 0..<2_400 where record?.status == .running {
                try await Task.sleep(for: .milliseconds(50))
                record = try await observer.run(guid)
            }
            let timeline = try await observer.timeline(guid).map { $0.json.serialized() }
            let pending = try await observer.pendingDeliveries()
            #expect(record?.status == .succeeded, "\(timeline) pending \(pending)")
            #expect(try await observer.events(run: guid, agent: "Split").count == 5)
            #expect(try await observer.events(run: guid, agent: "Wait").count == 5)
            #expect(try await observer.events(run: guid, agent: "Shape").count == 5)
            let gathered = try await observer.events(run: guid, agent: "Gather")
            #expect(gathered.count == 1)
            #expect(
                Set(gathered.first?.payload["items"]?.arrayValue ?? []) == [
                    "WEB-1", "WEB-2", "DB-1", "MAIL-1", "DNS-1",
                ]
            )
            #expect(gathered.first?.payload["complete"] == true)
        }
    }
}
