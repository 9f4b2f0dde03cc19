import Foundation

/// Fills an array of `count` results on all cores: the index range is cut into one contiguous chunk per worker,
/// and each worker's `body` stores results for the positions of its chunk (positions it skips keep `initial`).
///
/// Used for the CPU-bound work of large write requests (parsing and indexing documents) that must finish before
/// the request's sequential transaction. Small inputs run on the calling thread.
///
/// The first chunk runs on the calling thread and every other one on a thread of its own, never through
/// `DispatchQueue.concurrentPerform`: on Linux Swift's cooperative pool shares Dispatch's global threads, and a task
/// enqueued as a `concurrentPerform` started waited for it to end (a `Task.sleep(10 ms)` woke 2 s late behind two
/// 2 s iterations, five runs of five; 10–14 ms with the same work on a thread of its own). With requests indexed side
/// by side, that stalled other clients' requests in `quarry serve` and other tests' servers in the suite. Starting a
/// thread costs microseconds against a chunk's milliseconds.
///
/// ```swift
/// let parsed = parallelChunks(count: lines.count, initial: nil) { range, store in
///     for position in range { store(position, parse(lines[position])) }
/// }
/// ```
public func parallelChunks<Result>(
    count: Int,
    initial: Result,
    minimumCount: Int = 256,
    _ body: @escaping @Sendable (Range<Int>, _ store: (Int, Result) -> Void) -> Void
) -> [Result] {
    var results = [Result](repeating: initial, count: count)
    let workers = count >= minimumCount ? min(ProcessInfo.processInfo.activeProcessorCount, 8) : 1
    results.withUnsafeMutableBufferPointer { buffer in
        let output = DisjointWrites(buffer: buffer)
        let chunk = (count + workers - 1) / max(workers, 1)
        let work: @Sendable (Int) -> Void = { worker in
            let range = (worker * chunk)..<min(count, (worker + 1) * chunk)
            guard !range.isEmpty else { return }
            body(range) { position, value in output.buffer[position] = value }
        }
        let done = DispatchGroup()
        for worker in 1..<workers {
            done.enter()
            Thread {
                work(worker)
                done.leave()
            }.start()
        }
        work(0)
        done.wait()
    }
    return results
}

/// A buffer that concurrent workers write at distinct positions.
///
/// `@unchecked Sendable`: each position is written by exactly one worker, and the buffer outlives the workers.
private struct DisjointWrites<Element>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Element>
}
