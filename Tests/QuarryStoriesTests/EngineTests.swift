import AsyncHTTPClient
import Clocks
import Foundation
import Logging
import QuarryAgents
import QuarryCore
import QuarryStories
import QuarryStoriesSQLite
import QuarryTesting
import Testing

@Suite(.mayBlock) struct EngineTests {
    /// A body that ends before the engine's task has started still stops it (the stop is not undone by the start),
    /// and the same engine runs again afterwards.
    /// The limit catches a stop that is lost (the dispatcher would then sleep its 60 s); it is three minutes, as the
    /// other tests', because the suite's first minutes on two cores made the twenty starts take over 60 s in CI.
    @Test(.timeLimit(.minutes(8))) func anEngineStopsAfterABodyThatEndsAtOnceAndRunsAgain() async throws {
        try await withTemporaryDirectory { directory in
            let engine = try await StoryEngine(
                directory: directory,
                environment: [:],
                configuration: .init(workers: 2),
                services: AgentServices(BuiltInServices(httpClient: .shared)),
                agents: .builtIn
            )
            for attempt in 0..<20 {
                #expect(try await engine.withRunning { attempt } == attempt)
            }
            try await engine.register(
                try Story(text: #"{"name": "again", "agents": [{"name": "Start", "type": "webhook"}]}"#)
            )
            let record = try await engine.withRunning {
                try await engine.waitForRun(try await engine.startRun(story: "again", payload: ["n": 1]))
            }
            #expect(record.status == .succeeded)
        }
    }

    @Test func aChainRunsAndRecordsItsTimeline() async throws {
        try await withEngine { engine, _ in
            let story = try Story(
                text: """
                    name: chain
                    agents:
                      - {name: Start, type: webhook}
                      - name: Shape
                        type: transform
                        receives_from: Start
                        options: {payload: {host: "{{ host | upcase }}", count: "{{ .start.count | plus: 1 | as_object }}"}}
                      - name: Big enough
                        type: trigger
                        receives_from: Shape
                        options: {rules: [{type: "field>=value", path: "{{ .shape.count }}", value: 10}]}
                      - name: Done
                        type: transform
                        receives_from: Big enough
                        options: {payload: {message: "{{ .shape.host }} has {{ .shape.count }}", matched: "{{ .big_enough.rule_matched | as_object }}"}}
                    """
            )
            try await engine.register(story)
            let guid = try await engine.startRun(story: "chain", payload: ["host": "web-1", "count": 9])
            let record = try await engine.waitForRun(guid)
            #expect(record.status == .succeeded)
            let done = try await engine.events(run: guid, agent: "Done")
            #expect(done.map(\.payload) == [["message": "WEB-1 has 10", "matched": true]])
            #expect(try await engine.timeline(guid).map(\.agent) == ["start", "shape", "big_enough", "done"])

            let small = try await engine.startRun(story: "chain", payload: ["host": "web-2", "count": 1])
            #expect(try await engine.waitForRun(small).status == .noMatch)
        }
    }

    /// Many runs at once through a chain, with 32 workers: every agent handles each event once (a delivery taken
    /// both from the hand-off list and from a read of the queue would emit twice).
    @Test func manyRunsAtOnceDeliverEachEventOnce() async throws {
        try await withTemporaryDirectory { directory in
            let engine = try await StoryEngine(
                directory: directory,
                environment: [:],
                configuration: .init(workers: 32),
                services: AgentServices(BuiltInServices(httpClient: .shared)),
                agents: .builtIn
            )
            var agents = [#"{"name": "Step 0", "type": "webhook"}"#]
            for step in 1..<6 {
                agents.append(
                    #"{"name": "Step \#(step)", "type": "transform", "receives_from": "Step \#(step - 1)", "options": {"payload": {"n": "{{ .step_\#(step - 1).n | plus: 1 | as_object }}"}}}"#
                )
            }
            try await engine.register(
                try Story(text: #"{"name": "chain", "agents": [\#(agents.joined(separator: ","))]}"#)
            )
            try await engine.withRunning {
                var guids: [String] = []
                for run in 0..<400 {
                    guids.append(try await engine.startRun(story: "chain", payload: ["n": .int(Int64(run))]))
                }
                for (run, guid) in guids.enumerated() {
                    #expect(try await engine.waitForRun(guid).status == .succeeded)
                    let events = try await engine.events(run: guid)
                    #expect(events.map(\.agent) == ["step_0", "step_1", "step_2", "step_3", "step_4", "step_5"])
                    #expect(events.last?.payload["n"]?.intValue == Int64(run + 5))
                }
            }
        }
    }

    @Test func loopsNeedATriggerAndAliasesNameAgentsOfTheStory() throws {
        let story = try Story(
            text: """
                name: loops
                aliases: {Fetch: [Fetch 1, Fetch 2], Start: [Start], Ghosts: [Nobody]}
                agents:
                  - {name: Start, type: webhook}
                  - {name: Fetch 1, type: http_request, receives_from: [Start, Again], options: {url: "http://x/{{ .fetch.n }}"}}
                  - {name: More, type: trigger, receives_from: Fetch 1, options: {rules: [{type: regex, path: x, value: y}]}}
                  - {name: Again, type: transform, receives_from: More, options: {payload: {n: "{{ .fetch.n }}"}}}
                  - {name: Fetch 2, type: http_request, receives_from: [Start, Spin], options: {url: "http://x/"}}
                  - {name: Spin, type: transform, receives_from: Fetch 2}
                  - {name: Old, type: Agents::ImapAgent, disabled: true, receives_from: Start, options: {host: imap}}
                """
        )
        let problems = StoryLinter.problems(in: story, agents: .builtIn)
        let messages = problems.map(\.description)
        // The loop through the trigger "More" is fine; the one without a trigger is not.
        #expect(messages.filter { $0.contains("cycle") }.count == 1, "\(messages)")
        #expect(
            messages.contains { $0.contains("agents form a cycle with no trigger to end it") && $0.contains("spin") }
        )
        #expect(messages.contains("story: aliases.Start: an agent already has this name"))
        #expect(messages.contains("story: aliases.Ghosts: no agent named 'nobody' in this story"))
        // `.fetch` is an alias with a member upstream of "Again": not a dangling reference.
        #expect(!messages.contains { $0.contains("refers to '.fetch'") }, "\(messages)")
        // The disabled agent of an unknown type is a warning, not an error.
        let old = try #require(problems.first { $0.location.contains("(Old)") })
        #expect(old.isWarning)
        #expect(story.entryAgents.map(\.key) == ["start"])
    }

    @Test func aLoopWhoseTriggerNeverStopsEndsAtTheStorysEventLimit() async throws {
        try await withEngine { engine, _ in
            try await engine.register(
                try Story(
                    text: """
                        name: forever
                        max_run_events: 40
                        agents:
                          - {name: Start, type: webhook}
                          - {name: Spin, type: transform, receives_from: [Start, Again], options: {payload: {n: "{{ spin.n | plus: 1 }}"}}}
                          - {name: Again, type: trigger, receives_from: Spin, options: {rules: [{type: regex, path: "{{ spin.n }}", value: "."}]}}
                        """
                )
            )
            let guid = try await engine.startRun(story: "forever", payload: [:])
            let record = try await engine.waitForRun(guid)
            #expect(record.status == .failed)
            #expect(record.error?.contains("the run has emitted 40 events") == true, "\(record.error ?? "")")
            let count = try await engine.events(run: guid).filter { !$0.isError }.count
            #expect(count >= 40 && count <= 41, "\(count)")
        }
    }

    @Test func lintReportsEveryProblemWithItsAgentAndOption() async throws {
        let story = try Story(
            text: """
                name: broken
                agents:
                  - {name: Start, type: webhook}
                  - {name: Mystery, type: teleport, receives_from: Start}
                  - name: Search
                    type: elasticsearch
                    receives_from: [Start, Later]
                    options: {query: {size: 1}, colour: blue, index: "{{ .later.index }}"}
                  - name: Later
                    type: transform
                    receives_from: Search
                    options: {payload: "{% if %}"}
                  - name: Nowhere
                    type: trigger
                    receives_from: Ghost
                    options: {rules: [{type: "field~value", path: x}]}
                """
        )
        let problems = StoryLinter.problems(in: story, agents: .builtIn).map(\.description)
        #expect(problems.contains { $0.hasPrefix("agents[1] (Mystery): type: unknown agent type 'teleport'") })
        #expect(
            problems.contains { $0.hasPrefix("agents[2] (Search): options.colour: unknown option for elasticsearch") }
        )
        #expect(problems.contains { $0.hasPrefix("agents[3] (Later): options.payload: template error") })
        #expect(problems.contains { $0.contains("agents form a cycle") })
        #expect(problems.contains { $0 == "agents[4] (Nowhere): receives_from: no agent named 'ghost' in this story" })
        #expect(problems.contains { $0.hasPrefix("agents[4] (Nowhere): options.rules[0].type: unknown rule type") })
        #expect(problems.count >= 6)
        // The engine refuses the story with the same messages.
        let engineProblems = try await #require(
            throws: StoryProblems.self,
            performing: {
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lint-\(UUID())")
                defer { try? FileManager.default.removeItem(at: directory) }
                let engine = try await StoryEngine(
                    directory: directory,
                    services: AgentServices(BuiltInServices(httpClient: .shared)),
                    agents: .builtIn
                )
                try await engine.register(story)
            }
        )
        #expect(engineProblems.problems.map(\.description) == problems)
    }

    @Test func referencesMustPointUpstream() throws {
        let story = try Story(
            text: """
                {"name": "refs", "agents": [
                  {"name": "A", "type": "webhook"},
                  {"name": "B", "type": "transform", "receives_from": "A", "options": {"payload": "{{ .c.x }} {{ 'a.b' }} {{ .a.y }}"}},
                  {"name": "C", "type": "transform", "receives_from": "B", "options": {"payload": "{{ .nobody.z }}"}}
                ]}
                """
        )
        let problems = StoryLinter.problems(in: story, agents: .builtIn).map(\.description)
        #expect(
            problems == [
                "agents[1] (B): options.payload: refers to '.c', which is not upstream of this agent",
                "agents[2] (C): options.payload: refers to '.nobody', but no agent has that name",
            ]
        )
    }

    @Test func transformModesExplodeImplodeExtractDeduplicate() async throws {
        try await withTestClockEngine { engine, clock in
            try await engine.register(
                try Story(
                    text: """
                        name: modes
                        agents:
                          - {name: Start, type: webhook}
                          - {name: Split, type: transform, receives_from: Start, options: {mode: explode, path: items, to: item}}
                          - {name: Fresh, type: transform, receives_from: Split, options: {mode: deduplicate, path: "{{ .split.item }}", lookback: 100}}
                          - name: Words
                            type: transform
                            receives_from: Fresh
                            options: {mode: extract, matchers: [{path: "{{ .split.item }}", regexp: "([a-z]+)-\\\\d", to: words}]}
                          - name: Join
                            type: transform
                            receives_from: Words
                            options: {mode: implode, guid_path: "{{ .split.guid }}", size_path: "{{ .split.size }}", item_path: "{{ .words.words | first }}", timeout: 5}
                        """
                )
            )
            let guid = try await engine.startRun(
                story: "modes",
                payload: ["items": ["web-1", "db-2", "web-1", "mail-3"]]
            )
            // Only 3 of the 4 exploded items reach the implode: it emits what it has when its timeout comes, on the
            // engine's clock, moved once the three are there.
            try await eventually { try await engine.events(run: guid, agent: "Words").count == 3 }
            await clock.advance(by: .seconds(5))
            _ = try await engine.waitForRun(guid)
            #expect(try await engine.events(run: guid, agent: "Split").count == 4)
            #expect(try await engine.events(run: guid, agent: "Fresh").count == 3)
            // The engine's workers take the exploded items concurrently, so their events come in any order.
            let words = try await engine.events(run: guid, agent: "Words").map { $0.payload["words"] }
            #expect(words.count == 3)
            #expect(Set(words) == [["web"], ["db"], ["mail"]])
            let joined = try #require(try await engine.events(run: guid, agent: "Join").first?.payload)
            #expect(joined["complete"] == false)
            #expect(Set(joined["items"]?.arrayValue ?? []) == ["web", "db", "mail"])
        }
    }

    @Test func triggerRulesFollowTines() throws {
        func matches(_ type: String, _ path: JSON, _ value: JSON) throws -> Bool {
            try TriggerRules.matches(["type": .string(type), "path": path, "value": value])
        }
        #expect(try matches("regex", "Evil-CDN.example", "evil-cdn"))
        #expect(try !matches("!regex", "evil-cdn.example", "^evil"))
        #expect(try matches("field<value", "9", "10"))  // numbers, not text ("9" > "10" as text)
        #expect(try matches("field<=value", "10", "10"))
        #expect(try matches("field>value", "10.5", "9"))
        #expect(try matches("field>=value", "b", "a"))
        #expect(try matches("field==value", "dns", ["flow", "dns"]))
        #expect(try matches("field!=value", "dns", ["flow", "tls"]))
        #expect(try !matches("field!=value", "dns", ["flow", "dns"]))
        #expect(try matches("in", "10.0.0.1", ["10.0.0.1", "10.0.0.2"]))
        #expect(try matches("not in", "10.0.0.3", "10.0.0.1, 10.0.0.2"))
        #expect(throws: AgentError.self) { try matches("regex", "x", "(") }
    }

    @Test func credentialsAreEncryptedAndRedacted() async throws {
        let secret = "s3cr3t-api-key-\(UUID().uuidString)"
        try await withEngine { engine, directory in
            try engine.vault.setCredential("token", value: secret)
            #expect(try engine.vault.credential("token") == secret)
            let keyFile = directory.appendingPathComponent("engine/secret.key")
            let attributes = try FileManager.default.attributesOfItem(atPath: keyFile.path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            try await engine.register(
                try Story(
                    text: """
                        name: secrets
                        credentials: [token]
                        agents:
                          - {name: Start, type: webhook}
                          - {name: Echo, type: transform, receives_from: Start, options: {payload: {header: "Bearer {% credential token %}"}}}
                          - name: Leak
                            type: http_request
                            receives_from: Echo
                            retry: {max_attempts: 1}
                            options: {url: "http://127.0.0.1:1/{{ .CREDENTIAL.token }}"}
                        """
                )
            )
            let guid = try await engine.startRun(story: "secrets", payload: [:])
            let record = try await engine.waitForRun(guid)
            #expect(record.status == .failed)
            #expect(try await engine.events(run: guid, agent: "Echo").first?.payload["header"] == "Bearer [redacted]")
            #expect(record.error?.contains("[redacted]") == true)
            #expect(record.error?.contains(secret) == false)
            // Nowhere in the database files, encrypted or not.
            let engineDirectory = directory.appendingPathComponent("engine")
            let files = try FileManager.default.contentsOfDirectory(atPath: engineDirectory.path)
                .filter { $0.hasPrefix("stories.sqlite") }
            #expect(files.contains("stories.sqlite"))
            for file in files {
                let bytes = try Data(contentsOf: engineDirectory.appendingPathComponent(file))
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file)")
            }
            // Nor in the log, where the failure was reported.
            let logged = LogCapture.shared.text
            #expect(logged.contains("agent failed"))
            #expect(!logged.contains(secret))
        }
    }

    @Test func largePayloadsLiveInCompressedFiles() async throws {
        try await withEngine { engine, directory in
            try await engine.register(
                try Story(
                    text: """
                        name: large
                        agents:
                          - {name: Start, type: webhook}
                          - {name: Copy, type: transform, receives_from: Start, options: {payload: "{{ .start.hits | as_object }}"}}
                        """
                )
            )
            let hits = JSON.array(
                (0..<20_000).map {
                    [
                        "_id": .string("doc-\($0)"),
                        "_source": ["client": ["ip": .string("10.0.\($0 / 256).\($0 % 256)")]],
                    ]
                }
            )
            let guid = try await engine.startRun(story: "large", payload: ["hits": hits])
            #expect(try await engine.waitForRun(guid).status == .succeeded)
            #expect(try await engine.events(run: guid, agent: "Copy").first?.payload == hits)
            let files = try FileManager.default.contentsOfDirectory(
                atPath: directory.appendingPathComponent("engine/payloads").path
            )
            #expect(files.count == 3)  // the run's input, the webhook's event and the copy
            #expect(files.allSatisfy { $0.hasSuffix(".json.gz") })
        }
    }

    @Test func retentionRemovesExpiredEvents() async throws {
        try await withEngine { engine, _ in
            try await engine.register(
                try Story(
                    text: """
                        name: short-lived
                        agents:
                          - {name: Start, type: webhook}
                          - {name: Note, type: transform, receives_from: Start, keep_events_for: 1s, options: {payload: {n: 1}}}
                        """
                )
            )
            let guid = try await engine.startRun(story: "short-lived", payload: [:])
            _ = try await engine.waitForRun(guid)
            #expect(try await engine.events(run: guid, agent: "Note").count == 1)
            #expect(try await engine.sweep(at: engine.now() + 2) == 1)
            #expect(try await engine.events(run: guid, agent: "Note").isEmpty)
        }
    }

    @Test func cronSchedulesFollowTheirTimeZone() throws {
        let weekdays = try CronSchedule("0 9 * * mon-fri", timeZone: "Europe/Berlin")
        // Saturday 2026-03-28 12:00 UTC → Monday 2026-03-30 09:00 CEST (07:00 UTC, after the DST change).
        let next = try #require(weekdays.next(after: Date(timeIntervalSince1970: 1_774_699_200)))
        #expect(ISO8601.format(Int64(next.timeIntervalSince1970 * 1000)) == "2026-03-30T07:00:00.000Z")
        let every15 = try CronSchedule("*/15 * * * *")
        let after = try #require(every15.next(after: Date(timeIntervalSince1970: 1_774_699_260)))
        #expect(Int(after.timeIntervalSince1970) % 900 == 0)
        #expect(throws: CronError.self) { try CronSchedule("61 * * * *") }
        #expect(throws: CronError.self) { try CronSchedule("* * *") }
        #expect(throws: CronError.self) { try CronSchedule("@daily", timeZone: "Mars/Olympus") }
    }

    @Test func webhookBodiesParseByContentType() throws {
        let form = try WebhookAgent.event(
            body: Array("domain=evil.example&window=4h&note=a+b%21".utf8),
            contentType: "application/x-www-form-urlencoded",
            query: [("source", "form")],
            headers: [("Authorization", "secret"), ("X-Team", "blue")],
            options: ["include_query": true, "include_headers": true]
        )
        #expect(form["domain"] == "evil.example")
        #expect(form["note"] == "a b!")
        #expect(form["query"]?["source"] == "form")
        #expect(form["headers"]?["x-team"] == "blue")
        #expect(form["headers"]?["authorization"] == nil)
        let multipart =
            "--XyZ\r\nContent-Disposition: form-data; name=\"domain\"\r\n\r\nevil.example\r\n--XyZ\r\nContent-Disposition: form-data; name=\"ioc\"; filename=\"list.txt\"\r\nContent-Type: text/plain\r\n\r\n1.2.3.4\r\n--XyZ--\r\n"
        let parsed = try WebhookAgent.event(
            body: Array(multipart.utf8),
            contentType: "multipart/form-data; boundary=XyZ",
            query: [],
            headers: [],
            options: [:]
        )
        #expect(parsed["domain"] == "evil.example")
        #expect(parsed["ioc"]?["content"] == "1.2.3.4")
        #expect(throws: AgentError.self) {
            try WebhookAgent.event(
                body: Array("{nope".utf8),
                contentType: "application/json",
                query: [],
                headers: [],
                options: [:]
            )
        }
    }
}
