import Foundation

/// Runs blocking work (a child process or socket waited for, decoding that waits for each bulk request, a store's
/// SQLite transaction) on a thread of its own and returns its result.
///
/// Never on Swift's cooperative pool, whose few threads (one per core) every task of the process needs — on two
/// cores, two such waits there stopped every other task, timers included — nor on NIO's shared thread pool, which
/// every in-process server needs. Starting a thread costs microseconds against the milliseconds of the work.
public func onThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
