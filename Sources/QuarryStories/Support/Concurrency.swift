import Foundation
import GRDB
import NIOConcurrencyHelpers

/// Wakes the dispatcher when work arrives; a signal sent while nobody waits is kept for the next wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Ends the wait after its time; cancelled by a signal, so that no sleeping timer outlives its wait.
        var timer: Task<Void, Never>?
        var generation = 0
    }

    private let state = NIOLockedValueBox(State())

    func signal() {
        let (waiter, timer) = state.withLockedValue {
            state -> (CheckedContinuation<Void, Never>?, Task<Void, Never>?) in
            guard let waiter = state.waiter else {
                state.pending = true
                return (nil, nil)
            }
            defer {
                state.waiter = nil
                state.timer = nil
            }
            return (waiter, state.timer)
        }
        timer?.cancel()
        waiter?.resume()
    }

    /// Returns at the next signal, or after `seconds`.
    func wait(seconds: Double) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waitingNow = state.withLockedValue { state -> Bool in
                if state.pending {
                    state.pending = false
                    return false
                }
                state.generation += 1
                let generation = state.generation
                state.waiter = continuation
                state.timer = Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    if Task.isCancelled { return }
                    let waiter = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                        guard state.generation == generation, let waiter = state.waiter else { return nil }
                        state.waiter = nil
                        state.timer = nil
                        return waiter
                    }
                    waiter?.resume()
                }
                return true
            }
            if !waitingNow { continuation.resume() }
        }
    }
}

/// An agent's attempt took longer than its `timeout`.
struct AgentTimeout: Error, CustomStringConvertible {
    var seconds: Double
    var description: String { String(format: "timed out after %.0f s", seconds) }
}

/// Runs `body`, cancelling it and throwing ``AgentTimeout`` when it takes longer than `seconds`.
func withTimeout<Result: Sendable>(
    _ seconds: Double,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw AgentTimeout(seconds: seconds) }
        return result
    }
}

/// Runs the write transactions that workers submit at about the same time as one SQLite transaction (group
/// commit), each submitter resumed only after the transaction holding its work has committed; when a piece fails,
/// the group runs again with each piece in a savepoint of its own, so only the failing piece is lost. Pages that many events touch (the indexes'
/// last pages) are then written once per group instead of once per event.
final class GroupCommitter: Sendable {
    private final class Item: @unchecked Sendable {
        let work: (Database) throws -> Void
        var error: (any Error)?
        let resume: @Sendable ((any Error)?) -> Void

        init(work: @escaping (Database) throws -> Void, resume: @escaping @Sendable ((any Error)?) -> Void) {
            self.work = work
            self.resume = resume
        }
    }

    private let pool: DatabasePool
    private let queue = DispatchQueue(label: "quarry.stories.commit")
    private let pending = NIOLockedValueBox<(items: [Item], draining: Bool)>(([], false))

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `work` in the next group transaction and returns its result once that transaction has committed.
    func write<Result: Sendable>(_ work: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        let box = NIOLockedValueBox<Result?>(nil)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let item = Item(
                work: { db in
                    let value = try work(db)
                    box.withLockedValue { $0 = value }
                },
                resume: { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume() }
                }
            )
            let start = pending.withLockedValue { state -> Bool in
                state.items.append(item)
                if state.draining { return false }
                state.draining = true
                return true
            }
            if start { queue.async { self.drain() } }
        }
        guard let value = box.withLockedValue({ $0 }) else { throw StoryEngineError("a group commit lost its result") }
        return value
    }

    private func drain() {
        while true {
            let batch = pending.withLockedValue { state -> [Item] in
                let items = state.items
                state.items = []
                if items.isEmpty { state.draining = false }
                return items
            }
            if batch.isEmpty { return }
            var commitError: (any Error)?
            do {
                // All at once; if a piece fails (rare), the whole transaction rolls back and the pieces run
                // again, each in a savepoint of its own, so only the failing one is lost.
                try pool.write { db in
                    for item in batch { try item.work(db) }
                }
            } catch {
                do {
                    try pool.write { db in
                        for item in batch {
                            do {
                                try db.inSavepoint {
                                    try item.work(db)
                                    return .commit
                                }
                            } catch {
                                item.error = error
                            }
                        }
                    }
                } catch {
                    commitError = error
                }
            }
            for item in batch { item.resume(commitError ?? item.error) }
        }
    }
}
