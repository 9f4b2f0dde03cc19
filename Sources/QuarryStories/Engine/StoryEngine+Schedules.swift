public import Foundation
import Logging
import NIOConcurrencyHelpers
import QuarryCore
import QuarryLiquid

extension StoryEngine {
    // MARK: Retention

    /// At most once a minute of the engine's clock: removes events past their agent's `keep_events_for`, and the
    /// oldest events of a story beyond its `max_events`, except events a pending delivery still needs.
    func sweepIfDue() async {
        let now = now()
        let due = state.withLockedValue { state -> Bool in
            guard now - state.lastSweep >= 60 else { return false }
            state.lastSweep = now
            return true
        }
        guard due else { return }
        do {
            try await sweep(at: now)
        } catch {
            logger.error("retention sweep failed", metadata: ["error": "\(error)"])
        }
    }

    /// Applies retention as at `time` (now, by default); returns the number of events removed.
    @discardableResult
    public func sweep(at time: Double? = nil) async throws -> Int {
        let limits = state.withLockedValue { $0.stories.mapValues(\.story.maxEvents) }
        return try await store.removeEvents(expiredBefore: time ?? now(), maximumEvents: limits)
    }

    // MARK: Schedules

    /// When the next scheduled run of story `name` starts, once the scheduler has looked at the story; nil when it
    /// has no schedule (or the scheduler has not run yet).
    public func nextScheduledRun(story name: String) -> Date? {
        state.withLockedValue { $0.nextFire.filter { $0.key.story == name }.values.min() }
    }

    /// Starts a run at each agent with a schedule when its cron expression comes due.
    func runSchedules() async {
        while !isStopping {
            let now = Date(timeIntervalSince1970: self.now())
            let stories = state.withLockedValue { Array($0.stories.values) }
            var earliest = now.addingTimeInterval(60)
            var nextFire = state.withLockedValue { $0.nextFire }
            for compiled in stories {
                for agent in compiled.story.agents where !agent.disabled {
                    for (index, definition) in agent.schedules.enumerated() {
                        guard let schedule = try? CronSchedule(definition.cron, timeZone: definition.timeZone) else {
                            continue
                        }
                        let key = ScheduleKey(
                            story: compiled.story.name,
                            agent: agent.key,
                            index: index,
                            cron: definition.cron
                        )
                        guard let due = nextFire[key] ?? schedule.next(after: now) else { continue }
                        if due <= now {
                            do {
                                try await startRun(
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
            // The wake-up time is fixed before the next due times are published: whoever reads them and moves a
            // test clock past them before this loop reaches its sleep then finds that sleep already due.
            let wakeAt = max(earliest.timeIntervalSince1970, self.now() + 0.05)
            state.withLockedValue { [nextFire] in $0.nextFire = nextFire }
            await scheduleWake.wait(until: time.instant(at: wakeAt), on: clock)
        }
    }
}

/// One schedule of one agent: what the scheduler keeps the next time of.
struct ScheduleKey: Hashable {
    var story: String
    var agent: String
    var index: Int
    var cron: String
}
