#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The distinct terms of one field of the in-memory segment, numbered in the order they first came, their bytes
/// side by side in one array.
///
/// Written by hand: a `[String: …]` dictionary hashed every posting with SipHash and kept a string object per term
/// (reference counted on every lookup), a fifth of the time of adding a document to the segment; no listed package
/// has a table of byte strings. Open addressing with linear probing over a power-of-two slot array; the hash is
/// a multiply-and-fold of eight bytes at a time — enough for a table that lives in one process and is never fed
/// by an adversary's choice of hash seed, since a collision only costs a comparison of bytes.
struct TermTable: Sendable {
    /// The terms' bytes, one after another.
    private var bytes: [UInt8] = []
    /// `ends[id]`: where term `id`'s bytes end in `bytes` (it starts where the one before ends).
    private var ends: [UInt32] = []
    /// Each term's hash, to grow the slots without hashing again.
    private var hashes: [UInt32] = []
    /// 0 for an empty slot, else a term id plus one.
    private var slots: [UInt32] = []

    /// How many distinct terms there are; their ids are `0..<count`.
    var count: Int { ends.count }

    var isEmpty: Bool { ends.isEmpty }

    /// The id of `term`, numbering it if it is new.
    mutating func intern(_ term: String) -> Int {
        if let id = term.utf8.withContiguousStorageIfAvailable({ intern(UnsafeRawBufferPointer($0)) }) { return id }
        var contiguous = term
        return contiguous.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// The id of the term whose bytes are `term`, numbering it if it is new.
    mutating func intern(_ term: UnsafeRawBufferPointer) -> Int {
        if slots.count < 2 * (count + 1) { grow() }
        let hash = Self.hash(term)
        let (slot, found) = probe(term, hash)
        if let found { return found }
        let id = count
        bytes.append(contentsOf: term)
        ends.append(UInt32(bytes.count))
        hashes.append(hash)
        slots[slot] = UInt32(id + 1)
        return id
    }

    /// The id of `term`, if it is in the table.
    func id(of term: String) -> Int? {
        if let found = term.utf8.withContiguousStorageIfAvailable({ id(of: UnsafeRawBufferPointer($0)) }) {
            return found
        }
        var contiguous = term
        return contiguous.withUTF8 { id(of: UnsafeRawBufferPointer($0)) }
    }

    /// The id of the term whose bytes are `term`, if it is in the table.
    func id(of term: UnsafeRawBufferPointer) -> Int? {
        guard !slots.isEmpty else { return nil }
        return probe(term, Self.hash(term)).id
    }

    /// Where `term` is in the slots, or the empty slot where it would go.
    private func probe(_ term: UnsafeRawBufferPointer, _ hash: UInt32) -> (slot: Int, id: Int?) {
        let mask = slots.count - 1
        var slot = Int(hash) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { return (slot, nil) }
            let id = Int(entry) - 1
            if hashes[id] == hash, equals(id, term) { return (slot, id) }
            slot = (slot + 1) & mask
        }
    }

    /// Term `id` as text.
    func term(_ id: Int) -> String {
        bytes.withUnsafeBufferPointer { String(decoding: $0[range(id)], as: UTF8.self) }
    }

    /// Calls `body` with each term's id and bytes, by id.
    func withTerms(_ body: (Int, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            for id in 0..<count { body(id, UnsafeRawBufferPointer(rebasing: all[range(id)])) }
        }
    }

    /// Every term as text, by id.
    var terms: [String] { (0..<count).map(term) }

    /// The ids in the byte order of their terms (SQLite's order of `TEXT`, and so of the segment's rows).
    func idsInByteOrder() -> [Int] {
        bytes.withUnsafeBufferPointer { all in
            let base = UnsafeRawPointer(all.baseAddress)
            return (0..<count).sorted { a, b in
                let first = range(a)
                let second = range(b)
                let common = min(first.count, second.count)
                if common > 0, let base {
                    let order = memcmp(base + first.lowerBound, base + second.lowerBound, common)
                    if order != 0 { return order < 0 }
                }
                return first.count < second.count
            }
        }
    }

    private func range(_ id: Int) -> Range<Int> {
        (id == 0 ? 0 : Int(ends[id - 1]))..<Int(ends[id])
    }

    private func equals(_ id: Int, _ term: UnsafeRawBufferPointer) -> Bool {
        let range = range(id)
        guard range.count == term.count else { return false }
        guard let other = term.baseAddress, range.count > 0 else { return true }
        return bytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + range.lowerBound, other, range.count) == 0 }
    }

    private mutating func grow() {
        let size = max(16, slots.count * 2)
        slots = [UInt32](repeating: 0, count: size)
        let mask = size - 1
        for id in 0..<count {
            var slot = Int(hashes[id]) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = UInt32(id + 1)
        }
    }

    /// The length mixed into the starting state, then eight bytes at a time, each word multiplied into the state
    /// and folded (the last word padded with zeros); the high half is kept, where the multiplications carried to.
    static func hash(_ term: UnsafeRawBufferPointer) -> UInt32 {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(term.count)
        var offset = 0
        while offset + 8 <= term.count {
            let word = term.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            state = (state ^ word) &* 0xBF58_476D_1CE4_E5B9
            state ^= state >> 31
            offset += 8
        }
        if offset < term.count {
            var word: UInt64 = 0
            for index in offset..<term.count { word |= UInt64(term[index]) << (8 * UInt64(index - offset)) }
            state = (state ^ word) &* 0x94D0_49BB_1331_11EB
            state ^= state >> 29
        }
        state = (state ^ (state >> 32)) &* 0xBF58_476D_1CE4_E5B9
        return UInt32(truncatingIfNeeded: state >> 32)
    }
}
