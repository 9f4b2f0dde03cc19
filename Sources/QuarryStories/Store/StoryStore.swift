public import Foundation
public import QuarryCore

/// Where a ``StoryEngine`` keeps what must outlive a process: stories, runs, events, the delivery queue, run
/// timelines, agents' memory, and the vault's sealed credentials and resources.
///
/// The engine decides; the store records. Each method that changes the queue is one transaction in the store's
/// terms, so that a crash between two calls leaves either the state before a delivery or the state after it,
/// never half of it (see ``complete(_:)``). `QuarryStoriesSQLite` provides the store a server uses;
/// ``MemoryStoryStore`` keeps everything in memory, for tests and for runs that need not survive the process.
///
/// Times are seconds since 1970, as the engine's clock reads them: a store never reads a clock of its own.
public protocol StoryStore: Sendable {
    // MARK: Stories

    /// Every story registered, so that a new engine resumes their pending deliveries.
    func storedStories() async throws -> [StoredStory]
    /// Registers `story` (replacing one of the same name).
    func saveStory(_ story: StoredStory, at time: Double) async throws

    /// Forgets the story called `name` (its runs and events stay, as history); returns whether there was one.
    func removeStory(named name: String) async throws -> Bool

    // MARK: Runs

    /// Records a new run with its starting event and that event's delivery to the entry agent; returns the
    /// delivery. `beforeCommit` is called with the delivery as in ``complete(_:beforeCommit:)``.
    func startRun(
        _ run: NewRun,
        beforeCommit: @escaping @Sendable (QueuedDelivery) -> Void
    ) async throws
        -> QueuedDelivery
    /// Records a run that failed before it started (a body that does not parse).
    func recordFailedRun(guid: String, story: String, error: String, at time: Double) async throws
    func run(_ guid: String) async throws -> RunRecord?
    /// The newest runs first, of one story or of all.
    func runs(story: String?, limit: Int) async throws -> [RunRecord]
    /// The steps of run `guid` in the order they ended.
    func timeline(run guid: String) async throws -> [TimelineEntry]
    /// The events agents emitted in run `guid` (not its starting event), in the order they were emitted: `limit` of
    /// them from the `offset`th (a run page shows one page of a run's thousands).
    func events(run guid: String, offset: Int, limit: Int) async throws -> [EventRecord]
    /// How many events ``events(run:offset:limit:)`` has for run `guid`.
    func eventCount(run guid: String) async throws -> Int
    /// One event with the events it descends from; nil when retention removed it.
    func event(_ id: Int64) async throws -> StoredEvent?
    /// The id of the newest event (not an error) that `agent` emitted in run `guid`.
    func latestEvent(run guid: String, agent: String) async throws -> Int64?

    // MARK: The delivery queue

    /// Up to `limit` deliveries due at `time` that are not in `excluding`, oldest first.
    func dueDeliveries(at time: Double, limit: Int, excluding: Set<Int64>) async throws -> [QueuedDelivery]
    /// When the earliest delivery that is not due at `time` comes due; nil when there is none.
    func nextDueTime(after time: Double) async throws -> Double?
    func pendingDeliveryCount() async throws -> Int
    /// In one transaction: stores what an agent emitted, queues it for its receivers, adds and cancels timers,
    /// records the step, removes the delivery, and ends the run when nothing of it is pending any more.
    ///
    /// `beforeCommit` is called inside the transaction with the deliveries it queued that are due already, before
    /// ``dueDeliveries(at:limit:excluding:)`` can return them: the engine reserves them there, to hand them to a
    /// worker itself without a read of the queue claiming them as well. A store that runs the transaction again
    /// after a failure calls it again.
    func complete(
        _ completion: DeliveryCompletion,
        beforeCommit: @escaping @Sendable ([QueuedDelivery]) -> Void
    ) async throws -> CompletedDelivery
    /// Schedules another attempt of `delivery` at `notBefore`, recording the failed `step`.
    func retry(_ delivery: QueuedDelivery, notBefore: Double, step: TimelineEntry) async throws
    /// In one transaction: records `error` as an error event of the delivery's agent (not delivered), the failed
    /// `step` and the run's first error, removes the delivery, and ends the run when nothing of it is pending.
    /// Returns the ended run.
    func fail(_ failure: DeliveryFailure) async throws -> RunRecord?

    // MARK: Retention

    /// Removes events that expired before `time`, and the oldest events of each story past its limit in
    /// `maximumEvents`, except events a pending delivery still needs; returns how many it removed.
    func removeEvents(expiredBefore time: Double, maximumEvents: [String: Int]) async throws -> Int

    // MARK: Agents' memory

    /// Adds `value` under `key` and returns everything stored under it, oldest first.
    func appendMemory(
        _ value: JSON,
        story: String,
        agent: String,
        key: String,
        at time: Double
    ) async throws
        -> [JSON]
    /// Everything stored under `key`, removed.
    func takeMemory(story: String, agent: String, key: String) async throws -> [JSON]
    /// Whether `key` is among the agent's last `lookback` keys; remembers it either way and forgets what falls
    /// out of the lookback.
    func rememberKey(
        _ key: String,
        story: String,
        agent: String,
        lookback: Int,
        at time: Double
    ) async throws
        -> Bool

    // MARK: The vault

    // Synchronous: a template reads a credential or resource while it renders, and Liquid renders
    // synchronously. Each is one row by its primary key.

    func sealedCredential(_ name: String) throws -> SealedCredential?
    func saveSealedCredential(_ credential: SealedCredential, at time: Double) throws
    func credentialNames() throws -> [String]
    /// Whether there was one to remove.
    func removeCredential(_ name: String) throws -> Bool
    func resource(_ name: String) throws -> String?
    func saveResource(_ name: String, value: String, at time: Double) throws
    func resourceNames() throws -> [String]
    /// Whether there was one to remove.
    func removeResource(_ name: String) throws -> Bool
}

/// A story as registered: its name and its source text.
public struct StoredStory: Sendable, Equatable {
    public var name: String
    public var source: String

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }
}

/// What ``StoryStore/startRun(_:)`` records.
public struct NewRun: Sendable {
    public var guid: String
    public var story: String
    /// The snake-cased name of the agent the starting payload is delivered to.
    public var entryAgent: String
    public var payload: JSON
    public var dryRun: Bool
    public var time: Double

    public init(guid: String, story: String, entryAgent: String, payload: JSON, dryRun: Bool, time: Double) {
        self.guid = guid
        self.story = story
        self.entryAgent = entryAgent
        self.payload = payload
        self.dryRun = dryRun
        self.time = time
    }
}

/// A delivery of an event to an agent, waiting in the queue or in progress.
public struct QueuedDelivery: Sendable, Hashable {
    /// Unique for the life of the store: a store never gives a new delivery the id of one it removed, because the
    /// engine knows deliveries in progress by their ids.
    public var id: Int64
    public var event: Int64
    public var story: String
    /// The snake-cased name of the receiving agent.
    public var agent: String
    public var run: String
    /// Attempts made so far.
    public var attempts: Int
    /// The payload of a timer the agent asked for, when this delivery fires one instead of handing it an event.
    public var timer: JSON?
    public var dryRun: Bool

    public init(
        id: Int64,
        event: Int64,
        story: String,
        agent: String,
        run: String,
        attempts: Int = 0,
        timer: JSON? = nil,
        dryRun: Bool
    ) {
        self.id = id
        self.event = event
        self.story = story
        self.agent = agent
        self.run = run
        self.attempts = attempts
        self.timer = timer
        self.dryRun = dryRun
    }
}

/// An event as the engine reads it back: who emitted it, the events it descends from, and its payload.
public struct StoredEvent: Sendable {
    /// The snake-cased name of the agent that emitted it; empty for a run's starting event.
    public var agent: String
    /// The event of each agent it descends from (not itself).
    public var ancestors: [String: Int64]
    public var payload: JSON

    public init(agent: String, ancestors: [String: Int64], payload: JSON) {
        self.agent = agent
        self.ancestors = ancestors
        self.payload = payload
    }
}

/// What one successful delivery leaves behind (see ``StoryStore/complete(_:)``).
public struct DeliveryCompletion: Sendable {
    public var delivery: QueuedDelivery
    /// The events the agent emitted, secrets already redacted.
    public var events: [JSON]
    /// The events the emitted ones descend from.
    public var ancestors: [String: Int64]
    /// The agents the emitted events go to.
    public var receivers: [String]
    /// When the emitted events expire (the agent's `keep_events_for`).
    public var expires: Double?
    /// When the emitted events are delivered.
    public var deliverAt: Double
    /// Timers to add: when each fires, its payload, and the key to cancel it by.
    public var timers: [(at: Double, payload: JSON, key: String)]
    /// Keys of the agent's pending timers in this run to remove.
    public var cancelledTimers: [String]
    public var step: TimelineEntry
    /// The agents whose events mean the run reached the end of its story.
    public var terminalAgents: Set<String>
    public var time: Double

    public init(
        delivery: QueuedDelivery,
        events: [JSON],
        ancestors: [String: Int64],
        receivers: [String],
        expires: Double?,
        deliverAt: Double,
        timers: [(at: Double, payload: JSON, key: String)],
        cancelledTimers: [String],
        step: TimelineEntry,
        terminalAgents: Set<String>,
        time: Double
    ) {
        self.delivery = delivery
        self.events = events
        self.ancestors = ancestors
        self.receivers = receivers
        self.expires = expires
        self.deliverAt = deliverAt
        self.timers = timers
        self.cancelledTimers = cancelledTimers
        self.step = step
        self.terminalAgents = terminalAgents
        self.time = time
    }
}

/// What ``StoryStore/complete(_:)`` did.
public struct CompletedDelivery: Sendable {
    /// The ids of the emitted events, in order.
    public var emitted: [Int64]
    /// The deliveries queued that are due already, for the engine to start without reading them back.
    public var due: [QueuedDelivery]
    /// The run, when this delivery was its last pending one.
    public var finishedRun: RunRecord?

    public init(emitted: [Int64], due: [QueuedDelivery], finishedRun: RunRecord?) {
        self.emitted = emitted
        self.due = due
        self.finishedRun = finishedRun
    }
}

/// A delivery that failed for good (see ``StoryStore/fail(_:)``).
public struct DeliveryFailure: Sendable {
    public var delivery: QueuedDelivery
    /// The payload of the error event.
    public var error: JSON
    public var step: TimelineEntry
    /// The run's error, kept when it is the first.
    public var runError: String
    public var terminalAgents: Set<String>
    public var time: Double

    public init(
        delivery: QueuedDelivery,
        error: JSON,
        step: TimelineEntry,
        runError: String,
        terminalAgents: Set<String>,
        time: Double
    ) {
        self.delivery = delivery
        self.error = error
        self.step = step
        self.runError = runError
        self.terminalAgents = terminalAgents
        self.time = time
    }
}

/// A credential as the vault stores it: encrypted, with the hosts it may be sent to (nil: any).
public struct SealedCredential: Sendable, Equatable {
    public var name: String
    public var sealed: Data
    public var allowedHosts: [String]?

    public init(name: String, sealed: Data, allowedHosts: [String]?) {
        self.name = name
        self.sealed = sealed
        self.allowedHosts = allowedHosts
    }
}

extension RunRecord {
    /// The status a run ends with once nothing of it is pending: failed when a step failed, succeeded when an agent
    /// at the end of the story emitted, no match otherwise. One rule for every store.
    public static func finalStatus(
        anyStepFailed: Bool,
        emittingAgents: Set<String>,
        terminalAgents: Set<String>
    )
        -> Status
    {
        if anyStepFailed { return .failed }
        return emittingAgents.isDisjoint(with: terminalAgents) ? .noMatch : .succeeded
    }
}

extension StoryStore {
    /// Every event agents emitted in run `guid`, in the order they were emitted.
    public func events(run guid: String) async throws -> [EventRecord] {
        try await events(run: guid, offset: 0, limit: .max)
    }
}
