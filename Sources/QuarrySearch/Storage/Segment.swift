package import QuarryCore

/// What indexing one document produced: exact terms (keywords, addresses, booleans), analyzed
/// tokens of text fields, and doc values.
package struct IndexedDocument: Sendable {
    package enum Value: Sendable {
        case int(Int64)
        case double(Double)
        case string(String)
        case ip(IPAddress)
    }

    var terms: [(field: FieldDefinition, term: String)] = []
    var texts: [(field: FieldDefinition, tokens: [String])] = []
    var values: [(field: FieldDefinition, value: Value)] = []
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
    /// How many documents have a value in each column: a range containing the bounds matches all of them.
    var valueDocuments: [String: Int] = [:]
    /// Where its postings and doc values are: 1 in `postings` and `columns`, keyed by field name first (segments
    /// written before merging existed); 2 in `segment_terms` and `segment_columns`, keyed by segment first, so that
    /// a segment is written at the end of the tables and removed as one range (``PostingsCodec``).
    var layout = 2
}

/// The postings and doc values of one field in the in-memory segment. A class so that the segment's field table
/// is looked up once per value and the containers inside are mutated in place.
final class FieldBuilder: @unchecked Sendable {
    var terms: [String: [UInt32]] = [:]
    var text: [String: TextPostings] = [:]
    var column: Column?
    var lengths: Column?
    var statistics = FieldStatistics()
    /// The last document counted in `statistics.documentCount`.
    var lastDocument = -1

    private func count(_ doc: Int) {
        if lastDocument != doc {
            lastDocument = doc
            statistics.documentCount += 1
        }
    }

    func add(term: String, doc: Int) {
        terms[term, default: []].appendUnique(UInt32(doc))
        count(doc)
    }

    func add(tokens: [String], doc: Int) {
        var frequencies: [String: UInt16] = [:]
        for token in tokens { frequencies[token, default: 0] &+= 1 }
        for (token, frequency) in frequencies {
            text[token, default: TextPostings()].add(UInt32(doc), frequency)
        }
        if lengths == nil { lengths = Column(kind: .int) }
        lengths!.append(doc: doc, int: Int64(tokens.count))
        statistics.tokenCount += tokens.count
        count(doc)
    }

    /// Appends `other`'s postings and values, its document `d` becoming `offset + d` (all after this one's).
    func append(_ other: FieldBuilder, offset: Int) {
        for (term, documents) in other.terms {
            terms[term, default: []].append(contentsOf: documents.lazy.map { $0 + UInt32(offset) })
        }
        for (token, postings) in other.text {
            text[token, default: TextPostings()].documents.append(
                contentsOf: postings.documents.lazy.map { $0 + UInt32(offset) }
            )
            text[token]!.frequencies.append(contentsOf: postings.frequencies)
        }
        if let values = other.column {
            if column == nil { column = Column(kind: values.kind) }
            column!.append(contentsOf: values, at: offset)
        }
        if let values = other.lengths {
            if lengths == nil { lengths = Column(kind: values.kind) }
            lengths!.append(contentsOf: values, at: offset)
        }
        statistics.documentCount += other.statistics.documentCount
        statistics.tokenCount += other.statistics.tokenCount
        if other.lastDocument >= 0 { lastDocument = offset + other.lastDocument }
    }

    func add(value: IndexedDocument.Value, doc: Int) {
        switch value {
        case .int(let v):
            if column == nil { column = Column(kind: .int) }
            column!.append(doc: doc, int: v)
        case .double(let v):
            if column == nil { column = Column(kind: .double) }
            column!.append(doc: doc, double: v)
        case .string(let v):
            if column == nil { column = Column(kind: .string) }
            column!.append(doc: doc, string: v)
        case .ip(let v):
            if column == nil { column = Column(kind: .ip) }
            column!.append(doc: doc, ip: v)
        }
        count(doc)
    }
}

/// The in-memory segment that receives new documents. Searchable at once; flushed to SQLite when large.
///
/// `@unchecked Sendable`: owned by one ``StoredIndex`` and only touched under its lock.
package struct SegmentBuilder: @unchecked Sendable {
    var base: Int64
    var count = 0
    private(set) var fields: [String: FieldBuilder] = [:]
    /// The same builders by field ordinal, for indexing without hashing paths.
    private var byOrdinal: [FieldBuilder?] = []
    /// Rough memory held, for the flush decision.
    var estimatedBytes = 0

    package init(base: Int64) {
        self.base = base
    }

    private mutating func field(_ definition: FieldDefinition) -> FieldBuilder {
        let ordinal = definition.ordinal
        if ordinal < byOrdinal.count, let builder = byOrdinal[ordinal] { return builder }
        let builder = fields[definition.path] ?? FieldBuilder()
        fields[definition.path] = builder
        if ordinal >= byOrdinal.count {
            byOrdinal.append(contentsOf: repeatElement(nil, count: ordinal - byOrdinal.count + 1))
        }
        byOrdinal[ordinal] = builder
        return builder
    }

    /// Adds the document numbered `number` (at or after the last one added).
    package mutating func add(_ document: IndexedDocument, number: Int64) {
        let local = Int(number - base)
        count = max(count, local + 1)
        for (definition, term) in document.terms { field(definition).add(term: term, doc: local) }
        for (definition, tokens) in document.texts { field(definition).add(tokens: tokens, doc: local) }
        for (definition, value) in document.values { field(definition).add(value: value, doc: local) }
        estimatedBytes += Self.estimatedBytes(document)
    }

    /// Appends a segment built on its own from a request's documents (``StoredIndex`` builds one per core), its
    /// document `d` becoming number `start + d`: one dictionary lookup per distinct term instead of one per posting,
    /// and that work done beside the request's other indexing.
    mutating func append(_ other: SegmentBuilder, at start: Int64) {
        let offset = Int(start - base)
        for (path, builder) in other.fields {
            let target = fields[path] ?? FieldBuilder()
            fields[path] = target
            target.append(builder, offset: offset)
        }
        count = max(count, offset + other.count)
        estimatedBytes += other.estimatedBytes
    }

    private static func estimatedBytes(_ document: IndexedDocument) -> Int {
        var bytes = document.terms.count * 8 + document.values.count * 12
        for (_, tokens) in document.texts { bytes += 16 * tokens.count }
        for (_, value) in document.values {
            if case .string(let text) = value { bytes += text.utf8.count }
        }
        return bytes
    }

    /// Term postings of `field`.
    func postings(_ field: String, _ term: String) -> [UInt32]? { fields[field]?.terms[term] }

    /// Text postings of `field`.
    func textPostings(_ field: String, _ token: String) -> TextPostings? { fields[field]?.text[token] }

    /// Doc values of `field`, or of its token counts for `lengthColumn(field)`.
    func column(_ name: String) -> Column? {
        if name.hasPrefix(lengthPrefix) { return fields[String(name.dropFirst(lengthPrefix.count))]?.lengths }
        return fields[name]?.column
    }

    func statistics(_ field: String) -> FieldStatistics? { fields[field]?.statistics }

    var info: SegmentInfo {
        var bounds: [String: ClosedRange<Double>] = [:]
        var statistics: [String: FieldStatistics] = [:]
        var valueDocuments: [String: Int] = [:]
        for (name, builder) in fields {
            statistics[name] = builder.statistics
            if let column = builder.column {
                if let b = column.numericBounds { bounds[name] = b.min...b.max }
                valueDocuments[name] = column.documentsWithValues
            }
        }
        return SegmentInfo(
            id: -1,
            base: base,
            count: count,
            statistics: statistics,
            bounds: bounds,
            valueDocuments: valueDocuments
        )
    }
}

extension TextPostings {
    mutating func add(_ doc: UInt32, _ frequency: UInt16) {
        if documents.last == doc {
            frequencies[frequencies.count - 1] &+= frequency
        } else {
            documents.append(doc)
            frequencies.append(frequency)
        }
    }
}

let lengthPrefix = "\u{1}len:"

/// The name of the hidden column holding a text field's token count per document (BM25's field length).
func lengthColumn(_ field: String) -> String { lengthPrefix + field }

extension [UInt32] {
    mutating func appendUnique(_ value: UInt32) {
        if last != value { append(value) }
    }
}
