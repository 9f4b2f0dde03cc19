/// Encoding of posting lists in the segments file.
///
/// Segments written before merging existed (layout 1, the `postings` table) hold `count u32`, the documents as
/// little-endian `UInt32`s, then `UInt16` frequencies for text. Segments since (layout 2, `segment_terms`) hold the
/// compact form of ``encode(_:frequencies:)``: a mode byte, the count as a varint, then the documents either as
/// varint gaps or, when that is smaller (a term in most documents of the segment), as a bitmap; text frequencies
/// follow as varints. A posting list of a common term shrinks from 4 bytes a document to 1 bit, of a rare one to
/// one or two bytes.
enum PostingsCodec {
    private static let gaps: UInt8 = 1
    private static let bitmap: UInt8 = 2

    /// The compact form of `documents` (ascending, local to the segment) and their frequencies.
    static func encode(_ documents: [UInt32], frequencies: [UInt16]? = nil) -> [UInt8] {
        var gapBytes = 0
        var previous: UInt32 = 0
        for (position, doc) in documents.enumerated() {
            gapBytes += varintLength(UInt64(position == 0 ? doc : doc - previous))
            previous = doc
        }
        let bitmapBytes = documents.last.map { Int($0) / 8 + 1 } ?? 0
        var out: [UInt8] = []
        out.reserveCapacity(min(gapBytes, bitmapBytes) + 6 + (frequencies?.count ?? 0))
        if bitmapBytes < gapBytes {
            out.append(bitmap)
            out.appendVarint(UInt64(documents.count))
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: bitmapBytes))
            for doc in documents { out[start + Int(doc >> 3)] |= 1 << (doc & 7) }
        } else {
            out.append(gaps)
            out.appendVarint(UInt64(documents.count))
            previous = 0
            for (position, doc) in documents.enumerated() {
                out.appendVarint(UInt64(position == 0 ? doc : doc - previous))
                previous = doc
            }
        }
        for frequency in frequencies ?? [] { out.appendVarint(UInt64(frequency)) }
        return out
    }

    /// Calls `body` with each document of a compact list, in order; returns where the documents end (the
    /// frequencies' start), or nil when the bytes are not a compact list.
    @discardableResult
    static func forEachDocument(_ bytes: [UInt8], _ body: (Int) -> Void) -> (count: Int, end: Int)? {
        var position = 1
        guard let mode = bytes.first, let count = bytes.readVarint(at: &position) else { return nil }
        switch mode {
        case gaps:
            var doc = 0
            for index in 0..<Int(count) {
                guard let gap = bytes.readVarint(at: &position) else { return nil }
                doc = index == 0 ? Int(gap) : doc + Int(gap)
                body(doc)
            }
            return (Int(count), position)
        case bitmap:
            // The bitmap runs to the last document's byte; its length follows from counting the set bits.
            let start = position
            var seen = 0
            while seen < Int(count), position < bytes.count {
                var byte = bytes[position]
                while byte != 0 {
                    body((position - start) * 8 + byte.trailingZeroBitCount)
                    byte &= byte - 1
                    seen += 1
                }
                position += 1
            }
            return seen == Int(count) ? (seen, position) : nil
        default:
            return nil
        }
    }

    // MARK: Layout 1

    /// The documents of a list in the first layout.
    static func decodeFirstLayoutDocuments(_ bytes: [UInt8]) -> [UInt32] {
        guard bytes.count >= 4 else { return [] }
        let count = Int(bytes.readLE(UInt32.self, at: 0))
        guard bytes.count >= 4 + count * 4 else { return [] }
        return bytes.readArray(UInt32.self, at: 4, count: count)
    }

    static func varintLength(_ value: UInt64) -> Int {
        max(1, (64 - value.leadingZeroBitCount + 6) / 7)
    }
}

extension [UInt8] {
    /// Appends `value` as a LEB128 varint (7 bits a byte, low first).
    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        append(UInt8(rest))
    }

    /// Reads a LEB128 varint at `position`, advancing it; nil when the bytes end first or it is too long.
    func readVarint(at position: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < count, shift < 64 {
            let byte = self[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}

extension PostingsCodec {
    /// The documents of a stored list of either layout, and its frequencies when it has them (a text token's).
    static func decode(_ bytes: [UInt8], layout: Int) -> (documents: [UInt32], frequencies: [UInt16]?) {
        if layout == 1 {
            let documents = decodeFirstLayoutDocuments(bytes)
            guard bytes.count >= 4 + documents.count * 6, !documents.isEmpty else { return (documents, nil) }
            return (documents, bytes.readArray(UInt16.self, at: 4 + documents.count * 4, count: documents.count))
        }
        var documents: [UInt32] = []
        guard let (count, end) = forEachDocument(bytes, { documents.append(UInt32($0)) }), end < bytes.count else {
            return (documents, nil)
        }
        var position = end
        var frequencies: [UInt16] = []
        frequencies.reserveCapacity(count)
        for _ in 0..<count { frequencies.append(UInt16(clamping: bytes.readVarint(at: &position) ?? 1)) }
        return (documents, frequencies)
    }
}
