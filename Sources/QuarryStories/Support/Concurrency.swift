import Foundation
import NIOConcurrencyHelpers

/// Wakes one waiter (the dispatcher, or the scheduler) when work arrives; a signal sent while nobody waits is kept
/// for the next wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
        var lastID = 0
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    /// Returns at the next signal, or once `deadline` has passed on `clock`: the signal and the sleep race in a
    /// task group, and the loser is cancelled, so that nothing outlives the wait.
    func wait<C: Clock>(until deadline: C.Instant, on clock: C) async {
        let signalled = state.withLockedValue { state in
            defer { state.pending = false }
            return state.pending
        }
        // A deadline already reached returns at once: a test clock moved to exactly `deadline` before this wait
        // began would otherwise keep the sleep until it moves again.
        if signalled || clock.now >= deadline { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.nextSignal() }
            group.addTask { try? await clock.sleep(until: deadline, tolerance: nil) }
            await group.next()
            group.cancelAll()
        }
    }

    private func nextSignal() async {
        let id = state.withLockedValue { state in
            state.lastID += 1
            return state.lastID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    // Cancelled before it could wait (the cancellation handler found no waiter to resume).
                    if Task.isCancelled { return true }
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume()
        }
    }
}

/// The record of a run, once it has ended: whoever waits for it (``StoryEngine/waitForRun(_:)``) may start waiting
/// before or after the engine resolves it.
final class RunWaiter: Sendable {
    private let state = NIOLockedValueBox<(record: RunRecord?, continuation: CheckedContinuation<RunRecord, Never>?)>(
        (nil, nil)
    )

    /// Hands `record` to the waiter; only the first call counts.
    func resolve(_ record: RunRecord) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<RunRecord, Never>? in
            guard state.record == nil else { return nil }
            state.record = record
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: record)
    }

    var record: RunRecord {
        get async {
            await withCheckedContinuation { continuation in
                let resolved = state.withLockedValue { state -> RunRecord? in
                    if let record = state.record { return record }
                    state.continuation = continuation
                    return nil
                }
                if let resolved { continuation.resume(returning: resolved) }
            }
        }
    }
}

/// An agent's attempt took longer than its `timeout`.
struct AgentTimeout: Error, CustomStringConvertible {
    var seconds: Double
    var description: String { String(format: "timed out after %.0f s", seconds) }
}

/// Runs `body`, cancelling it and throwing ``AgentTimeout`` when it takes longer than `seconds` on `clock`.
func withTimeout<C: Clock, Result: Sendable>(
    _ seconds: Double,
    on clock: C,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result where C.Duration == Duration {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await clock.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw AgentTimeout(seconds: seconds) }
        return result
    }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}

/// Seconds since 1970 read from any clock: the clock's instants counted from one moment whose wall-clock time is
/// known, so that a test clock's time moves only when the test moves it.
struct WallTime<C: Clock>: Sendable where C.Duration == Duration {
    let clock: C
    private let origin: C.Instant
    private let originSeconds: Double

    init(clock: C) {
        self.clock = clock
        origin = clock.now
        originSeconds = Date().timeIntervalSince1970
    }

    /// The time now, in seconds since 1970.
    @Sendable func now() -> Double {
        originSeconds + origin.duration(to: clock.now).seconds
    }

    /// The clock's instant at `seconds` since 1970.
    func instant(at seconds: Double) -> C.Instant {
        origin.advanced(by: .seconds(seconds - originSeconds))
    }
}
