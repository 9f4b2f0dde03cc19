import Clocks
import Foundation
import QuarryAgents
import QuarryCore
import QuarryStories
import QuarryTesting
import Testing

/// The engine over a ``MemoryStoryStore`` with a `TestClock`: delays, retries and schedules that take an hour of
/// the story's time finish as soon as the test moves the clock, and not before.
@Suite(.mayBlock) struct TestClockEngineTests {
    @Test func aDelayOfAnHourEndsWhenTheClockHasMovedAnHour() async throws {
        try await withTestClockEngine { engine, clock in
            try await engine.register(
                try Story(
                    text: """
                        {"name": "later", "agents": [
                          {"name": "Start", "type": "webhook"},
                          {"name": "Wait", "type": "transform", "receives_from": "Start",
                           "options": {"mode": "delay", "seconds": 3600}},
                          {"name": "Done", "type": "transform", "receives_from": "Wait",
                           "options": {"mode": "message_only", "payload": {"waited": "{{ wait.n }}"}}}
                        ]}
                        """
                )
            )
            let started = engine.now()
            let guid = try await engine.startRun(story: "later", payload: ["n": 7])
            try await eventually { try await engine.events(run: guid, agent: "Wait").count == 1 }

            // Half the delay: nothing moves.
            await clock.advance(by: .seconds(1_800))
            #expect(try await engine.run(guid)?.status == .running)
            #expect(try await engine.events(run: guid, agent: "Done").isEmpty)

            await clock.advance(by: .seconds(1_800))
            let record = try await engine.waitForRun(guid)
            #expect(record.status == .succeeded)
            #expect(try await engine.events(run: guid, agent: "Done").map(\.payload) == [["waited": "7"]])
            // The run took an hour of the engine's time.
            let ended = try #require(record.ended)
            #expect(ended - started >= 3_600)
        }
    }

    @Test func retriesWaitTheirBackoffOnTheClock() async throws {
        try await withTestClockEngine { engine, clock in
            try await engine.register(
                try Story(
                    text: """
                        {"name": "flaky", "agents": [
                          {"name": "Start", "type": "webhook"},
                          {"name": "Call", "type": "http_request", "receives_from": "Start",
                           "retry": {"max_attempts": 3, "initial_delay": 600, "max_delay": 600},
                           "options": {"url": "http://127.0.0.1:1/refused"}}
                        ]}
                        """
                )
            )
            let guid = try await engine.startRun(story: "flaky", payload: [:])
            for attempt in 1...2 {
                try await eventually { try await engine.timeline(guid).filter { $0.agent == "call" }.count == attempt }
                #expect(try await engine.run(guid)?.status == .running)
                // The backoff is 600 s ± 25 %.
                await clock.advance(by: .seconds(750))
            }
            let record = try await engine.waitForRun(guid)
            #expect(record.status == .failed)
            let calls = try await engine.timeline(guid).filter { $0.agent == "call" }
            #expect(calls.map(\.outcome) == [.retrying, .retrying, .failed])
            // Each attempt came after the backoff before it, by the engine's clock.
            for (earlier, later) in zip(calls, calls.dropFirst()) { #expect(later.started - earlier.ended >= 450) }
        }
    }

    @Test func aScheduleStartsARunEachTimeItComesDue() async throws {
        try await withTestClockEngine { engine, clock in
            try await engine.register(
                try Story(
                    text: """
                        {"name": "every hour", "agents": [
                          {"name": "Tick", "type": "transform", "schedule": "0 * * * *",
                           "options": {"mode": "message_only", "payload": {"at": "{{ scheduled_at }}"}}}
                        ]}
                        """
                )
            )
            #expect(try await engine.runs(story: "every hour").isEmpty)
            for hour in 1...3 {
                // Once the scheduler knows when the next run is due, move the clock a second past it: the
                // scheduler may reach its sleep only after the advance, and a test clock's sleep until exactly its
                // current time waits for the next advance.
                var next: Date?
                try await eventually {
                    next = engine.nextScheduledRun(story: "every hour")
                    return next != nil
                }
                let due = try #require(next)
                await clock.advance(by: .seconds(due.timeIntervalSince1970 - engine.now() + 1))
                try await eventually { try await engine.runs(story: "every hour").count == hour }
                try await eventually { engine.nextScheduledRun(story: "every hour") != due }
            }
            // Each run was due on the hour, an hour after the one before.
            var due: [String] = []
            for tick in try await engine.runs(story: "every hour") {
                _ = try await engine.waitForRun(tick.guid)
                due += try await engine.events(run: tick.guid, agent: "Tick").compactMap {
                    $0.payload["at"]?.stringValue
                }
            }
            #expect(due.count == 3)
            #expect(due.allSatisfy { $0.hasSuffix(":00:00.000Z") }, "\(due)")
            #expect(Set(due.map { $0.prefix(13) }).count == 3, "\(due)")
        }
    }
}
