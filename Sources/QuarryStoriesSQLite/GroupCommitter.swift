import Foundation
import GRDB
import NIOConcurrencyHelpers

/// Runs the write transactions that workers submit at about the same time as one SQLite transaction (group
/// commit), each submitter resumed only after the transaction holding its work has committed; when a piece fails,
/// the group runs again with each piece in a savepoint of its own, so only the failing piece is lost. Pages that
/// many events touch (the indexes' last pages) are then written once per group instead of once per event.
///
/// Groups run one at a time on a serial queue of their own: SQLite has one writer at a time anyway, and a writer
/// that holds a thread of NIO's pool for as long as work keeps arriving would leave the reads one thread fewer.
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
        guard let value = box.withLockedValue({ $0 }) else {
            throw StoryDatabaseError("a group commit lost its result")
        }
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
