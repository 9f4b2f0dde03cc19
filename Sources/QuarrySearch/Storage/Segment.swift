import QuarryCore

/// What indexing one document produced: exact terms (keywords, addresses, booleans, `_field_names`), analyzed
/// tokens of text fields, and doc values.
struct IndexedDocument: Sendable {
    enum Value: Sendable {
        case int(Int64)
        case double(Double)
        case string(String)
        case ip(IPAddress)
    }

    var terms: [(field: String, term: String)] = []
    var texts: [(field: String, tokens: [String])] = []
    var values: [(field: String, value: Value)] = []
}

/// Per-field statistics of a segment, for BM25: how many documents have the field and how many tokens they hold.
struct FieldStatistics: Sendable, Hashable {
    var documentCount = 0
    var tokenCount = 0
}

/// Postings of a text token: documents in order and the token's frequency in each.
struct TextPostings: Sendable {
    var documents: [UInt32] = []
    var frequencies: [UInt16] = []
}

/// A segment: the documents numbered `base ..< base + count`, with their postings and doc values. The newest
/// segment lives in memory (``SegmentBuilder``) until it is flushed to SQLite.
struct SegmentInfo: Sendable, Hashable {
    var id: Int64
    var base: Int64
    var count: Int
    var statistics: [String: FieldStatistics]
    /// Numeric bounds of each numeric column, to skip or take whole segments in range queries.
    var bounds: [String: ClosedRange<Double>]
}

/// The in-memory segment that receives new documents. Searchable at once; flushed to SQLite when large.
struct SegmentBuilder: Sendable {
    var base: Int64
    var count = 0
    var postings: [String: [String: [UInt32]]] = [:]
    var textPostings: [String: [String: TextPostings]] = [:]
    var columns: [String: Column] = [:]
    var statistics: [String: FieldStatistics] = [:]
    /// Rough memory held, for the flush decision.
    var estimatedBytes = 0

    init(base: Int64) {
        self.base = base
    }

    /// Adds the document numbered `number` (at or after the last one added).
    mutating func add(_ document: IndexedDocument, number: Int64) {
        let local = Int(number - base)
        count = max(count, local + 1)
        let doc = UInt32(local)
        for (field, term) in document.terms {
            postings[field, default: [:]][term, default: []].appendUnique(doc)
            estimatedBytes += 8
        }
        for (field, tokens) in document.texts {
            var frequencies: [String: UInt16] = [:]
            for token in tokens { frequencies[token, default: 0] &+= 1 }
            for (token, frequency) in frequencies {
                var entry = textPostings[field, default: [:]][token, default: TextPostings()]
                if entry.documents.last == doc {
                    entry.frequencies[entry.frequencies.count - 1] &+= frequency
                } else {
                    entry.documents.append(doc)
                    entry.frequencies.append(frequency)
                }
                textPostings[field, default: [:]][token] = entry
            }
            columns[lengthColumn(field), default: Column(kind: .int)].append(doc: local, int: Int64(tokens.count))
            statistics[field, default: FieldStatistics()].tokenCount += tokens.count
            estimatedBytes += 16 * frequencies.count
        }
        var counted: Set<String> = []
        for (field, value) in document.values {
            switch value {
            case .int(let v): columns[field, default: Column(kind: .int)].append(doc: local, int: v)
            case .double(let v): columns[field, default: Column(kind: .double)].append(doc: local, double: v)
            case .string(let v):
                columns[field, default: Column(kind: .string)].append(doc: local, string: v)
                estimatedBytes += v.utf8.count
            case .ip(let v): columns[field, default: Column(kind: .ip)].append(doc: local, ip: v)
            }
            estimatedBytes += 12
            counted.insert(field)
        }
        for (field, _) in document.texts { counted.insert(field) }
        for field in counted { statistics[field, default: FieldStatistics()].documentCount += 1 }
    }

    var info: SegmentInfo {
        var bounds: [String: ClosedRange<Double>] = [:]
        for (field, column) in columns {
            if let b = column.numericBounds { bounds[field] = b.min...b.max }
        }
        return SegmentInfo(id: -1, base: base, count: count, statistics: statistics, bounds: bounds)
    }
}

/// The name of the hidden column holding a text field's token count per document (BM25's field length).
func lengthColumn(_ field: String) -> String { "\u{1}len:" + field }

extension [UInt32] {
    mutating func appendUnique(_ value: UInt32) {
        if last != value { append(value) }
    }
}

/// Encoding of posting lists in SQLite: little-endian `UInt32` documents, then `UInt16` frequencies for text.
enum PostingsCodec {
    static func encode(_ documents: [UInt32], frequencies: [UInt16]? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(documents.count * 6 + 4)
        out.appendLE(UInt32(documents.count))
        documents.withUnsafeBytes { out.append(contentsOf: $0) }
        if let frequencies { frequencies.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    static func decodeDocuments(_ bytes: [UInt8]) -> [UInt32] {
        guard bytes.count >= 4 else { return [] }
        let count = Int(bytes.readLE(UInt32.self, at: 0))
        guard bytes.count >= 4 + count * 4 else { return [] }
        return bytes.readArray(UInt32.self, at: 4, count: count)
    }

    static func decodeText(_ bytes: [UInt8]) -> TextPostings {
        let documents = decodeDocuments(bytes)
        let offset = 4 + documents.count * 4
        guard bytes.count >= offset + documents.count * 2 else {
            return TextPostings(documents: documents, frequencies: Array(repeating: 1, count: documents.count))
        }
        return TextPostings(
            documents: documents,
            frequencies: bytes.readArray(UInt16.self, at: offset, count: documents.count)
        )
    }
}
