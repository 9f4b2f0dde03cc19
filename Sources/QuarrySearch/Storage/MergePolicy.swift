import Foundation

/// Which flushed segments to merge next: Lucene's tiered idea (segments of similar size merged, about
/// ``segmentsPerTier`` of each size kept, deleted documents reclaimed) restricted to neighbours, because a segment
/// here is a contiguous range of document numbers and a merged one must be too (as in Lucene's log merge policy).
///
/// Sizes are live documents. A segment's tier is its size's order of magnitude above ``floorDocuments`` (rounded,
/// so that ``segmentsPerTier`` merged segments of one tier make one of the next); when that many neighbours share a
/// tier, up to ``maxMergeAtOnce`` of them are merged, within ``maxMergedDocuments``. A segment more than
/// ``deletesAllowed`` deleted is rewritten alone. Should the segments still exceed ``maxSegments`` (sizes that never
/// line up), the neighbours with the fewest documents between them are merged.
struct MergePolicy: Sendable {
    /// Segments smaller than this count as this size (a freshly flushed segment's).
    var floorDocuments: Int
    var segmentsPerTier = 10
    var maxMergeAtOnce = 10
    /// Merges that would make a larger segment are not started (except by a forced merge).
    var maxMergedDocuments = 5_000_000
    /// The share of a segment's documents that may be deleted before it is rewritten.
    var deletesAllowed = 0.2
    var maxSegments = 40

    /// A flushed segment as the policy sees it.
    struct Segment: Sendable, Hashable {
        var live: Int
        var total: Int
    }

    init(floorDocuments: Int) {
        self.floorDocuments = max(1, floorDocuments)
    }

    func tier(_ documents: Int) -> Int {
        guard documents > floorDocuments else { return 0 }
        let magnitude = (Double(documents) / Double(floorDocuments)).logarithm(base: Double(segmentsPerTier))
        return Int((magnitude + 0.5).rounded(.down))
    }

    /// The neighbours to merge next (positions in `segments`, oldest first), or nil when none need merging.
    func nextMerge(_ segments: [Segment]) -> Range<Int>? {
        let tiers = segments.map { tier($0.live) }
        var start = 0
        while start < segments.count {
            var end = start + 1
            while end < segments.count, tiers[end] == tiers[start] { end += 1 }
            if end - start >= segmentsPerTier, let window = fitting(segments, from: start, upTo: end) {
                return window
            }
            start = end
        }
        if let rewrite = segments.indices.first(where: { position in
            let segment = segments[position]
            return segment.total > 0 && Double(segment.total - segment.live) > deletesAllowed * Double(segment.total)
        }) {
            return rewrite..<rewrite + 1
        }
        if segments.count > maxSegments { return smallestNeighbours(segments, count: segmentsPerTier) }
        return nil
    }

    /// The longest window from `start` (at most ``maxMergeAtOnce``, before `end`) within ``maxMergedDocuments``,
    /// when it has at least two segments.
    private func fitting(_ segments: [Segment], from start: Int, upTo end: Int) -> Range<Int>? {
        var total = 0
        var last = start
        while last < min(end, start + maxMergeAtOnce), total + segments[last].live <= maxMergedDocuments {
            total += segments[last].live
            last += 1
        }
        return last - start >= 2 ? start..<last : nil
    }

    /// The `count` neighbours (or all, when fewer) holding the fewest live documents between them.
    func smallestNeighbours(_ segments: [Segment], count: Int) -> Range<Int>? {
        let width = min(count, segments.count)
        guard width >= 2 else { return nil }
        var best = 0..<width
        var bestTotal = segments[best].reduce(0) { $0 + $1.live }
        var total = bestTotal
        for start in stride(from: 1, through: segments.count - width, by: 1) {
            total += segments[start + width - 1].live - segments[start - 1].live
            if total < bestTotal {
                best = start..<start + width
                bestTotal = total
            }
        }
        return best
    }
}

extension Double {
    fileprivate func logarithm(base: Double) -> Double {
        Foundation.log(self) / Foundation.log(base)
    }
}
