import Foundation
public import Logging
import NIOConcurrencyHelpers
public import QuarryCore
import QuarryLiquid
public import ServiceLifecycle

/// Runs stories: every event stored before it is delivered, deliveries a durable queue, a bounded pool of workers.
///
/// An agent's work and the events it emits commit in one transaction of the ``StoryStore`` that also removes the
/// delivery, so after a crash or `kill -9` at any point, the next engine on the same store finds every delivery that
/// had not completed and performs it again: no accepted event is lost, and none is delivered twice in effect (an
/// agent whose work was cut off has emitted nothing). Side effects outside the store — an email sent, a POST made —
/// can repeat after a crash, as in any at-least-once system.
///
/// Time comes from `clock` alone: delays, retries, timeouts, schedules and retention all wait on it, so a test
/// clock moves a story through an hour of retries at once. Wall-clock times (run records, cron) are the clock's
/// instants counted from the moment the engine was created.
public final class StoryEngine<EngineClock: Clock>: Service, Sendable where EngineClock.Duration == Duration {
    public struct Configuration: Sendable {
        /// Deliveries processed at once: most agents wait on the network, and more deliveries at once also make
        /// larger group commits.
        public var workers: Int
        /// The base URL of the web interface, for `story_run_link` (see ``StoryEngine/baseURL``).
        public var baseURL: String

        public init(workers: Int = 32, baseURL: String = "http://127.0.0.1:8080") {
            self.workers = max(1, workers)
            self.baseURL = baseURL
        }
    }

    public let configuration: Configuration
    /// What agents are handed in their context (see ``AgentServices``).
    public let services: AgentServices
    /// The agent types stories may use.
    public let agents: AgentRegistry
    public let vault: Vault
    public let store: any StoryStore
    public let clock: EngineClock
    let logger: Logger
    let time: WallTime<EngineClock>
    let state = NIOLockedValueBox(State())
    let wake = WakeSignal()
    /// Wakes the scheduler early: when the engine stops.
    let scheduleWake = WakeSignal()
    /// Events just emitted, so that the agents receiving them do not read them back from the store.
    let recentEvents = NIOLockedValueBox(RecentCache<Int64, (payload: JSON, lineage: [String: Int64])>(capacity: 4_096))
    /// Runs that ended lately, so that waiting for one that has just ended needs no read.
    let recentlyEnded = NIOLockedValueBox(RecentCache<String, RunRecord>(capacity: 4_096))
    private let links: NIOLockedValueBox<String>
    private let observers = NIOLockedValueBox<[@Sendable (Observation) -> Void]>([])

    /// What the engine tells its observers (metrics, live pages) as it works.
    public enum Observation: Sendable {
        case runStarted(story: String)
        /// One attempt of an agent ended.
        case stepEnded(story: String, run: String, step: TimelineEntry)
        case runEnded(RunRecord)
    }

    /// The web application's public URL (no trailing `/`), for `{% story_run_link %}`: the configuration's, until the
    /// web application knows the address it listens on or was told (`--public-url`).
    public var baseURL: String {
        get { links.withLockedValue { $0 } }
        set {
            var url = newValue
            while url.hasSuffix("/") { url.removeLast() }
            links.withLockedValue { $0 = url }
        }
    }

    /// Calls `observer` for every ``Observation`` from now on, on the engine's tasks: it must return quickly.
    public func observe(_ observer: @escaping @Sendable (Observation) -> Void) {
        observers.withLockedValue { $0.append(observer) }
    }

    func report(_ observation: Observation) {
        for observer in observers.withLockedValue({ $0 }) { observer(observation) }
    }

    struct State {
        var stories: [String: CompiledStory] = [:]
        var claimed: Set<Int64> = []
        /// Serial agents (story/agent) with a delivery in progress.
        var busyAgents: Set<String> = []
        /// Deliveries just committed and already due, handed to the dispatcher without reading them back.
        var handedOff: [QueuedDelivery] = []
        /// Deliveries on their way to `handedOff` (their transaction is committing): a read of the queue leaves
        /// them alone, so that each is claimed once.
        var reserved: Set<Int64> = []
        /// A read of the queue is in progress: deliveries that end meanwhile are remembered in
        /// `endedDuringRead`, because the read may still return them as they were before they ended.
        var reading = false
        var endedDuringRead: Set<Int64> = []
        /// The queue may hold due deliveries the dispatcher has not seen (a run started, a retry or a delay was
        /// queued, a read left some behind): the dispatcher reads the queue only then, or at `nextDue`.
        var queueChanged = true
        /// When the queue's next delivery comes due, as last read (at most a minute ahead, so that deliveries
        /// another process queued are found).
        var nextDue = -Double.infinity
        var waiters: [String: [RunWaiter]] = [:]
        var stopping = false
        var lastSweep: Double = -.infinity
        /// When each schedule next starts a run.
        var nextFire: [ScheduleKey: Date] = [:]
    }

    /// Creates an engine over `store`, loading the stories registered there so that their pending deliveries
    /// resume when it runs.
    ///
    /// - Parameters:
    ///   - vaultKey: the key that seals the store's credentials.
    ///   - clock: what the engine waits on and reads the time from.
    public init(
        store: any StoryStore,
        vaultKey: Vault.Key,
        configuration: Configuration = Configuration(),
        clock: EngineClock,
        services: AgentServices,
        agents: AgentRegistry,
        logger: Logger = Logger(label: "quarry.stories")
    ) async throws {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.services = services
        self.agents = agents
        self.logger = logger
        links = NIOLockedValueBox(configuration.baseURL)
        let time = WallTime(clock: clock)
        self.time = time
        vault = Vault(store: store, key: vaultKey, now: time.now)
        for stored in try await store.storedStories() {
            do {
                let story = try Story(text: stored.source)
                let compiled = try CompiledStory(story, agents: agents)
                state.withLockedValue { $0.stories[story.name] = compiled }
            } catch {
                logger.error(
                    "stored story cannot be loaded",
                    metadata: ["story": "\(stored.name)", "error": "\(error)"]
                )
            }
        }
    }

    /// The engine's time: seconds since 1970 by its clock.
    public func now() -> Double { time.now() }

    // MARK: Stories

    /// Checks `story` and makes it runnable (replacing a story of the same name); throws every problem the linter
    /// finds.
    public func register(_ story: Story) async throws {
        let compiled = try CompiledStory(story, agents: agents)
        try generateWebhookSecrets(story)
        try await store.saveStory(
            StoredStory(name: story.name, source: story.text ?? story.source.serialized()),
            at: now()
        )
        state.withLockedValue { $0.stories[story.name] = compiled }
        // Its schedules count from now, not from the scheduler's next look.
        scheduleWake.signal()
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

    /// Forgets the story called `name`: no new run starts, its schedules end, and deliveries still queued for it
    /// fail as those of an unknown story. Its runs stay. Returns whether there was one.
    @discardableResult
    public func unregister(story name: String) async throws -> Bool {
        let removed = try await store.removeStory(named: name)
        let known = state.withLockedValue { $0.stories.removeValue(forKey: name) != nil }
        scheduleWake.signal()
        return removed || known
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
    ///     try await engine.waitForRun(try await engine.startRun(story: "hunt", payload: ["domain": "x.org"])).guid
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

    /// Tells the dispatcher that the queue holds deliveries it has not read.
    func queueChanged() {
        state.withLockedValue { $0.queueChanged = true }
        wake.signal()
    }

    /// Stops taking deliveries and ends the schedules; ``run()`` returns once the deliveries in progress end.
    private func stop() {
        state.withLockedValue { $0.stopping = true }
        wake.signal()
        scheduleWake.signal()
    }

    var isStopping: Bool { state.withLockedValue { $0.stopping } }

    /// Starts a run of `story` with `payload` as the event of its entry agent (the one nothing feeds, or `entry`).
    /// Returns the run's guid once the run and its first delivery are stored.
    @discardableResult
    public func startRun(
        story name: String,
        entry: String? = nil,
        payload: JSON,
        dryRun: Bool = false
    ) async throws
        -> String
    {
        guard let compiled = state.withLockedValue({ $0.stories[name] }) else {
            throw StoryEngineError(.unknownStory, "no story named '\(name)'", story: name)
        }
        let entryAgent: CompiledStory.Agent
        if let entry {
            guard let agent = compiled.agents[Story.snakeCase(entry)] else {
                throw StoryEngineError(
                    .unknownAgent,
                    "story '\(name)' has no agent named '\(entry)'",
                    story: name,
                    agent: entry
                )
            }
            entryAgent = agent
        } else {
            guard let first = compiled.story.entryAgents.first, let agent = compiled.agents[first.key] else {
                throw StoryEngineError(.noEntryAgent, "story '\(name)' has no entry agent", story: name)
            }
            entryAgent = agent
        }
        let guid = UUID().uuidString.lowercased()
        let reservation = Reservation()
        defer { release(reservation) }
        let delivery = try await store.startRun(
            NewRun(
                guid: guid,
                story: name,
                entryAgent: entryAgent.definition.key,
                payload: payload,
                dryRun: dryRun,
                time: now()
            )
        ) { delivery in self.reserve([delivery.id], in: reservation) }
        handOff([delivery], releasing: reservation)
        wake.signal()
        report(.runStarted(story: name))
        return guid
    }

    /// Records a run that could not start (a webhook body that does not parse), so that it shows with its error.
    @discardableResult
    public func recordFailedRun(story name: String, error message: String) async throws -> String {
        let guid = UUID().uuidString.lowercased()
        try await store.recordFailedRun(guid: guid, story: name, error: message, at: now())
        return guid
    }

    /// The entry agent of the story called `name` (or snake-cased so) whose webhook `secret` renders to `secret`,
    /// with its rendered options; nil when there is none, so that a wrong secret and a wrong story look the same.
    public func webhook(story name: String, secret: String) -> (story: String, agent: AgentDefinition, options: JSON)? {
        webhooks(story: name).first { ConstantTime.equal($0.secret, secret) }
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
        let context = storyContext(
            run: "",
            events: [:],
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

    /// What a run's templates see of the engine.
    func storyContext(run: String, events: [String: JSON], credentials: CredentialAccess) -> RunStoryContext {
        RunStoryContext(
            run: run,
            events: events,
            credentials: credentials,
            vault: vault,
            baseURL: baseURL,
            storyExists: { [weak self] name in self?.story(named: name) != nil }
        )
    }

    /// Waits until run `guid` has no pending delivery, and returns its record.
    public func waitForRun(_ guid: String) async throws -> RunRecord {
        if let ended = recentlyEnded.withLockedValue({ $0[guid] }) { return ended }
        // Registered before the record is read, so that a run ending in between still resolves it.
        let waiter = RunWaiter()
        state.withLockedValue { $0.waiters[guid, default: []].append(waiter) }
        let record: RunRecord?
        do {
            record = try await store.run(guid)
        } catch {
            forget(waiter, of: guid)
            throw error
        }
        guard let record else {
            forget(waiter, of: guid)
            throw StoryEngineError(.unknownRun, "no run \(guid)", run: guid)
        }
        if record.status != .running {
            forget(waiter, of: guid)
            return record
        }
        return await waiter.record
    }

    private func forget(_ waiter: RunWaiter, of guid: String) {
        state.withLockedValue { state in
            state.waiters[guid]?.removeAll { $0 === waiter }
            if state.waiters[guid]?.isEmpty == true { state.waiters[guid] = nil }
        }
    }

    func notify(_ record: RunRecord) {
        report(.runEnded(record))
        recentlyEnded.withLockedValue { $0.put(record.guid, record) }
        let waiters = state.withLockedValue { $0.waiters.removeValue(forKey: record.guid) ?? [] }
        for waiter in waiters { waiter.resolve(record) }
    }

    // MARK: Records

    public func run(_ guid: String) async throws -> RunRecord? {
        try await store.run(guid)
    }

    public func runs(story: String? = nil, limit: Int = 50) async throws -> [RunRecord] {
        try await store.runs(story: story, limit: limit)
    }

    public func timeline(_ guid: String) async throws -> [TimelineEntry] {
        try await store.timeline(run: guid)
    }

    /// The events of run `guid` in the order they were emitted (`agent` filters by snake-cased agent name).
    public func events(run guid: String, agent: String? = nil) async throws -> [EventRecord] {
        let events = try await store.events(run: guid)
        guard let agent else { return events }
        let key = Story.snakeCase(agent)
        return events.filter { $0.agent == key }
    }

    /// One page of run `guid`'s events, in the order they were emitted, and how many it has in all.
    public func events(run guid: String, offset: Int, limit: Int) async throws -> (events: [EventRecord], total: Int) {
        (try await store.events(run: guid, offset: offset, limit: limit), try await store.eventCount(run: guid))
    }

    /// The payload of the last event `agent` (snake-cased) emitted in run `guid` without failing.
    public func lastEvent(run guid: String, agent: String) async throws -> JSON? {
        guard let id = try await store.latestEvent(run: guid, agent: Story.snakeCase(agent)) else { return nil }
        return try await store.event(id)?.payload
    }

    /// The number of deliveries waiting (all runs).
    public func pendingDeliveries() async throws -> Int {
        try await store.pendingDeliveryCount()
    }
}

/// The most recently put values by key, up to a capacity; the oldest are forgotten first.
struct RecentCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let capacity: Int
    private var entries: [Key: Value] = [:]
    private var order: [Key] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    subscript(_ key: Key) -> Value? { entries[key] }

    mutating func put(_ key: Key, _ value: Value) {
        if entries.updateValue(value, forKey: key) != nil { return }
        if order.count < capacity {
            order.append(key)
        } else {
            entries[order[head]] = nil
            order[head] = key
            head = (head + 1) % capacity
        }
    }
}
