public import Foundation
import GRDB
public import Logging
import NIOConcurrencyHelpers
public import QuarryCore
import QuarryLiquid
public import ServiceLifecycle

/// Runs stories: every event stored before it is delivered, deliveries a durable queue, a bounded pool of workers.
///
/// An agent's work and the events it emits commit in one transaction that also removes the delivery, so after a
/// crash or `kill -9` at any point, the next engine on the same directory finds every delivery that had not
/// completed and performs it again: no accepted event is lost, and none is delivered twice in effect (an agent
/// whose work was cut off has emitted nothing). Side effects outside the database — an email sent, a POST made —
/// can repeat after a crash, as in any at-least-once system.
public final class StoryEngine: Service, Sendable {
    public struct Configuration: Sendable {
        public var directory: URL
        /// Deliveries processed at once: most agents wait on the network, and more deliveries at once also make
        /// larger group commits.
        public var workers: Int
        public var environment: [String: String]
        /// The base URL of the web interface, for `story_run_link`.
        public var baseURL: String

        public init(
            directory: URL,
            workers: Int = 32,
            environment: [String: String] = ProcessInfo.processInfo.environment,
            baseURL: String = "http://127.0.0.1:8080"
        ) {
            self.directory = directory
            self.workers = max(1, workers)
            self.environment = environment
            self.baseURL = baseURL
        }
    }

    public let configuration: Configuration
    /// What agents are handed in their context (see ``AgentServices``).
    public let services: AgentServices
    /// The agent types stories may use.
    public let agents: AgentRegistry
    public let vault: Vault
    let database: StoryDatabase
    let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let wake = WakeSignal()
    /// Wakes the scheduler early: when the engine stops.
    private let scheduleWake = WakeSignal()
    private let commits: GroupCommitter
    /// Events just emitted, so that the agents receiving them do not read them back from the database.
    private let recentEvents = NIOLockedValueBox(RecentEvents(capacity: 4_096))

    struct State {
        var stories: [String: CompiledStory] = [:]
        var claimed: Set<Int64> = []
        /// Serial agents (story/agent) with a delivery in progress.
        var busyAgents: Set<String> = []
        /// Deliveries just committed and already due, handed to the dispatcher without reading them back.
        var handedOff: [Delivery] = []
        var waiters: [String: [CheckedContinuation<RunRecord, Never>]] = [:]
        var stopping = false
        var lastSweep: Double = 0
    }

    public init(
        configuration: Configuration,
        services: AgentServices,
        agents: AgentRegistry,
        logger: Logger = Logger(label: "quarry.stories")
    )
        throws
    {
        self.configuration = configuration
        self.services = services
        self.agents = agents
        self.logger = logger
        database = try StoryDatabase(directory: configuration.directory)
        commits = GroupCommitter(pool: database.pool)
        vault = try Vault(
            database: database,
            directory: configuration.directory,
            environment: configuration.environment
        )
        // Stories registered before a restart come back, so that their pending deliveries resume.
        let sources = try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, source FROM stories").map {
                ($0["name"] as String, $0["source"] as String)
            }
        }
        for (name, source) in sources {
            do {
                let story = try Story(text: source)
                let compiled = try CompiledStory(story, agents: agents)
                state.withLockedValue { $0.stories[story.name] = compiled }
            } catch {
                logger.error("stored story cannot be loaded", metadata: ["story": "\(name)", "error": "\(error)"])
            }
        }
    }

    // MARK: Stories

    /// Checks `story` and makes it runnable (replacing a story of the same name); throws every problem the linter
    /// finds.
    public func register(_ story: Story) throws {
        let compiled = try CompiledStory(story, agents: agents)
        try generateWebhookSecrets(story)
        try database.pool.write { db in
            try db.cachedExecute(
                sql: "INSERT OR REPLACE INTO stories(name, source, updated) VALUES (?, ?, ?)",
                arguments: [story.name, story.source.serialized(), Date().timeIntervalSince1970]
            )
        }
        state.withLockedValue { $0.stories[story.name] = compiled }
    }

    /// A webhook whose secret is a credential (`secret: "{% credential NAME %}"`) gets a random one the first time
    /// its story is loaded on this installation, so that no two installations share a secret and none is in git.
    /// `quarry credentials show NAME` prints it for whoever sets up the callers.
    private func generateWebhookSecrets(_ story: Story) throws {
        for agent in story.agents where agent.isWebhook {
            guard let text = agent.options["secret"]?.stringValue,
                let match = text.firstMatch(of: #/^\s*\{%-?\s*credential\s+([A-Za-z0-9_\-]+)\s*-?%\}\s*$/#),
                story.credentials.contains(String(match.output.1))
            else { continue }
            let name = String(match.output.1)
            if try vault.credential(name) == nil {
                let bytes = (0..<24).map { _ in UInt8.random(in: 0...255) }
                let secret = Data(bytes).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                try vault.setCredential(name, value: secret)
                logger.notice(
                    "generated the webhook secret of a story",
                    metadata: ["story": "\(story.name)", "credential": "\(name)"]
                )
            }
        }
    }

    public func story(named name: String) -> Story? {
        state.withLockedValue { $0.stories[name]?.story }
    }

    public var storyNames: [String] { state.withLockedValue { $0.stories.keys.sorted() } }

    // MARK: Running

    /// Runs the workers and the schedules until graceful shutdown or cancellation, then waits for the deliveries
    /// in progress to finish; deliveries left by an earlier process resume. A ServiceLifecycle `Service`: run it in
    /// the process's `ServiceGroup`, or scoped with ``withRunning(_:)``.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.dispatch() }
                    group.addTask { await self.runSchedules() }
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
    }

    /// Runs the engine while `body` runs, then stops it and waits for the deliveries in progress.
    ///
    /// ```swift
    /// let guid = try await engine.withRunning {
    ///     try await engine.waitForRun(try engine.startRun(story: "hunt", payload: ["domain": "x.org"])).guid
    /// }
    /// ```
    public func withRunning<Result>(_ body: () async throws -> Result) async throws -> Result {
        // Cleared here, before the engine's task starts, so that a stop at the end of a body that finishes first is
        // never undone (an engine may run again after a stop).
        state.withLockedValue { $0.stopping = false }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            do {
                let result = try await body()
                stop()
                try await group.waitForAll()
                return result
            } catch {
                stop()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    /// Stops taking deliveries and ends the schedules; ``run()`` returns once the deliveries in progress end.
    private func stop() {
        state.withLockedValue { $0.stopping = true }
        wake.signal()
        scheduleWake.signal()
    }

    /// Starts a run of `story` with `payload` as the event of its entry agent (the one nothing feeds, or `entry`).
    /// Returns the run's guid once the run and its first deliveries are stored.
    @discardableResult
    public func startRun(story name: String, entry: String? = nil, payload: JSON, dryRun: Bool = false) throws -> String
    {
        guard let compiled = state.withLockedValue({ $0.stories[name] }) else {
            throw StoryEngineError("no story named '\(name)'")
        }
        let entryAgent: CompiledStory.Agent
        if let entry {
            guard let agent = compiled.agents[Story.snakeCase(entry)] else {
                throw StoryEngineError("story '\(name)' has no agent named '\(entry)'")
            }
            entryAgent = agent
        } else {
            guard let first = compiled.story.entryAgents.first, let agent = compiled.agents[first.key] else {
                throw StoryEngineError("story '\(name)' has no entry agent")
            }
            entryAgent = agent
        }
        let guid = UUID().uuidString.lowercased()
        let now = Date().timeIntervalSince1970
        let stored = try database.prepare(payload)
        try database.pool.write { db in
            try db.cachedExecute(
                sql: "INSERT INTO runs(guid, story, status, dry_run, started) VALUES (?, ?, 'running', ?, ?)",
                arguments: [guid, name, dryRun, now]
            )
            // The entry agent receives the starting payload as its input event (emitted by no agent).
            let event = try insertEvent(
                db,
                story: name,
                agent: "",
                run: guid,
                lineage: [:],
                payload: stored,
                expires: nil,
                isError: false,
                now: now
            )
            try db.cachedExecute(sql: "UPDATE runs SET entry_event = ? WHERE guid = ?", arguments: [event, guid])
            try db.cachedExecute(
                sql: "INSERT INTO deliveries(event, story, agent, run, not_before) VALUES (?, ?, ?, ?, ?)",
                arguments: [event, name, entryAgent.definition.key, guid, now]
            )
        }
        wake.signal()
        return guid
    }

    /// Records a run that could not start (a webhook body that does not parse), so that it shows with its error.
    @discardableResult
    public func recordFailedRun(story name: String, error message: String) throws -> String {
        let guid = UUID().uuidString.lowercased()
        let now = Date().timeIntervalSince1970
        try database.pool.write { db in
            try db.cachedExecute(
                sql:
                    "INSERT INTO runs(guid, story, status, dry_run, started, ended, error) VALUES (?, ?, 'failed', 0, ?, ?, ?)",
                arguments: [guid, name, now, now, message]
            )
        }
        return guid
    }

    /// The entry agent of the story called `name` (or snake-cased so) whose webhook `secret` renders to `secret`,
    /// with its rendered options; nil when there is none, so that a wrong secret and a wrong story look the same.
    public func webhook(story name: String, secret: String) -> (story: String, agent: AgentDefinition, options: JSON)? {
        webhooks(story: name).first { Self.constantTimeEqual(Array($0.secret.utf8), Array(secret.utf8)) }
            .map { ($0.story, $0.agent, $0.options) }
    }

    /// The secrets of the webhooks that start the story called `name`, for whoever sets up its callers.
    public func webhookSecrets(story name: String) -> [String] {
        webhooks(story: name).map(\.secret)
    }

    private func webhooks(
        story name: String
    ) -> [(story: String, agent: AgentDefinition, options: JSON, secret: String)] {
        let stories = state.withLockedValue { Array($0.stories.values) }
        guard let compiled = stories.first(where: { $0.story.name == name || Story.snakeCase($0.story.name) == name })
        else { return [] }
        // Secrets may be credentials: render with the story's own credentials (and nothing of any run).
        let context = RunStoryContext(
            engine: self,
            run: "",
            lineage: [:],
            credentials: CredentialAccess(vault: vault, story: compiled.story)
        )
        return compiled.story.agents.compactMap { definition in
            guard definition.isWebhook, let agent = compiled.agents[definition.key],
                let options = try? agent.templates.render([:], story: context),
                let secret = options["secret"]?.stringValue, !secret.isEmpty
            else { return nil }
            return (compiled.story.name, definition, options, secret)
        }
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// Waits until run `guid` has no pending delivery, and returns its record.
    public func waitForRun(_ guid: String) async throws -> RunRecord {
        guard let record = try run(guid) else { throw StoryEngineError("no run \(guid)") }
        if record.status != .running { return record }
        return await withCheckedContinuation { continuation in
            let finished: RunRecord? = state.withLockedValue { state in
                if let again = try? run(guid), again.status != .running { return again }
                state.waiters[guid, default: []].append(continuation)
                return nil
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    // MARK: Records

    public func run(_ guid: String) throws -> RunRecord? {
        try database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE guid = ?", arguments: [guid]).map(Self.runRecord)
        }
    }

    public func runs(story: String? = nil, limit: Int = 50) throws -> [RunRecord] {
        try database.pool.read { db in
            if let story {
                return try Row.fetchAll(
                    db,
                    sql: "SELECT * FROM runs WHERE story = ? ORDER BY started DESC LIMIT ?",
                    arguments: [story, limit]
                ).map(Self.runRecord)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM runs ORDER BY started DESC LIMIT ?", arguments: [limit])
                .map(Self.runRecord)
        }
    }

    public func timeline(_ guid: String) throws -> [TimelineEntry] {
        try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM timeline WHERE run = ? ORDER BY id", arguments: [guid]).map {
                row in
                TimelineEntry(
                    agent: row["agent"],
                    event: row["event"],
                    attempt: row["attempt"],
                    started: row["started"],
                    ended: row["ended"],
                    outcome: TimelineEntry.Outcome(rawValue: row["outcome"]) ?? .failed,
                    emitted: row["emitted"],
                    message: row["message"]
                )
            }
        }
    }

    /// The events of run `guid` in the order they were emitted (`agent` filters by snake-cased agent name).
    public func events(run guid: String, agent: String? = nil) throws -> [EventRecord] {
        let rows = try database.pool.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT id, agent, run, created, payload, payload_file, error FROM events WHERE run = ? AND agent != '' ORDER BY id",
                arguments: [guid]
            )
        }
        return try rows.compactMap { row in
            let name: String = row["agent"]
            if let agent, Story.snakeCase(agent) != name { return nil }
            return EventRecord(
                id: row["id"],
                agent: name,
                run: row["run"],
                created: row["created"],
                payload: try database.payload(inline: row["payload"], file: row["payload_file"]),
                isError: row["error"]
            )
        }
    }

    /// The number of deliveries waiting (all runs).
    public func pendingDeliveries() throws -> Int {
        try database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries") ?? 0 }
    }

    static func runRecord(_ row: Row) -> RunRecord {
        RunRecord(
            guid: row["guid"],
            story: row["story"],
            status: RunRecord.Status(rawValue: row["status"]) ?? .failed,
            dryRun: row["dry_run"],
            started: row["started"],
            ended: row["ended"],
            error: row["error"]
        )
    }

    // MARK: Dispatching

    struct Delivery: Sendable {
        var id: Int64
        var event: Int64
        var story: String
        var agent: String
        var run: String
        var attempts: Int
        var timer: String?
        var dryRun: Bool
    }

    private func dispatch() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            while !state.withLockedValue({ $0.stopping }) {
                sweepIfDue()
                let (ready, nextDue): ([Delivery], Double?)
                do {
                    (ready, nextDue) = try claimReady(limit: configuration.workers * 2)
                } catch {
                    logger.error("cannot read the delivery queue", metadata: ["error": "\(error)"])
                    await wake.wait(seconds: 1)
                    continue
                }
                if ready.isEmpty {
                    let seconds = nextDue.map { max(0.001, $0 - Date().timeIntervalSince1970) } ?? 60
                    await wake.wait(seconds: min(seconds, 60))
                    continue
                }
                for delivery in ready {
                    if running >= configuration.workers {
                        await group.next()
                        running -= 1
                    }
                    running += 1
                    group.addTask {
                        await self.perform(delivery)
                        self.state.withLockedValue { state in
                            state.claimed.remove(delivery.id)
                            state.busyAgents.remove("\(delivery.story)/\(delivery.agent)")
                        }
                        self.wake.signal()
                    }
                }
            }
            await group.waitForAll()
        }
    }

    /// Due deliveries not already in progress, oldest first, marked as claimed; and when the next one is due.
    private func claimReady(limit: Int) throws -> ([Delivery], Double?) {
        let handedOff = state.withLockedValue { state -> [Delivery] in
            var taken: [Delivery] = []
            var kept: [Delivery] = []
            for delivery in state.handedOff {
                if taken.count < limit, !state.claimed.contains(delivery.id), admit(delivery, &state) {
                    state.claimed.insert(delivery.id)
                    taken.append(delivery)
                } else if !state.claimed.contains(delivery.id) {
                    kept.append(delivery)
                }
            }
            state.handedOff = kept
            return taken
        }
        if !handedOff.isEmpty { return (handedOff, nil) }
        let now = Date().timeIntervalSince1970
        let claimed = state.withLockedValue { $0.claimed }
        let rows = try database.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.id, d.event, d.story, d.agent, d.run, d.attempts, d.timer, r.dry_run
                    FROM deliveries d LEFT JOIN runs r ON r.guid = d.run
                    WHERE d.not_before <= ? ORDER BY d.id LIMIT ?
                    """,
                arguments: [now, limit + claimed.count]
            )
        }
        var ready: [Delivery] = []
        for row in rows {
            let id: Int64 = row["id"]
            if claimed.contains(id) { continue }
            let delivery = Delivery(
                id: id,
                event: row["event"],
                story: row["story"],
                agent: row["agent"],
                run: row["run"],
                attempts: row["attempts"],
                timer: row["timer"],
                dryRun: row["dry_run"] ?? false
            )
            let admitted = state.withLockedValue { state -> Bool in
                guard !state.claimed.contains(id), admit(delivery, &state) else { return false }
                state.claimed.insert(id)
                // Claimed here, so never again from the hand-off list once it has completed.
                if !state.handedOff.isEmpty { state.handedOff.removeAll { $0.id == id } }
                return true
            }
            if admitted { ready.append(delivery) }
            if ready.count == limit { break }
        }
        var nextDue: Double?
        if ready.isEmpty {
            nextDue = try database.pool.read { db in
                try Double.fetchOne(db, sql: "SELECT MIN(not_before) FROM deliveries")
            }
        }
        return (ready, nextDue)
    }

    /// One delivery at a time for an agent that keeps memory between events: admits `delivery` unless another
    /// of its serial agent is in progress.
    private func admit(_ delivery: Delivery, _ state: inout State) -> Bool {
        guard state.stories[delivery.story]?.agents[delivery.agent]?.instance.isSerial == true else { return true }
        return state.busyAgents.insert("\(delivery.story)/\(delivery.agent)").inserted
    }

    // MARK: Performing one delivery

    private func perform(_ delivery: Delivery) async {
        let started = Date().timeIntervalSince1970
        guard let compiled = state.withLockedValue({ $0.stories[delivery.story] }),
            let agent = compiled.agents[delivery.agent]
        else {
            await fail(
                delivery,
                message: "story '\(delivery.story)' or its agent '\(delivery.agent)' is not registered",
                started: started
            )
            return
        }
        let context: RunStoryContext
        let input: AgentInput
        let event: (payload: JSON, lineage: [String: Int64])
        let dryRun: Bool
        do {
            event = try loadEvent(delivery.event)
            dryRun = delivery.dryRun
            let credentials = CredentialAccess(vault: vault, story: compiled.story)
            context = RunStoryContext(
                engine: self,
                run: delivery.run,
                lineage: event.lineage,
                credentials: credentials
            )
            var variables = event.payload.objectValue ?? [:]
            for (name, id) in event.lineage where variables[name] == nil && agent.namedAgents.contains(name) {
                variables[name] = try context.payload(of: id)
            }
            let options = try agent.templates.render(variables, story: context)
            input = AgentInput(event: event.payload, options: options)
            let agentContext = AgentContext(
                storyName: delivery.story,
                agent: agent.definition,
                runGUID: delivery.run,
                dryRun: dryRun,
                services: services,
                memory: AgentMemory(database: database, story: delivery.story, agent: delivery.agent),
                logger: logger,
                attempt: delivery.attempts + 1,
                variables: variables,
                vault: vault,
                credentials: credentials,
                runStory: { [self] name, payload in try await self.runSubStory(name, payload: payload) }
            )
            let output = try await withTimeout(agent.definition.timeout) {
                if let timer = delivery.timer {
                    return try await agent.instance.timerFired(try JSON.parse(timer), context: agentContext)
                }
                return try await agent.instance.receive(input, context: agentContext)
            }
            try await complete(
                delivery,
                agent: agent,
                compiled: compiled,
                lineage: event.lineage,
                output: output,
                started: started
            )
        } catch {
            // Retryable failures and timeouts get another attempt while the agent's policy allows one.
            var mayPass = error is AgentTimeout
            if (error as? AgentError)?.isRetryable == true { mayPass = true }
            let policy = compiled.agents[delivery.agent]?.definition.retry ?? RetryPolicy()
            if mayPass && delivery.attempts + 1 < policy.maximumAttempts {
                await retry(delivery, policy: policy, message: "\(error)", started: started)
            } else {
                await fail(delivery, message: "\(error)", started: started)
            }
        }
    }

    /// Runs story `name` to its end and returns its result: the exit agent's last event.
    func runSubStory(_ name: String, payload: JSON) async throws -> JSON {
        let guid: String
        do {
            guid = try startRun(story: name, payload: payload)
        } catch {
            throw AgentError.failed("\(error)")
        }
        let record = try await waitForRun(guid)
        guard let compiled = state.withLockedValue({ $0.stories[name] }) else {
            throw AgentError.failed("no story named '\(name)'")
        }
        let result = try events(run: guid).last { !$0.isError && compiled.isTerminal($0.agent) }
        if record.status == .failed {
            throw AgentError.failed("story '\(name)' failed (run \(guid)): \(record.error ?? "")")
        }
        var event = result?.payload.objectValue ?? [:]
        event["story_run"] = .string(guid)
        if result == nil { event["status"] = .string(record.status.rawValue) }
        return .object(event)
    }

    /// An event's payload and lineage (the event of each agent it descends from, itself included): from the
    /// cache of recent events, else from the database.
    func loadEvent(_ id: Int64) throws -> (payload: JSON, lineage: [String: Int64]) {
        if let cached = recentEvents.withLockedValue({ $0.get(id) }) { return cached }
        guard
            let row = try database.pool.read({ db in
                try Row.fetchOne(
                    db,
                    sql: "SELECT agent, lineage, payload, payload_file FROM events WHERE id = ?",
                    arguments: [id]
                )
            })
        else { throw StoryEngineError("event \(id) is gone (removed by retention before its delivery)") }
        let payload = try database.payload(inline: row["payload"], file: row["payload_file"])
        var lineage: [String: Int64] = [:]
        if let object = try JSON.parse(row["lineage"] as String).objectValue {
            for (name, value) in object { if let id = value.intValue { lineage[name] = id } }
        }
        let agent: String = row["agent"]
        if !agent.isEmpty { lineage[agent] = id }
        recentEvents.withLockedValue { $0.put(id, (payload, lineage)) }
        return (payload, lineage)
    }

    /// Stores what the agent emitted, queues its deliveries and removes this one, in one transaction.
    private func complete(
        _ delivery: Delivery,
        agent: CompiledStory.Agent,
        compiled: CompiledStory,
        lineage: [String: Int64],
        output: AgentOutput,
        started: Double
    ) async throws {
        let redaction = Redaction(secrets: vault.redactedValues)
        let now = Date().timeIntervalSince1970
        let redacted = output.events.map { redaction.redact($0) }
        let prepared = try redacted.map { try database.prepare($0) }
        let expires = agent.definition.keepEventsFor.map { now + $0 }
        var note: String?
        if !output.skipped.isEmpty { note = "dry run: " + output.skipped.joined(separator: "; ") }
        let message = note
        let (finished, emitted, queued) = try await commits.write {
            [self] db -> (RunRecord?, [(Int64, JSON)], [Delivery]) in
            var emitted: [(Int64, JSON)] = []
            var queued: [Delivery] = []
            for (index, stored) in prepared.enumerated() {
                let id = try insertEvent(
                    db,
                    story: delivery.story,
                    agent: delivery.agent,
                    run: delivery.run,
                    lineage: lineage,
                    payload: stored,
                    expires: expires,
                    isError: false,
                    now: now
                )
                emitted.append((id, redacted[index]))
                for receiver in agent.receivers {
                    try db.cachedExecute(
                        sql: "INSERT INTO deliveries(event, story, agent, run, not_before) VALUES (?, ?, ?, ?, ?)",
                        arguments: [id, delivery.story, receiver, delivery.run, now + output.deliverAfter]
                    )
                    if output.deliverAfter <= 0 {
                        queued.append(
                            Delivery(
                                id: db.lastInsertedRowID,
                                event: id,
                                story: delivery.story,
                                agent: receiver,
                                run: delivery.run,
                                attempts: 0,
                                timer: nil,
                                dryRun: delivery.dryRun
                            )
                        )
                    }
                }
            }
            for timer in output.timers {
                try db.cachedExecute(
                    sql: """
                        INSERT INTO deliveries(event, story, agent, run, not_before, timer, timer_key)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        delivery.event, delivery.story, delivery.agent, delivery.run, now + timer.after,
                        timer.payload.serialized(), timer.key,
                    ]
                )
            }
            for key in output.cancelledTimers {
                try db.cachedExecute(
                    sql: "DELETE FROM deliveries WHERE run = ? AND agent = ? AND timer_key = ? AND id != ?",
                    arguments: [delivery.run, delivery.agent, key, delivery.id]
                )
            }
            try db.cachedExecute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
            try insertTimeline(
                db,
                delivery,
                started: started,
                outcome: prepared.isEmpty ? .nothing : .emitted,
                emitted: prepared.count,
                message: message.map { redaction.redact($0) }
            )
            return (try finishRunIfDone(db, run: delivery.run, compiled: compiled), emitted, queued)
        }
        if !queued.isEmpty { state.withLockedValue { $0.handedOff += queued } }
        recentEvents.withLockedValue { cache in
            for (id, payload) in emitted {
                var eventLineage = lineage
                eventLineage[delivery.agent] = id
                cache.put(id, (payload, eventLineage))
            }
        }
        if let finished { notify(finished) }
    }

    private func insertEvent(
        _ db: Database,
        story: String,
        agent: String,
        run: String,
        lineage: [String: Int64],
        payload: StoryDatabase.StoredPayload,
        expires: Double?,
        isError: Bool,
        now: Double
    ) throws -> Int64 {
        // The lineage stored is the ancestors'; the event itself is added when it is read (see `loadEvent`).
        var ancestors = JSONObject()
        for (name, event) in lineage.sorted(by: { $0.key < $1.key }) { ancestors[name] = .int(event) }
        try db.cachedExecute(
            sql: """
                INSERT INTO events(story, agent, run, lineage, created, expires, payload, payload_file, size, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                story, agent, run, JSON.object(ancestors).serialized(), now, expires, payload.inline, payload.file,
                payload.size, isError,
            ]
        )
        return db.lastInsertedRowID
    }

    private func insertTimeline(
        _ db: Database,
        _ delivery: Delivery,
        started: Double,
        outcome: TimelineEntry.Outcome,
        emitted: Int,
        message: String?
    ) throws {
        try db.cachedExecute(
            sql: """
                INSERT INTO timeline(run, agent, event, attempt, started, ended, outcome, emitted, message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                delivery.run, delivery.agent, delivery.event, delivery.attempts + 1, started,
                Date().timeIntervalSince1970, outcome.rawValue, emitted, message,
            ]
        )
    }

    private func retry(_ delivery: Delivery, policy: RetryPolicy, message: String, started: Double) async {
        let delay = policy.delay(afterAttempt: delivery.attempts + 1)
        let redaction = Redaction(secrets: vault.redactedValues)
        do {
            try await commits.write { [self] db in
                try db.cachedExecute(
                    sql: "UPDATE deliveries SET attempts = attempts + 1, not_before = ? WHERE id = ?",
                    arguments: [Date().timeIntervalSince1970 + delay, delivery.id]
                )
                try insertTimeline(
                    db,
                    delivery,
                    started: started,
                    outcome: .retrying,
                    emitted: 0,
                    message: redaction.redact(message)
                        + String(format: " (next attempt in %.1f s)", delay)
                )
            }
        } catch {
            logger.error("cannot schedule a retry", metadata: ["run": "\(delivery.run)", "error": "\(error)"])
        }
    }

    /// Records the failure as an error event of the agent (not delivered) and ends the delivery.
    private func fail(_ delivery: Delivery, message rawMessage: String, started: Double) async {
        let redaction = Redaction(secrets: vault.redactedValues)
        let message = redaction.redact(rawMessage)
        logger.warning(
            "agent failed",
            metadata: [
                "story": "\(delivery.story)", "agent": "\(delivery.agent)", "run": "\(delivery.run)",
                "error": "\(message)",
            ]
        )
        let compiled = state.withLockedValue { $0.stories[delivery.story] }
        do {
            let now = Date().timeIntervalSince1970
            let payload: JSON = [
                "error": ["message": .string(message), "attempts": .int(Int64(delivery.attempts + 1))]
            ]
            let stored = try database.prepare(payload)
            let finished = try await commits.write { [self] db -> RunRecord? in
                _ = try insertEvent(
                    db,
                    story: delivery.story,
                    agent: delivery.agent,
                    run: delivery.run,
                    lineage: [:],
                    payload: stored,
                    expires: nil,
                    isError: true,
                    now: now
                )
                try db.cachedExecute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
                try insertTimeline(db, delivery, started: started, outcome: .failed, emitted: 0, message: message)
                try db.cachedExecute(
                    sql: "UPDATE runs SET error = COALESCE(error, ?) WHERE guid = ?",
                    arguments: ["\(delivery.agent): \(message)", delivery.run]
                )
                return try finishRunIfDone(db, run: delivery.run, compiled: compiled)
            }
            if let finished { notify(finished) }
        } catch {
            logger.error("cannot record a failure", metadata: ["run": "\(delivery.run)", "error": "\(error)"])
        }
    }

    /// Ends the run when nothing is pending: failed if an agent failed, succeeded if an agent at the end of the
    /// story emitted, no match otherwise.
    private func finishRunIfDone(_ db: Database, run: String, compiled: CompiledStory?) throws -> RunRecord? {
        let pending =
            try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM deliveries WHERE run = ?"), arguments: [run])
            ?? 0
        guard pending == 0 else { return nil }
        let failed =
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS(SELECT 1 FROM timeline WHERE run = ? AND outcome = 'failed')",
                arguments: [run]
            ) ?? false
        var status = RunRecord.Status.noMatch
        if failed {
            status = .failed
        } else if let compiled {
            let agents = try String.fetchAll(
                db,
                sql: "SELECT DISTINCT agent FROM events WHERE run = ? AND error = 0 AND agent != ''",
                arguments: [run]
            )
            if agents.contains(where: compiled.isTerminal) { status = .succeeded }
        }
        try db.cachedExecute(
            sql: "UPDATE runs SET status = ?, ended = ? WHERE guid = ? AND status = 'running'",
            arguments: [status.rawValue, Date().timeIntervalSince1970, run]
        )
        return try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE guid = ?", arguments: [run]).map(Self.runRecord)
    }

    private func notify(_ record: RunRecord) {
        let waiters = state.withLockedValue { $0.waiters.removeValue(forKey: record.guid) ?? [] }
        for waiter in waiters { waiter.resume(returning: record) }
    }

    // MARK: Retention

    /// At most once a minute: removes events past their agent's `keep_events_for`, and the oldest events of a
    /// story beyond its `max_events`, except events a pending delivery still needs.
    private func sweepIfDue() {
        let now = Date().timeIntervalSince1970
        let due = state.withLockedValue { state -> Bool in
            guard now - state.lastSweep >= 60 else { return false }
            state.lastSweep = now
            return true
        }
        guard due else { return }
        do {
            try sweep(now: now)
        } catch {
            logger.error("retention sweep failed", metadata: ["error": "\(error)"])
        }
    }

    /// Applies retention now; returns the number of events removed.
    @discardableResult
    public func sweep(now: Double = Date().timeIntervalSince1970) throws -> Int {
        let limits = state.withLockedValue { $0.stories.mapValues(\.story.maxEvents) }
        let (removed, files) = try database.pool.write { db -> (Int, [String]) in
            var doomed = try Int64.fetchAll(
                db,
                sql: """
                    SELECT id FROM events WHERE expires IS NOT NULL AND expires < ?
                    AND id NOT IN (SELECT event FROM deliveries)
                    """,
                arguments: [now]
            )
            for (story, limit) in limits where limit > 0 {
                doomed += try Int64.fetchAll(
                    db,
                    sql: """
                        SELECT id FROM events WHERE story = ? AND id NOT IN (SELECT event FROM deliveries)
                        ORDER BY id DESC LIMIT -1 OFFSET ?
                        """,
                    arguments: [story, limit]
                )
            }
            doomed = Array(Set(doomed))
            guard !doomed.isEmpty else { return (0, []) }
            var files: [String] = []
            for chunk in stride(from: 0, to: doomed.count, by: 500) {
                let ids = Array(doomed[chunk..<min(chunk + 500, doomed.count)])
                let list = ids.map(String.init).joined(separator: ",")
                files += try String.fetchAll(
                    db,
                    sql: "SELECT payload_file FROM events WHERE id IN (\(list)) AND payload_file IS NOT NULL"
                )
                try db.execute(sql: "DELETE FROM events WHERE id IN (\(list))")
            }
            return (doomed.count, files)
        }
        for file in files { database.removePayloadFile(file) }
        return removed
    }

    // MARK: Schedules

    /// Starts a run at each agent with a schedule when its cron expression comes due.
    private func runSchedules() async {
        var nextFire: [String: Date] = [:]
        while !state.withLockedValue({ $0.stopping }) {
            let now = Date()
            let stories = state.withLockedValue { Array($0.stories.values) }
            var earliest = now.addingTimeInterval(60)
            for compiled in stories {
                for agent in compiled.story.agents {
                    for (index, definition) in agent.schedules.enumerated() {
                        guard let schedule = try? CronSchedule(definition.cron, timeZone: definition.timeZone) else {
                            continue
                        }
                        let key = "\(compiled.story.name)/\(agent.key)/\(index)/\(definition.cron)"
                        guard let due = nextFire[key] ?? schedule.next(after: now) else { continue }
                        if due <= now {
                            do {
                                try startRun(
                                    story: compiled.story.name,
                                    entry: agent.key,
                                    payload: [
                                        "scheduled_at": .string(isoTime(due.timeIntervalSince1970)),
                                        "cron": .string(definition.cron),
                                    ]
                                )
                            } catch {
                                logger.error(
                                    "scheduled run failed to start",
                                    metadata: ["story": "\(compiled.story.name)", "error": "\(error)"]
                                )
                            }
                            nextFire[key] = schedule.next(after: now)
                        } else {
                            nextFire[key] = due
                        }
                        if let next = nextFire[key], next < earliest { earliest = next }
                    }
                }
            }
            await scheduleWake.wait(seconds: max(0.05, min(60, earliest.timeIntervalSinceNow)))
        }
    }
}

public struct StoryEngineError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The most recent events by id, up to a capacity; the oldest are forgotten first.
struct RecentEvents {
    let capacity: Int
    private var entries: [Int64: (payload: JSON, lineage: [String: Int64])] = [:]
    private var order: [Int64] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    func get(_ id: Int64) -> (payload: JSON, lineage: [String: Int64])? { entries[id] }

    mutating func put(_ id: Int64, _ event: (payload: JSON, lineage: [String: Int64])) {
        if entries.updateValue(event, forKey: id) != nil { return }
        if order.count < capacity {
            order.append(id)
        } else {
            entries[order[head]] = nil
            order[head] = id
            head = (head + 1) % capacity
        }
    }
}
