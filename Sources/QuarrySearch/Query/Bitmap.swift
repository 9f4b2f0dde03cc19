/// A set of document numbers as a dense bitmap: boolean query logic is word-wide AND/OR/AND-NOT, which keeps
/// `bool` queries over millions of documents in the sub-millisecond range.
struct Bitmap: Sendable, Equatable {
    private(set) var words: [UInt64]
    /// Documents are numbered `0 ..< capacity`.
    let capacity: Int

    init(capacity: Int, filled: Bool = false) {
        self.capacity = capacity
        words = Array(repeating: filled ? ~0 : 0, count: (capacity + 63) / 64)
        if filled { clearTail() }
    }

    private mutating func clearTail() {
        let extra = words.count * 64 - capacity
        if extra > 0, !words.isEmpty { words[words.count - 1] &= ~0 >> UInt64(extra) }
    }

    mutating func insert(_ doc: Int) {
        guard doc >= 0, doc < capacity else { return }
        words[doc >> 6] |= 1 << UInt64(doc & 63)
    }

    mutating func remove(_ doc: Int) {
        guard doc >= 0, doc < capacity else { return }
        words[doc >> 6] &= ~(1 << UInt64(doc & 63))
    }

    func contains(_ doc: Int) -> Bool {
        guard doc >= 0, doc < capacity else { return false }
        return words[doc >> 6] & (1 << UInt64(doc & 63)) != 0
    }

    /// Adds every document in `range`.
    mutating func insert(range: Range<Int>) {
        var doc = max(0, range.lowerBound)
        let end = min(capacity, range.upperBound)
        while doc < end {
            if doc & 63 == 0, doc + 64 <= end {
                words[doc >> 6] = ~0
                doc += 64
            } else {
                insert(doc)
                doc += 1
            }
        }
    }

    /// Whether any member lies in `range`.
    func intersects(_ range: Range<Int>) -> Bool {
        var doc = max(0, range.lowerBound)
        let end = min(capacity, range.upperBound)
        while doc < end {
            if doc & 63 == 0, doc + 64 <= end {
                if words[doc >> 6] != 0 { return true }
                doc += 64
            } else {
                if contains(doc) { return true }
                doc += 1
            }
        }
        return false
    }

    mutating func formIntersection(_ other: Bitmap) {
        for i in words.indices { words[i] &= i < other.words.count ? other.words[i] : 0 }
    }

    mutating func formUnion(_ other: Bitmap) {
        for i in 0..<min(words.count, other.words.count) { words[i] |= other.words[i] }
    }

    mutating func subtract(_ other: Bitmap) {
        for i in 0..<min(words.count, other.words.count) { words[i] &= ~other.words[i] }
    }

    /// Removes the documents `offset + d` for each `d` that `mask` (a merged segment's live documents, numbered
    /// from its base) does not hold: the documents a merge dropped.
    mutating func removeAbsent(from mask: Bitmap, at offset: Int) {
        for (index, word) in mask.words.enumerated() {
            let tail = mask.capacity & 63
            let valid = index == mask.words.count - 1 && tail != 0 ? ~UInt64(0) >> UInt64(64 - tail) : ~UInt64(0)
            var holes = ~word & valid
            while holes != 0 {
                remove(offset + (index << 6 | holes.trailingZeroBitCount))
                holes &= holes - 1
            }
        }
    }

    /// The members as little-endian bytes (bit `d` of byte `d / 8`), for storing.
    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(words.count * 8)
        for word in words { out.appendLE(word) }
        return out
    }

    /// A bitmap of `capacity` documents from ``bytes``; nil when there are too few bytes.
    init?(bytes: [UInt8], capacity: Int) {
        let count = (capacity + 63) / 64
        guard bytes.count >= count * 8 else { return nil }
        self.capacity = capacity
        words = (0..<count).map { bytes.readLE(UInt64.self, at: $0 * 8) }
        clearTail()
    }

    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    var isEmpty: Bool { !words.contains { $0 != 0 } }

    /// Calls `body` for each member in increasing order until it returns false.
    func visit(_ body: (Int) -> Bool) {
        for (index, word) in words.enumerated() where word != 0 {
            var w = word
            while w != 0 {
                let bit = w.trailingZeroBitCount
                if !body(index << 6 | bit) { return }
                w &= w - 1
            }
        }
    }

    /// The members in increasing order.
    var members: [Int] {
        var result: [Int] = []
        visit {
            result.append($0)
            return true
        }
        return result
    }
}
