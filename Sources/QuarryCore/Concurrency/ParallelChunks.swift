import Dispatch

/// Fills an array of `count` results on all cores: the index range is cut into one contiguous chunk per worker,
/// and each worker's `body` stores results for the positions of its chunk (positions it skips keep `initial`).
///
/// Used for the CPU-bound work of large write requests (parsing and indexing documents) that must finish before
/// the request's sequential transaction. Small inputs run on the calling thread.
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
    _ body: @Sendable (Range<Int>, _ store: (Int, Result) -> Void) -> Void
) -> [Result] {
    var results = [Result](repeating: initial, count: count)
    let workers = count >= minimumCount ? min(OnlineProcessors.count, 8) : 1
    results.withUnsafeMutableBufferPointer { buffer in
        let output = DisjointWrites(buffer: buffer)
        let chunk = (count + workers - 1) / max(workers, 1)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let range = (worker * chunk)..<min(count, (worker + 1) * chunk)
            guard !range.isEmpty else { return }
            body(range) { position, value in output.buffer[position] = value }
        }
    }
    return results
}

/// A buffer that concurrent workers write at distinct positions.
///
/// `@unchecked Sendable`: each position is written by exactly one worker, and the buffer outlives the workers.
private struct DisjointWrites<Element>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Element>
}

/// Online processors, read without Foundation (QuarryCore does not import it here).
private enum OnlineProcessors {
    static var count: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 2
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
