import QuarryCore

/// Doc values of one field in one segment: for each document of the segment, zero or more values, addressed by
/// the document's number relative to the segment's base. Numbers, dates and booleans are `Int64` or `Double`,
/// addresses 16-byte ``IPAddress``es, keywords strings. Used for sorting, ranges and comparisons.
struct Column: Sendable {
    enum Kind: UInt8, Sendable {
        case int = 0
        case double = 1
        case string = 2
        case ip = 3
    }

    let kind: Kind
    /// `offsets[d]..<offsets[d + 1]` indexes the values of local document `d`.
    private(set) var offsets: [UInt32] = [0]
    private(set) var ints: [Int64] = []
    private(set) var doubles: [Double] = []
    private(set) var strings: [String] = []
    private(set) var ips: [IPAddress] = []

    init(kind: Kind) {
        self.kind = kind
    }

    /// Roughly the memory the decoded column holds, for the column cache's budget.
    var memoryBytes: Int {
        offsets.count * 4 + ints.count * 8 + doubles.count * 8 + ips.count * 16
            + strings.reduce(0) { $0 + 16 + $1.utf8.count }
    }

    /// Number of documents covered.
    var documentCount: Int { offsets.count - 1 }

    /// Documents with at least one value.
    var documentsWithValues: Int {
        var count = 0
        for doc in 0..<documentCount where offsets[doc + 1] > offsets[doc] { count += 1 }
        return count
    }

    /// Pads with empty documents up to `count`.
    mutating func pad(to count: Int) {
        guard documentCount < count else { return }
        let last = offsets[offsets.count - 1]
        offsets.append(contentsOf: repeatElement(last, count: count - documentCount))
    }

    private mutating func beginValue(doc: Int) {
        if documentCount < doc + 1 {
            pad(to: doc)
            offsets.append(offsets[offsets.count - 1])
        }
        offsets[doc + 1] += 1
    }

    mutating func append(doc: Int, int value: Int64) {
        beginValue(doc: doc)
        ints.append(value)
    }

    mutating func append(doc: Int, double value: Double) {
        beginValue(doc: doc)
        doubles.append(value)
    }

    mutating func append(doc: Int, string value: String) {
        beginValue(doc: doc)
        strings.append(value)
    }

    mutating func append(doc: Int, ip value: IPAddress) {
        beginValue(doc: doc)
        ips.append(value)
    }

    mutating func append(doc: Int, _ value: IndexedDocument.Value) {
        switch value {
        case .int(let v): append(doc: doc, int: v)
        case .double(let v): append(doc: doc, double: v)
        case .string(let v): append(doc: doc, string: v)
        case .ip(let v): append(doc: doc, ip: v)
        }
    }

    /// Appends every document of `other` after padding to `start`: `other`'s document `d` becomes `start + d`
    /// (a request's documents, indexed on their own, joining the segment).
    mutating func append(contentsOf other: Column, at start: Int) {
        guard other.kind == kind else {
            for doc in 0..<other.documentCount { append(valuesOf: doc, in: other, as: start + doc) }
            return
        }
        pad(to: start)
        let shift = offsets[offsets.count - 1]
        offsets.append(contentsOf: other.offsets.dropFirst().lazy.map { $0 + shift })
        ints.append(contentsOf: other.ints)
        doubles.append(contentsOf: other.doubles)
        strings.append(contentsOf: other.strings)
        ips.append(contentsOf: other.ips)
    }

    /// Appends the values of `other`'s document `doc` as document `target` (a merge renumbering documents);
    /// numbers are converted when the two columns' kinds differ, other values of a different kind are left out.
    mutating func append(valuesOf doc: Int, in other: Column, as target: Int) {
        for position in other.range(doc) {
            switch (kind, other.kind) {
            case (.int, .int): append(doc: target, int: other.ints[position])
            case (.int, .double): append(doc: target, int: Int64(exactly: other.doubles[position].rounded()) ?? 0)
            case (.double, .double): append(doc: target, double: other.doubles[position])
            case (.double, .int): append(doc: target, double: Double(other.ints[position]))
            case (.string, .string): append(doc: target, string: other.strings[position])
            case (.ip, .ip): append(doc: target, ip: other.ips[position])
            default: continue
            }
        }
    }

    /// The sum of the integer values (a text field's token count, from its length column).
    var intTotal: Int { ints.reduce(0) { $0 + Int($1) } }

    func range(_ doc: Int) -> Range<Int> {
        guard doc + 1 < offsets.count else { return 0..<0 }
        return Int(offsets[doc])..<Int(offsets[doc + 1])
    }

    /// The values of a document as sortable keys.
    func values(_ doc: Int) -> [SortKey] {
        let range = range(doc)
        switch kind {
        case .int: return ints[range].map { .int($0) }
        case .double: return doubles[range].map { .double($0) }
        case .string: return strings[range].map { .string($0) }
        case .ip: return ips[range].map { .ip($0) }
        }
    }

    /// Smallest and largest numeric value (ints and doubles as `Double`), for pruning whole segments.
    var numericBounds: (min: Double, max: Double)? {
        switch kind {
        case .int:
            guard let lo = ints.min(), let hi = ints.max() else { return nil }
            return (Double(lo), Double(hi))
        case .double:
            guard let lo = doubles.min(), let hi = doubles.max() else { return nil }
            return (lo, hi)
        default: return nil
        }
    }

    // MARK: Encoding

    /// `kind u8 | docs u32 | values u32 | counts | values…` in little-endian, the kind's two high bits set (files
    /// before had the offsets themselves, `offsets u32…`, and raw values, and neither bit; they still decode). The
    /// counts of values per document: a bitmap when no document has more than one (most fields: 1 bit a document
    /// instead of 4 bytes), else a byte each, 255 meaning "the next u32 of the overflow list". Integers are packed:
    /// the smallest, then each one's distance from it in 1, 2, 4 or 8 bytes (a segment's timestamps fit 4, ports 2);
    /// addresses that are all IPv4 take 4 bytes each instead of 16.
    func encoded() -> [UInt8] {
        var out: [UInt8] = [kind.rawValue | Self.compactCounts | Self.packedValues]
        out.reserveCapacity(9 + offsets.count * 4 + ints.count * 8 + doubles.count * 8 + ips.count * 16)
        out.appendLE(UInt32(documentCount))
        let valueCount: Int
        switch kind {
        case .int: valueCount = ints.count
        case .double: valueCount = doubles.count
        case .string: valueCount = strings.count
        case .ip: valueCount = ips.count
        }
        out.appendLE(UInt32(valueCount))
        encodeCounts(into: &out)
        switch kind {
        case .int: encodePackedInts(into: &out)
        case .double: doubles.withUnsafeBytes { out.append(contentsOf: $0) }
        case .ip:
            let ipv4 = ips.allSatisfy { $0.high == 0 && $0.low >> 32 == 0xFFFF }
            out.append(ipv4 ? 4 : 16)
            for ip in ips {
                if ipv4 {
                    out.appendLE(UInt32(truncatingIfNeeded: ip.low))
                } else {
                    out.appendLE(ip.high)
                    out.appendLE(ip.low)
                }
            }
        case .string:
            // Dictionary-encoded: the distinct values once, then a 4-byte ordinal per value. Keyword doc values
            // repeat heavily (`event.dataset`, `host.name`), so this is far smaller than the strings themselves.
            var table = TermTable()
            var codes: [UInt32] = []
            codes.reserveCapacity(strings.count)
            for string in strings { codes.append(UInt32(table.intern(string))) }
            out.appendLE(UInt32(table.count))
            table.withTerms { _, bytes in
                out.appendLE(UInt32(bytes.count))
                out.append(contentsOf: bytes)
            }
            codes.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The kind byte's flag for counts instead of offsets.
    static let compactCounts: UInt8 = 0x80
    /// The kind byte's flag for packed integers and addresses (a width byte before the values).
    static let packedValues: UInt8 = 0x40

    private func encodePackedInts(into out: inout [UInt8]) {
        let base = ints.min() ?? 0
        let span = ints.reduce(UInt64(0)) { max($0, UInt64(bitPattern: $1 &- base)) }
        let width = span <= 0xFF ? 1 : span <= 0xFFFF ? 2 : span <= 0xFFFF_FFFF ? 4 : 8
        out.append(UInt8(width))
        out.appendLE(base)
        for value in ints {
            let distance = UInt64(bitPattern: value &- base)
            switch width {
            case 1: out.append(UInt8(distance))
            case 2: out.appendLE(UInt16(distance))
            case 4: out.appendLE(UInt32(distance))
            default: out.appendLE(distance)
            }
        }
    }

    private static func decodePackedInts(_ bytes: [UInt8], at position: Int, count: Int) -> [Int64]? {
        guard bytes.count >= position + 9 else { return nil }
        let width = Int(bytes[position])
        guard [1, 2, 4, 8].contains(width), bytes.count >= position + 9 + count * width else { return nil }
        let base = bytes.readLE(Int64.self, at: position + 1)
        let start = position + 9
        var values = [Int64]()
        values.reserveCapacity(count)
        for index in 0..<count {
            let at = start + index * width
            let distance: UInt64
            switch width {
            case 1: distance = UInt64(bytes[at])
            case 2: distance = UInt64(bytes.readLE(UInt16.self, at: at))
            case 4: distance = UInt64(bytes.readLE(UInt32.self, at: at))
            default: distance = bytes.readLE(UInt64.self, at: at)
            }
            values.append(base &+ Int64(bitPattern: distance))
        }
        return values
    }

    /// Per-document value counts, as ``encoded()`` describes.
    private func encodeCounts(into out: inout [UInt8]) {
        let docs = documentCount
        var single = true
        for doc in 0..<docs where offsets[doc + 1] - offsets[doc] > 1 {
            single = false
            break
        }
        if single {
            out.append(0)
            var bits = [UInt8](repeating: 0, count: (docs + 7) / 8)
            for doc in 0..<docs where offsets[doc + 1] > offsets[doc] { bits[doc >> 3] |= 1 << UInt8(doc & 7) }
            out += bits
            return
        }
        out.append(1)
        var overflow: [UInt32] = []
        for doc in 0..<docs {
            let count = offsets[doc + 1] - offsets[doc]
            if count >= 255 {
                out.append(255)
                overflow.append(count)
            } else {
                out.append(UInt8(count))
            }
        }
        out.appendLE(UInt32(overflow.count))
        overflow.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// The offsets from ``encodeCounts(into:)``'s bytes at `position`, which moves past them; nil when damaged.
    private static func decodeCounts(_ bytes: [UInt8], at position: inout Int, docs: Int, values: Int) -> [UInt32]? {
        guard position < bytes.count else { return nil }
        let mode = bytes[position]
        position += 1
        var offsets = [UInt32](repeating: 0, count: docs + 1)
        if mode == 0 {
            let length = (docs + 7) / 8
            guard bytes.count >= position + length else { return nil }
            var total: UInt32 = 0
            for doc in 0..<docs {
                if bytes[position + doc >> 3] & (1 << UInt8(doc & 7)) != 0 { total += 1 }
                offsets[doc + 1] = total
            }
            position += length
        } else {
            guard bytes.count >= position + docs + 4 else { return nil }
            let overflowCount = Int(bytes.readLE(UInt32.self, at: position + docs))
            let overflowStart = position + docs + 4
            guard bytes.count >= overflowStart + overflowCount * 4 else { return nil }
            var total: UInt32 = 0
            var next = 0
            for doc in 0..<docs {
                var count = UInt32(bytes[position + doc])
                if count == 255 {
                    guard next < overflowCount else { return nil }
                    count = bytes.readLE(UInt32.self, at: overflowStart + next * 4)
                    next += 1
                }
                total &+= count
                offsets[doc + 1] = total
            }
            position = overflowStart + overflowCount * 4
        }
        guard Int(offsets[docs]) == values else { return nil }
        return offsets
    }

    /// Decodes ``encoded()``; `nil` when the blob is damaged.
    init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 9, let kind = Kind(rawValue: bytes[0] & ~(Self.compactCounts | Self.packedValues)) else {
            return nil
        }
        let packed = bytes[0] & Self.packedValues != 0
        self.kind = kind
        let docs = Int(bytes.readLE(UInt32.self, at: 1))
        let valueCount = Int(bytes.readLE(UInt32.self, at: 5))
        var position = 9
        if bytes[0] & Self.compactCounts != 0 {
            guard let decoded = Self.decodeCounts(bytes, at: &position, docs: docs, values: valueCount) else {
                return nil
            }
            offsets = decoded
        } else {
            guard bytes.count >= position + (docs + 1) * 4 else { return nil }
            offsets = bytes.readArray(UInt32.self, at: position, count: docs + 1)
            position += (docs + 1) * 4
        }
        switch kind {
        case .int where packed:
            guard let values = Self.decodePackedInts(bytes, at: position, count: valueCount) else { return nil }
            ints = values
        case .int:
            guard bytes.count >= position + valueCount * 8 else { return nil }
            ints = bytes.readArray(Int64.self, at: position, count: valueCount)
        case .double:
            guard bytes.count >= position + valueCount * 8 else { return nil }
            doubles = bytes.readArray(Double.self, at: position, count: valueCount)
        case .ip where packed && position < bytes.count && bytes[position] == 4:
            position += 1
            guard bytes.count >= position + valueCount * 4 else { return nil }
            ips = (0..<valueCount).map { IPAddress(ipv4: bytes.readLE(UInt32.self, at: position + $0 * 4)) }
        case .ip:
            if packed {
                guard position < bytes.count, bytes[position] == 16 else { return nil }
                position += 1
            }
            guard bytes.count >= position + valueCount * 16 else { return nil }
            ips.reserveCapacity(valueCount)
            for i in 0..<valueCount {
                ips.append(
                    IPAddress(
                        high: bytes.readLE(UInt64.self, at: position + i * 16),
                        low: bytes.readLE(UInt64.self, at: position + i * 16 + 8)
                    )
                )
            }
        case .string:
            guard position + 4 <= bytes.count else { return nil }
            let dictionaryCount = Int(bytes.readLE(UInt32.self, at: position))
            position += 4
            var dictionary: [String] = []
            dictionary.reserveCapacity(dictionaryCount)
            for _ in 0..<dictionaryCount {
                guard position + 4 <= bytes.count else { return nil }
                let length = Int(bytes.readLE(UInt32.self, at: position))
                position += 4
                guard position + length <= bytes.count else { return nil }
                dictionary.append(String(decoding: bytes[position..<position + length], as: UTF8.self))
                position += length
            }
            guard bytes.count >= position + valueCount * 4 else { return nil }
            let codes = bytes.readArray(UInt32.self, at: position, count: valueCount)
            strings.reserveCapacity(valueCount)
            for code in codes {
                guard Int(code) < dictionary.count else { return nil }
                strings.append(dictionary[Int(code)])
            }
        }
    }
}

/// A comparable doc value, for sorting and `search_after`.
enum SortKey: Sendable, Hashable, Comparable {
    case int(Int64)
    case double(Double)
    case string(String)
    case ip(IPAddress)

    static func < (a: SortKey, b: SortKey) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y
        case (.string(let x), .string(let y)): return x.utf8.lexicographicallyPrecedes(y.utf8)
        case (.ip(let x), .ip(let y)): return x < y
        default: return (a.number ?? 0) < (b.number ?? 0)
        }
    }

    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    func readArray<T>(_: T.Type, at offset: Int, count: Int) -> [T] {
        [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            self.withUnsafeBytes { source in
                let raw = UnsafeMutableRawBufferPointer(buffer)
                raw.copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: source[offset..<offset + count * MemoryLayout<T>.stride])
                )
            }
            initialized = count
        }
    }
}
