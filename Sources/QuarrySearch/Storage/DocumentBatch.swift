/// Documents of one request indexed on their own, numbered from 0, written by ``DocumentIndexer`` as it reads
/// them: the postings for a segment built in bulk. Fields are found by ordinal, held by value (no builder object
/// reference counted and access-checked per value), and each field's postings are one array of (term id,
/// document) pairs in document order, grouped by term only once, when the batch joins the in-memory segment
/// (``SegmentBuilder/append(_:at:)``): a counting sort by term id, then one run per distinct term.
package struct DocumentBatch: IndexingSink, Sendable {
    /// One field's postings and doc values in the batch.
    struct Field: Sendable {
        let path: String
        var terms = TermTable()
        /// Term id in the high half, document in the low half, in the order they came.
        var termPostings: [UInt64] = []
        var tokens = TermTable()
        var tokenPostings: [UInt64] = []
        var column: Column?
        var lengths: Column?
        var statistics = FieldStatistics()
        /// The last document counted in `statistics.documentCount`.
        var lastDocument = -1

        init(path: String) {
            self.path = path
        }

        mutating func count(_ doc: Int) {
            if lastDocument != doc {
                lastDocument = doc
                statistics.documentCount += 1
            }
        }
    }

    /// How many documents the batch numbers (the last one begun, plus one).
    private(set) var count = 0
    /// The document being indexed.
    private var document = 0
    /// The fields, in the order their first values came.
    private(set) var fields: [Field] = []
    /// Each field's position in `fields` plus one, by ordinal (``FieldDefinition/ordinal``); 0 for none yet.
    private var positions: [Int32] = []
    /// Rough memory held, for the segment's flush decision.
    private(set) var estimatedBytes = 0

    package init() {}

    /// Makes `number` (at or after the last one) the document the next terms and values belong to.
    package mutating func begin(document number: Int) {
        document = number
        count = max(count, number + 1)
    }

    package mutating func add(term: String, of field: FieldDefinition) {
        let position = slot(field)
        let id = fields[position].terms.intern(term)
        fields[position].termPostings.append(UInt64(id) << 32 | UInt64(document))
        fields[position].count(document)
        estimatedBytes += SegmentBuilder.estimatedTermBytes
    }

    package mutating func add(tokens: [String], of field: FieldDefinition) {
        let position = slot(field)
        for token in tokens {
            let id = fields[position].tokens.intern(token)
            fields[position].tokenPostings.append(UInt64(id) << 32 | UInt64(document))
        }
        if fields[position].lengths == nil { fields[position].lengths = Column(kind: .int) }
        fields[position].lengths!.append(doc: document, int: Int64(tokens.count))
        fields[position].statistics.tokenCount += tokens.count
        fields[position].count(document)
        estimatedBytes += SegmentBuilder.estimatedTokenBytes * tokens.count
    }

    package mutating func add(value: IndexedDocument.Value, of field: FieldDefinition) {
        let position = slot(field)
        if fields[position].column == nil { fields[position].column = Column(kind: value.columnKind) }
        fields[position].column!.append(doc: document, value)
        fields[position].count(document)
        estimatedBytes += SegmentBuilder.estimatedBytes(value)
    }

    /// The position of `field` in `fields`, made on its first value.
    private mutating func slot(_ field: FieldDefinition) -> Int {
        let ordinal = field.ordinal
        if ordinal < positions.count, positions[ordinal] > 0 { return Int(positions[ordinal]) - 1 }
        if ordinal >= positions.count {
            positions.append(contentsOf: repeatElement(0, count: ordinal - positions.count + 1))
        }
        fields.append(Field(path: field.path))
        positions[ordinal] = Int32(fields.count)
        return fields.count - 1
    }
}

extension DocumentBatch.Field {
    /// Calls `body` with each term's bytes and its documents in order, each once (a term twice in one document is
    /// one posting).
    func forEachTerm(_ body: (UnsafeRawBufferPointer, ArraySlice<UInt32>) -> Void) {
        let (starts, documents) = Self.grouped(termPostings, terms: terms.count)
        terms.withTerms { id, term in body(term, documents[Int(starts[id])..<Int(starts[id + 1])]) }
    }

    /// Calls `body` with each token's bytes, its documents in order and its frequency in each.
    func forEachToken(_ body: (UnsafeRawBufferPointer, TextPostings) -> Void) {
        let (starts, documents) = Self.grouped(tokenPostings, terms: tokens.count, keepingRepeats: true)
        tokens.withTerms { id, token in
            var postings = TextPostings()
            for doc in documents[Int(starts[id])..<Int(starts[id + 1])] { postings.add(doc, 1) }
            body(token, postings)
        }
    }

    /// The pairs sorted by term id, stably so that each term's documents stay in order (a counting sort): term
    /// `id`'s documents are `documents[starts[id]..<starts[id + 1]]`, repeats of a document dropped unless kept.
    private static func grouped(
        _ pairs: [UInt64],
        terms: Int,
        keepingRepeats: Bool = false
    ) -> (starts: [UInt32], documents: [UInt32]) {
        var starts = [UInt32](repeating: 0, count: terms + 1)
        for pair in pairs { starts[Int(pair >> 32) + 1] += 1 }
        for id in 0..<terms { starts[id + 1] += starts[id] }
        var next = starts
        var documents = [UInt32](repeating: 0, count: pairs.count)
        for pair in pairs {
            let id = Int(pair >> 32)
            documents[Int(next[id])] = UInt32(truncatingIfNeeded: pair)
            next[id] += 1
        }
        guard !keepingRepeats else { return (starts, documents) }
        // Close the gaps left by repeated documents, moving each term's run down.
        var write = 0
        var start = 0
        for id in 0..<terms {
            let end = Int(starts[id + 1])
            starts[id] = UInt32(write)
            var last: UInt32?
            for position in start..<end where documents[position] != last {
                last = documents[position]
                documents[write] = documents[position]
                write += 1
            }
            start = end
        }
        starts[terms] = UInt32(write)
        return (starts, documents)
    }
}
