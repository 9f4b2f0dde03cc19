import Foundation
import QuarryCore
import QuarryStories
import QuarryStoriesSQLite
import QuarryTesting
import Synchronization
import Testing

/// The same calls give the same answers from every ``StoryStore``: the memory store that tests run the engine
/// over behaves as the SQLite store a server keeps.
@Suite(.mayBlock) struct StoryStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, sqlite
        var testDescription: String { rawValue }
    }

    func withStore(_ kind: Kind, _ body: (any StoryStore) async throws -> Void) async throws {
        switch kind {
        case .memory: try await body(MemoryStoryStore())
        case .sqlite: try await withTemporaryDirectory { try await body(try SQLiteStoryStore(directory: $0)) }
        }
    }

    static func step(_ agent: String, _ outcome: TimelineEntry.Outcome, at time: Double) -> TimelineEntry {
        TimelineEntry(
            agent: agent,
            event: nil,
            attempt: 1,
            started: time,
            ended: time,
            outcome: outcome,
            emitted: outcome == .emitted ? 1 : 0,
            message: nil
        )
    }

    @Test(arguments: Kind.allCases) func aRunGoesThroughTheQueueToItsEnd(_ kind: Kind) async throws {
        try await withStore(kind) { store in
            let entry = try await store.startRun(
                NewRun(guid: "r1", story: "s", entryAgent: "start", payload: ["n": 1], dryRun: true, time: 100)
            ) { _ in }
            #expect(entry.agent == "start" && entry.run == "r1" && entry.dryRun)
            #expect(try await store.dueDeliveries(at: 99, limit: 10, excluding: []).isEmpty)
            #expect(try await store.dueDeliveries(at: 100, limit: 10, excluding: []).map(\.id) == [entry.id])
            #expect(try await store.dueDeliveries(at: 100, limit: 10, excluding: [entry.id]).isEmpty)
            #expect(try await store.event(entry.event)?.payload == ["n": 1])

            // The entry agent emits two events for `end` and asks for two timers.
            let reserved = Mutex<[Int64]>([])
            let first = try await store.complete(
                DeliveryCompletion(
                    delivery: entry,
                    events: [["a": 1], ["a": 2]],
                    ancestors: [:],
                    receivers: ["end"],
                    expires: nil,
                    deliverAt: 100,
                    timers: [(at: 500, payload: ["t": 1], key: "k"), (at: 500, payload: ["t": 2], key: "k2")],
                    cancelledTimers: [],
                    step: Self.step("start", .emitted, at: 100),
                    terminalAgents: ["end"],
                    time: 100
                )
            ) { due in reserved.withLock { $0 = due.map(\.id) } }
            #expect(first.emitted.count == 2 && first.due.count == 2 && first.finishedRun == nil)
            // The deliveries due at once were offered before the commit, to be handed off.
            #expect(reserved.withLock { $0 } == first.due.map(\.id))
            #expect(try await store.pendingDeliveryCount() == 4)
            #expect(try await store.nextDueTime(after: 100) == 500)
            let emitted = try #require(try await store.event(first.emitted[1]))
            #expect(emitted.agent == "start" && emitted.payload == ["a": 2])
            #expect(try await store.latestEvent(run: "r1", agent: "start") == first.emitted[1])

            // One delivery fails for good, the other retries then emits; one timer fires and cancels the other.
            let failed = try await store.fail(
                DeliveryFailure(
                    delivery: first.due[0],
                    error: ["error": "boom"],
                    step: Self.step("end", .failed, at: 101),
                    runError: "end: boom",
                    terminalAgents: ["end"],
                    time: 101
                )
            )
            #expect(failed == nil)
            try await store.retry(first.due[1], notBefore: 200, step: Self.step("end", .retrying, at: 101))
            #expect(try await store.dueDeliveries(at: 150, limit: 10, excluding: []).isEmpty)
            let retried = try #require(try await store.dueDeliveries(at: 200, limit: 10, excluding: []).first)
            #expect(retried.attempts == 1)
            let done = try await store.complete(
                DeliveryCompletion(
                    delivery: retried,
                    events: [["done": true]],
                    ancestors: ["start": first.emitted[1]],
                    receivers: [],
                    expires: 1_000,
                    deliverAt: 200,
                    timers: [],
                    cancelledTimers: [],
                    step: Self.step("end", .emitted, at: 200),
                    terminalAgents: ["end"],
                    time: 200
                )
            ) { _ in }
            #expect(done.finishedRun == nil)
            let timers = try await store.dueDeliveries(at: 500, limit: 10, excluding: [])
            #expect(timers.map(\.agent) == ["start", "start"])
            let fired = try #require(timers.first { $0.timer == ["t": 1] })
            let timerKey = try await store.complete(
                DeliveryCompletion(
                    delivery: fired,
                    events: [],
                    ancestors: [:],
                    receivers: ["end"],
                    expires: nil,
                    deliverAt: 500,
                    timers: [],
                    cancelledTimers: ["k2"],
                    step: Self.step("start", .nothing, at: 500),
                    terminalAgents: ["end"],
                    time: 500
                )
            ) { _ in }
            // The failure decides the status; its message is the run's error.
            let finished = try #require(timerKey.finishedRun)
            #expect(finished.status == .failed && finished.ended == 500 && finished.error == "end: boom")
            #expect(try await store.run("r1")?.status == .failed)
            #expect(try await store.pendingDeliveryCount() == 0)
            #expect(
                try await store.timeline(run: "r1").map(\.outcome) == [
                    .emitted, .failed, .retrying, .emitted, .nothing,
                ]
            )
            let events = try await store.events(run: "r1")
            #expect(events.map(\.agent) == ["start", "start", "end", "end"])
            #expect(events.map(\.isError) == [false, false, true, false])
            // A page of them, and their count, as a run page reads a large run.
            #expect(try await store.eventCount(run: "r1") == 4)
            #expect(try await store.events(run: "r1", offset: 1, limit: 2).map(\.id) == events[1...2].map(\.id))
            #expect(try await store.events(run: "r1", offset: 4, limit: 2).isEmpty)
            #expect(try await store.event(done.emitted[0])?.ancestors == ["start": first.emitted[1]])

            // Retention: the expired event goes, then all but the newest of story `s` (the starting event counts).
            #expect(try await store.removeEvents(expiredBefore: 2_000, maximumEvents: [:]) == 1)
            #expect(try await store.removeEvents(expiredBefore: 0, maximumEvents: ["s": 1]) == 3)
            #expect(try await store.events(run: "r1").map(\.isError) == [true])
        }
    }

    @Test(arguments: Kind.allCases) func runsStoriesMemoryAndTheVault(_ kind: Kind) async throws {
        try await withStore(kind) { store in
            try await store.saveStory(StoredStory(name: "b", source: "{}"), at: 1)
            try await store.saveStory(StoredStory(name: "a", source: "{}"), at: 1)
            try await store.saveStory(StoredStory(name: "a", source: "{\"x\": 1}"), at: 2)
            #expect(try await store.removeStory(named: "b"))
            #expect(try await !store.removeStory(named: "b"))
            try await store.saveStory(StoredStory(name: "b", source: "{}"), at: 1)
            #expect(
                try await store.storedStories() == [
                    .init(name: "a", source: "{\"x\": 1}"), .init(name: "b", source: "{}"),
                ]
            )

            for (index, story) in ["a", "b", "a"].enumerated() {
                _ = try await store.startRun(
                    NewRun(
                        guid: "g\(index)",
                        story: story,
                        entryAgent: "x",
                        payload: [:],
                        dryRun: false,
                        time: Double(index)
                    )
                ) { _ in }
            }
            try await store.recordFailedRun(guid: "bad", story: "a", error: "no body", at: 10)
            #expect(try await store.runs(story: "a", limit: 10).map(\.guid) == ["bad", "g2", "g0"])
            #expect(try await store.runs(story: nil, limit: 2).map(\.guid) == ["bad", "g2"])
            #expect(try await store.run("bad")?.status == .failed)
            #expect(try await store.run("nope") == nil)

            #expect(try await store.appendMemory(1, story: "s", agent: "i", key: "g", at: 1) == [1])
            #expect(try await store.appendMemory(2, story: "s", agent: "i", key: "g", at: 1) == [1, 2])
            #expect(try await store.takeMemory(story: "s", agent: "i", key: "g") == [1, 2])
            #expect(try await store.takeMemory(story: "s", agent: "i", key: "g") == [])
            var seen: [Bool] = []
            for key in ["x", "y", "x", "z", "w", "x"] {
                seen.append(try await store.rememberKey(key, story: "s", agent: "d", lookback: 2, at: 1))
            }
            #expect(seen == [false, false, true, false, false, false])

            let sealed = SealedCredential(name: "es", sealed: Data([1, 2, 3]), allowedHosts: ["es.example"])
            try store.saveSealedCredential(sealed, at: 1)
            #expect(try store.sealedCredential("es") == sealed)
            #expect(try store.credentialNames() == ["es"])
            #expect(try store.removeCredential("es") && !store.removeCredential("es"))
            try store.saveResource("r", value: "v", at: 1)
            #expect(try store.resource("r") == "v" && store.resourceNames() == ["r"])
            #expect(try store.removeResource("r") && store.resource("r") == nil)
        }
    }
}
