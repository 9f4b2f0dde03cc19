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

    /// Room for a Packetbeat document's terms and values, so that indexing one grows no array.
    init() {
        terms.reserveCapacity(32)
        values.reserveCapacity(48)
    }
}

/// Where ``DocumentIndexer`` puts what one document produces: an ``IndexedDocument`` kept to add later, or
/// straight into a ``DocumentBatch``.
package protocol IndexingSink {
    mutating func add(term: String, of field: FieldDefinition)
    mutating func add(tokens: [String], of field: FieldDefinition)
    mutating func add(value: IndexedDocument.Value, of field: FieldDefinition)
}

extension IndexedDocument: IndexingSink {
    package mutating func add(term: String, of field: FieldDefinition) { terms.append((field, term)) }
    package mutating func add(tokens: [String], of field: FieldDefinition) { texts.append((field, tokens)) }
    package mutating func add(value: Value, of field: FieldDefinition) { values.append((field, value)) }
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
    /// Exact terms (keywords, addresses, booleans), and the documents of each by term id.
    private(set) var terms = TermTable()
    private(set) var termDocuments: [[UInt32]] = []
    /// Text tokens, and the postings of each by token id.
    private(set) var tokens = TermTable()
    private(set) var tokenPostings: [TextPostings] = []
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
        let id = terms.intern(term)
        if id == termDocuments.count {
            termDocuments.append([UInt32(doc)])
        } else {
            termDocuments[id].appendUnique(UInt32(doc))
        }
        count(doc)
    }

    func add(tokens text: [String], doc: Int) {
        for token in text {
            let id = tokens.intern(token)
            if id == tokenPostings.count { tokenPostings.append(TextPostings()) }
            tokenPostings[id].add(UInt32(doc), 1)
        }
        if lengths == nil { lengths = Column(kind: .int) }
        lengths!.append(doc: doc, int: Int64(text.count))
        statistics.tokenCount += text.count
        count(doc)
    }

    /// The documents holding exact term `term`.
    func documents(_ term: String) -> [UInt32]? { terms.id(of: term).map { termDocuments[$0] } }

    /// The postings of text token `token`.
    func postings(_ token: String) -> TextPostings? { tokens.id(of: token).map { tokenPostings[$0] } }

    /// Appends a batch's field, its document `d` becoming `offset + d` (all after this one's).
    func append(_ other: DocumentBatch.Field, offset: Int) {
        other.forEachTerm { term, documents in
            let id = terms.intern(term)
            let shifted = documents.lazy.map { $0 + UInt32(offset) }
            if id == termDocuments.count {
                termDocuments.append(Array(shifted))
            } else {
                termDocuments[id].append(contentsOf: shifted)
            }
        }
        other.forEachToken { token, postings in
            let id = tokens.intern(token)
            if id == tokenPostings.count { tokenPostings.append(TextPostings()) }
            tokenPostings[id].documents.append(contentsOf: postings.documents.lazy.map { $0 + UInt32(offset) })
            tokenPostings[id].frequencies.append(contentsOf: postings.frequencies)
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
        if column == nil { column = Column(kind: value.columnKind) }
        column!.append(doc: doc, value)
        count(doc)
    }
}

extension IndexedDocument.Value {
    /// The kind of column that holds values like this one.
    var columnKind: Column.Kind {
        switch self {
        case .int: .int
        case .double: .double
        case .string: .string
        case .ip: .ip
        }
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

    /// Appends a batch of a request's documents indexed on their own (``StoredIndex`` makes one per core), its
    /// document `d` becoming number `start + d`: one table lookup per distinct term instead of one per posting,
    /// and the indexing done beside the request's other work.
    package mutating func append(_ batch: DocumentBatch, at start: Int64) {
        let offset = Int(start - base)
        for other in batch.fields {
            let target = fields[other.path] ?? FieldBuilder()
            fields[other.path] = target
            target.append(other, offset: offset)
        }
        count = max(count, offset + batch.count)
        estimatedBytes += batch.estimatedBytes
    }

    private static func estimatedBytes(_ document: IndexedDocument) -> Int {
        var bytes = document.terms.count * estimatedTermBytes
        for (_, tokens) in document.texts { bytes += estimatedTokenBytes * tokens.count }
        for (_, value) in document.values { bytes += estimatedBytes(value) }
        return bytes
    }

    /// Rough memory a posting of an exact term, and of a text token, take in the segment (for the flush decision).
    static let estimatedTermBytes = 8
    static let estimatedTokenBytes = 16

    /// Rough memory a doc value takes in the segment.
    static func estimatedBytes(_ value: IndexedDocument.Value) -> Int {
        if case .string(let text) = value { return 12 + text.utf8.count }
        return 12
    }

    /// Term postings of `field`.
    func postings(_ field: String, _ term: String) -> [UInt32]? { fields[field]?.documents(term) }

    /// Text postings of `field`.
    func textPostings(_ field: String, _ token: String) -> TextPostings? { fields[field]?.postings(token) }

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
