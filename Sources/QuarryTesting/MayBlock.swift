import Foundation
public import Testing

/// A suite trait: the suite's tests run on ``ElasticThreadPool/shared`` instead of Swift's cooperative pool.
///
/// Test bodies call the store, the decoder and Liquid synchronously, and some of those calls take seconds. On a
/// two-core machine the cooperative pool has two threads, so two such bodies stop every other test's `await`s —
/// the responses their servers sent wait in the queue until an HTTP client's read timeout fires. On threads of their
/// own, blocking bodies are time-sliced by the kernel and the cooperative pool stays free for the servers' handlers.
public struct MayBlockTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // Suites get the scope once and each test again; the tests' bodies are what may block.
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(ElasticThreadPool.shared) { try await function() }
    }
}

extension Trait where Self == MayBlockTrait {
    /// The suite's tests may block their thread: they run on threads of their own (see ``MayBlockTrait``).
    public static var mayBlock: Self { MayBlockTrait() }
}

/// A task executor that runs each job on an idle thread of its own, and starts another thread when every thread it
/// has is busy; a thread left idle for a few seconds ends. Written by hand: NIO's thread pool and Dispatch's queues
/// have a fixed width (a blocked job holds a thread another job waits for), and no listed package has an executor
/// that grows.
public final class ElasticThreadPool: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs`, `nextJob`, `idle` and `wakeups` are read and written only with `condition` locked.

    /// The pool the ``MayBlockTrait`` runs tests on.
    public static let shared = ElasticThreadPool()

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var nextJob = 0
    /// Threads waiting for a job that no `enqueue` has claimed yet.
    private var idle = 0
    /// Claims made by `enqueue` that a waiting thread has not taken up yet.
    private var wakeups = 0
    private let idleLifetime: TimeInterval = 5

    public init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        let start = idle == 0
        if !start {
            idle -= 1
            wakeups += 1
            condition.signal()
        }
        condition.unlock()
        if start {
            let thread = Thread { [self] in work() }
            thread.name = "quarry-test-elastic"
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            if nextJob < jobs.count {
                let job = jobs[nextJob]
                nextJob += 1
                if nextJob == jobs.count {
                    jobs.removeAll(keepingCapacity: true)
                    nextJob = 0
                }
                condition.unlock()
                job.runSynchronously(on: asUnownedTaskExecutor())
                condition.lock()
                continue
            }
            idle += 1
            while true {
                let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleLifetime))
                if wakeups > 0 {
                    // Claimed (enqueue counted this thread out of `idle`); another thread may have run the job
                    // already, in which case the loop above finds none and this thread waits again.
                    wakeups -= 1
                    break
                }
                if !signalled {
                    idle -= 1
                    condition.unlock()
                    return
                }
            }
        }
    }
}
