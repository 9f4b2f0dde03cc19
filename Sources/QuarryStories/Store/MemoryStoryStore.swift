import Foundation
public import QuarryCore
import Synchronization

/// A ``StoryStore`` in memory: everything is gone with the process. For tests (with a test clock, an engine over it
/// runs a story's delays, retries and schedules without waiting) and for runs that need not be kept.
///
/// Every method holds one lock for its whole work, so each is atomic as the protocol requires.
public final class MemoryStoryStore: StoryStore {
    private struct Event {
        var story: String
        var agent: String
        var run: String
        var ancestors: [String: Int64]
        var created: Double
        var expires: Double?
        var payload: JSON
        var isError: Bool
    }

    private struct Pending {
        var delivery: QueuedDelivery
        var notBefore: Double
        var timerKey: String?
    }

    private struct State {
        var stories: [String: StoredStory] = [:]
        var runs: [String: RunRecord] = [:]
        /// Events by id; ids grow, so a sorted walk is the order of emission.
        var events: [Int64: Event] = [:]
        var deliveries: [Int64: Pending] = [:]
        var timelines: [String: [TimelineEntry]] = [:]
        var memory: [MemoryKey: [(key: String, value: JSON)]] = [:]
        var credentials: [String: SealedCredential] = [:]
        var resources: [String: String] = [:]
        var lastID: Int64 = 0

        mutating func nextID() -> Int64 {
            lastID += 1
            return lastID
        }
    }

    private struct MemoryKey: Hashable {
        var story: String
        var agent: String
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: Stories

    public func storedStories() async throws -> [StoredStory] {
        state.withLock { $0.stories.values.sorted { $0.name < $1.name } }
    }

    public func saveStory(_ story: StoredStory, at time: Double) async throws {
        state.withLock { $0.stories[story.name] = story }
    }

    public func removeStory(named name: String) async throws -> Bool {
        state.withLock { $0.stories.removeValue(forKey: name) != nil }
    }

    // MARK: Runs

    public func startRun(
        _ run: NewRun,
        beforeCommit: @escaping @Sendable (QueuedDelivery) -> Void
    ) async throws
        -> QueuedDelivery
    {
        state.withLock { state in
            state.runs[run.guid] = RunRecord(
                guid: run.guid,
                story: run.story,
                status: .running,
                dryRun: run.dryRun,
                started: run.time
            )
            let event = state.nextID()
            state.events[event] = Event(
                story: run.story,
                agent: "",
                run: run.guid,
                ancestors: [:],
                created: run.time,
                payload: run.payload,
                isError: false
            )
            let delivery = QueuedDelivery(
                id: state.nextID(),
                event: event,
                story: run.story,
                agent: run.entryAgent,
                run: run.guid,
                dryRun: run.dryRun
            )
            state.deliveries[delivery.id] = Pending(delivery: delivery, notBefore: run.time)
            beforeCommit(delivery)
            return delivery
        }
    }

    public func recordFailedRun(guid: String, story: String, error: String, at time: Double) async throws {
        state.withLock {
            $0.runs[guid] = RunRecord(
                guid: guid,
                story: story,
                status: .failed,
                dryRun: false,
                started: time,
                ended: time,
                error: error
            )
        }
    }

    public func run(_ guid: String) async throws -> RunRecord? {
        state.withLock { $0.runs[guid] }
    }

    public func runs(story: String?, limit: Int) async throws -> [RunRecord] {
        state.withLock { state in
            Array(
                state.runs.values.filter { story == nil || $0.story == story }
                    .sorted { $0.started > $1.started }
                    .prefix(max(0, limit))
            )
        }
    }

    public func timeline(run guid: String) async throws -> [TimelineEntry] {
        state.withLock { $0.timelines[guid] ?? [] }
    }

    public func eventCount(run guid: String) async throws -> Int {
        state.withLock { state in state.events.values.count { $0.run == guid && !$0.agent.isEmpty } }
    }

    public func events(run guid: String, offset: Int, limit: Int) async throws -> [EventRecord] {
        state.withLock { state in
            state.events.filter { $0.value.run == guid && !$0.value.agent.isEmpty }.sorted { $0.key < $1.key }
                .dropFirst(offset).prefix(limit).map {
                    EventRecord(
                        id: $0.key,
                        agent: $0.value.agent,
                        run: guid,
                        created: $0.value.created,
                        payload: $0.value.payload,
                        isError: $0.value.isError
                    )
                }
        }
    }

    public func event(_ id: Int64) async throws -> StoredEvent? {
        state.withLock { state in
            state.events[id].map { StoredEvent(agent: $0.agent, ancestors: $0.ancestors, payload: $0.payload) }
        }
    }

    public func latestEvent(run guid: String, agent: String) async throws -> Int64? {
        state.withLock { state in
            state.events.filter { $0.value.run == guid && $0.value.agent == agent && !$0.value.isError }.keys.max()
        }
    }

    // MARK: The delivery queue

    public func dueDeliveries(at time: Double, limit: Int, excluding: Set<Int64>) async throws -> [QueuedDelivery] {
        state.withLock { state in
            Array(
                state.deliveries.values.filter { $0.notBefore <= time && !excluding.contains($0.delivery.id) }
                    .map(\.delivery).sorted { $0.id < $1.id }.prefix(max(0, limit))
            )
        }
    }

    public func nextDueTime(after time: Double) async throws -> Double? {
        state.withLock { $0.deliveries.values.map(\.notBefore).filter { $0 > time }.min() }
    }

    public func pendingDeliveryCount() async throws -> Int {
        state.withLock { $0.deliveries.count }
    }

    public func complete(
        _ completion: DeliveryCompletion,
        beforeCommit: @escaping @Sendable ([QueuedDelivery]) -> Void
    ) async throws -> CompletedDelivery {
        let delivery = completion.delivery
        return state.withLock { state in
            var emitted: [Int64] = []
            var due: [QueuedDelivery] = []
            for payload in completion.events {
                let id = state.nextID()
                state.events[id] = Event(
                    story: delivery.story,
                    agent: delivery.agent,
                    run: delivery.run,
                    ancestors: completion.ancestors,
                    created: completion.time,
                    expires: completion.expires,
                    payload: payload,
                    isError: false
                )
                emitted.append(id)
                for receiver in completion.receivers {
                    let queued = QueuedDelivery(
                        id: state.nextID(),
                        event: id,
                        story: delivery.story,
                        agent: receiver,
                        run: delivery.run,
                        dryRun: delivery.dryRun
                    )
                    state.deliveries[queued.id] = Pending(delivery: queued, notBefore: completion.deliverAt)
                    if completion.deliverAt <= completion.time { due.append(queued) }
                }
            }
            for timer in completion.timers {
                var fired = delivery
                fired.id = state.nextID()
                fired.attempts = 0
                fired.timer = timer.payload
                state.deliveries[fired.id] = Pending(delivery: fired, notBefore: timer.at, timerKey: timer.key)
            }
            if !completion.cancelledTimers.isEmpty {
                let keys = Set(completion.cancelledTimers)
                state.deliveries = state.deliveries.filter { id, pending in
                    id == delivery.id || pending.delivery.run != delivery.run
                        || pending.delivery.agent != delivery.agent
                        || !keys.contains(pending.timerKey ?? "")
                }
            }
            state.deliveries[delivery.id] = nil
            state.timelines[delivery.run, default: []].append(completion.step)
            let finished = finishRunIfDone(
                &state,
                run: delivery.run,
                terminalAgents: completion.terminalAgents,
                time: completion.time
            )
            beforeCommit(due)
            return CompletedDelivery(emitted: emitted, due: due, finishedRun: finished)
        }
    }

    public func retry(_ delivery: QueuedDelivery, notBefore: Double, step: TimelineEntry) async throws {
        state.withLock { state in
            guard var pending = state.deliveries[delivery.id] else { return }
            pending.delivery.attempts += 1
            pending.notBefore = notBefore
            state.deliveries[delivery.id] = pending
            state.timelines[delivery.run, default: []].append(step)
        }
    }

    public func fail(_ failure: DeliveryFailure) async throws -> RunRecord? {
        let delivery = failure.delivery
        return state.withLock { state in
            state.events[state.nextID()] = Event(
                story: delivery.story,
                agent: delivery.agent,
                run: delivery.run,
                ancestors: [:],
                created: failure.time,
                payload: failure.error,
                isError: true
            )
            state.deliveries[delivery.id] = nil
            state.timelines[delivery.run, default: []].append(failure.step)
            if state.runs[delivery.run]?.error == nil { state.runs[delivery.run]?.error = failure.runError }
            return finishRunIfDone(
                &state,
                run: delivery.run,
                terminalAgents: failure.terminalAgents,
                time: failure.time
            )
        }
    }

    private func finishRunIfDone(
        _ state: inout State,
        run: String,
        terminalAgents: Set<String>,
        time: Double
    )
        -> RunRecord?
    {
        guard !state.deliveries.values.contains(where: { $0.delivery.run == run }),
            var record = state.runs[run]
        else { return nil }
        if record.status == .running {
            let emitting = Set(
                state.events.values.filter { $0.run == run && !$0.isError && !$0.agent.isEmpty }.map(\.agent)
            )
            record.status = RunRecord.finalStatus(
                anyStepFailed: state.timelines[run, default: []].contains { $0.outcome == .failed },
                emittingAgents: emitting,
                terminalAgents: terminalAgents
            )
            record.ended = time
            state.runs[run] = record
        }
        return record
    }

    // MARK: Retention

    public func removeEvents(expiredBefore time: Double, maximumEvents: [String: Int]) async throws -> Int {
        state.withLock { state in
            let needed = Set(state.deliveries.values.map(\.delivery.event))
            var doomed = Set(
                state.events.filter { id, event in (event.expires.map { $0 < time } ?? false) && !needed.contains(id) }
                    .keys
            )
            for (story, limit) in maximumEvents where limit > 0 {
                let kept = state.events.filter { $0.value.story == story && !needed.contains($0.key) }.keys
                    .sorted(by: >)
                doomed.formUnion(kept.dropFirst(limit))
            }
            for id in doomed { state.events[id] = nil }
            return doomed.count
        }
    }

    // MARK: Agents' memory

    public func appendMemory(
        _ value: JSON,
        story: String,
        agent: String,
        key: String,
        at time: Double
    ) async throws
        -> [JSON]
    {
        state.withLock { state in
            let owner = MemoryKey(story: story, agent: agent)
            state.memory[owner, default: []].append((key, value))
            return state.memory[owner, default: []].filter { $0.key == key }.map(\.value)
        }
    }

    public func takeMemory(story: String, agent: String, key: String) async throws -> [JSON] {
        state.withLock { state in
            let owner = MemoryKey(story: story, agent: agent)
            let entries = state.memory[owner, default: []]
            state.memory[owner] = entries.filter { $0.key != key }
            return entries.filter { $0.key == key }.map(\.value)
        }
    }

    public func rememberKey(
        _ key: String,
        story: String,
        agent: String,
        lookback: Int,
        at time: Double
    ) async throws
        -> Bool
    {
        state.withLock { state in
            let owner = MemoryKey(story: story, agent: agent)
            var entries = state.memory[owner, default: []]
            let found = entries.suffix(lookback).contains { $0.key == key }
            entries.append((key, .null))
            state.memory[owner] = Array(entries.suffix(lookback))
            return found
        }
    }

    // MARK: The vault

    public func sealedCredential(_ name: String) throws -> SealedCredential? {
        state.withLock { $0.credentials[name] }
    }

    public func saveSealedCredential(_ credential: SealedCredential, at time: Double) throws {
        state.withLock { $0.credentials[credential.name] = credential }
    }

    public func credentialNames() throws -> [String] {
        state.withLock { $0.credentials.keys.sorted() }
    }

    public func removeCredential(_ name: String) throws -> Bool {
        state.withLock { $0.credentials.removeValue(forKey: name) != nil }
    }

    public func resource(_ name: String) throws -> String? {
        state.withLock { $0.resources[name] }
    }

    public func saveResource(_ name: String, value: String, at time: Double) throws {
        state.withLock { $0.resources[name] = value }
    }

    public func resourceNames() throws -> [String] {
        state.withLock { $0.resources.keys.sorted() }
    }

    public func removeResource(_ name: String) throws -> Bool {
        state.withLock { $0.resources.removeValue(forKey: name) != nil }
    }
}
