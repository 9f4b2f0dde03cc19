import Foundation
import GRDB
import QuarryCore

/// A consistent view of one index during a search: the in-memory segment, the flushed segments and the deleted
/// documents, with access to postings, doc values and stored sources by global document number.
struct IndexReader {
    let index: StoredIndex
    /// The documents file.
    let db: Database
    /// The segments file (postings and doc values of flushed segments).
    let segmentDB: Database
    /// The in-memory segments (frozen ones, then the one receiving documents), oldest first.
    let memory: [SegmentBuilder]
    /// State of one search that clauses share.
    let scope = SearchScope()

    init(index: StoredIndex, db: Database, segmentDB: Database) {
        self.index = index
        self.db = db
        self.segmentDB = segmentDB
        memory = index.memorySegments
    }

    /// A segment, flushed or in memory.
    enum SegmentRef {
        case stored(SegmentInfo)
        case memory(SegmentBuilder, position: Int)

        var stored: SegmentInfo? {
            if case .stored(let info) = self { return info }
            return nil
        }

        /// A key for per-search caches.
        var cacheKey: Int64 {
            switch self {
            case .stored(let info): info.id
            case .memory(_, let position): -1 - Int64(position)
            }
        }
    }

    var mappings: Mappings { index.metadata.mappings }
    var metadata: IndexMetadata { index.metadata }
    var capacity: Int { index.capacity }

    /// Every live document.
    func liveDocuments() -> Bitmap {
        var bitmap = Bitmap(capacity: capacity, filled: true)
        for doc in index.deletedDocuments { bitmap.remove(Int(doc)) }
        for (id, mask) in index.mergedLiveDocuments {
            guard let segment = index.storedSegment(id: id) else { continue }
            bitmap.removeAbsent(from: mask, at: Int(segment.base))
        }
        return bitmap
    }

    /// Adds the documents holding `term` in `field`; returns how many postings there were (document frequency).
    private func isRelevant(base: Int, count: Int) -> Bool {
        scope.restriction?.intersects(base..<base + count) ?? true
    }

    /// Adds the documents holding `term` in `field`; returns how many postings there were (document frequency),
    /// counted in every segment even where ``restriction`` lets reading the postings be skipped.
    @discardableResult
    func addPostings(field: String, term: String, into bitmap: inout Bitmap) throws -> Int {
        var frequency = 0
        for buffer in memory {
            guard let docs = buffer.postings(field, term) else { continue }
            let base = Int(buffer.base)
            for doc in docs { bitmap.insert(base + Int(doc)) }
            frequency += docs.count
        }
        let (storedFrequency, lists) = try storedPostings(field: field, term: term)
        frequency += storedFrequency
        for (segment, blob) in lists {
            let base = Int(segment.base)
            if segment.layout == 1 {
                for doc in PostingsCodec.decodeFirstLayoutDocuments(blob) { bitmap.insert(base + Int(doc)) }
            } else {
                PostingsCodec.forEachDocument(blob) { bitmap.insert(base + $0) }
            }
        }
        return frequency
    }

    /// The posting lists of `term` in `field` of the flushed segments that ``SearchScope/restriction`` leaves worth
    /// reading, and the term's document frequency over all flushed segments (from the stored counts: the lists of
    /// the others are not read).
    private func storedPostings(
        field: String,
        term: String
    ) throws -> (frequency: Int, lists: [(segment: SegmentInfo, blob: [UInt8])]) {
        var frequency = 0
        var lists: [(SegmentInfo, [UInt8])] = []
        let segments = index.storedSegments
        if segments.contains(where: { $0.layout == 1 }) {
            let counts = try segmentDB.cachedStatement(
                sql: "SELECT segment, count FROM postings WHERE field = ? AND term = ?"
            )
            let docs = try segmentDB.cachedStatement(
                sql: "SELECT docs FROM postings WHERE field = ? AND term = ? AND segment = ?"
            )
            var wanted: [SegmentInfo] = []
            let rows = try Row.fetchCursor(counts, arguments: [field, term])
            while let row = try rows.next() {
                guard let segment = index.storedSegment(id: row[0]), segment.layout == 1 else { continue }
                frequency += row[1] as Int
                if isRelevant(base: Int(segment.base), count: segment.count) { wanted.append(segment) }
            }
            for segment in wanted {
                if let data = try Data.fetchOne(docs, arguments: [field, term, segment.id]) {
                    lists.append((segment, Array(data)))
                }
            }
        }
        guard let fieldID = index.fieldIDs[field] else { return (frequency, lists) }
        let count = try segmentDB.cachedStatement(
            sql: "SELECT count FROM segment_terms WHERE segment = ? AND field = ? AND term = ?"
        )
        let docs = try segmentDB.cachedStatement(
            sql: "SELECT count, docs FROM segment_terms WHERE segment = ? AND field = ? AND term = ?"
        )
        for segment in segments where segment.layout == 2 {
            if isRelevant(base: Int(segment.base), count: segment.count) {
                guard let row = try Row.fetchOne(docs, arguments: [segment.id, fieldID, term]) else { continue }
                frequency += row[0] as Int
                lists.append((segment, Array(row[1] as Data)))
            } else if let found = try Int.fetchOne(count, arguments: [segment.id, fieldID, term]) {
                frequency += found
            }
        }
        return (frequency, lists)
    }

    /// Postings of a text token with frequencies, by global document number, and the token's document frequency
    /// over all segments.
    func textPostings(
        field: String,
        token: String
    ) throws -> (postings: [(doc: Int, frequency: UInt16)], documentFrequency: Int) {
        var result: [(Int, UInt16)] = []
        let (storedFrequency, lists) = try storedPostings(field: field, term: token)
        var documentFrequency = storedFrequency
        let stored = lists.map { segment, blob in
            let (documents, frequencies) = PostingsCodec.decode(blob, layout: segment.layout)
            return (
                segment.base,
                TextPostings(
                    documents: documents,
                    frequencies: frequencies ?? .init(repeating: 1, count: documents.count)
                )
            )
        }
        for (base, postings) in stored.sorted(by: { $0.0 < $1.0 }) {
            for (doc, frequency) in zip(postings.documents, postings.frequencies) {
                result.append((Int(base) + Int(doc), frequency))
            }
        }
        for buffer in memory {
            guard let postings = buffer.textPostings(field, token) else { continue }
            documentFrequency += postings.documents.count
            for (doc, frequency) in zip(postings.documents, postings.frequencies) {
                result.append((Int(buffer.base) + Int(doc), frequency))
            }
        }
        return (result, documentFrequency)
    }

    /// All distinct terms of `field` (keywords, addresses, booleans, or text tokens), optionally those starting
    /// with `prefix`, in byte order.
    func terms(field: String, prefix: String = "") throws -> [String] {
        var terms = Set<String>()
        for buffer in memory {
            guard let builder = buffer.fields[field] else { continue }
            for key in builder.terms.terms where key.hasPrefix(prefix) { terms.insert(key) }
            for key in builder.tokens.terms where key.hasPrefix(prefix) { terms.insert(key) }
        }
        let upper = prefix + "\u{10FFFF}"
        if index.storedSegments.contains(where: { $0.layout == 1 }) {
            for term in try String.fetchAll(
                segmentDB.cachedStatement(
                    sql: "SELECT DISTINCT term FROM postings WHERE field = ? AND term >= ? AND term < ?"
                ),
                arguments: [field, prefix, upper]
            ) { terms.insert(term) }
        }
        if let fieldID = index.fieldIDs[field] {
            let statement = try segmentDB.cachedStatement(
                sql: "SELECT term FROM segment_terms WHERE segment = ? AND field = ? AND term >= ? AND term < ?"
            )
            for segment in index.storedSegments where segment.layout == 2 {
                let rows = try String.fetchCursor(statement, arguments: [segment.id, fieldID, prefix, upper])
                while let term = try rows.next() { terms.insert(term) }
            }
        }
        return terms.sorted(by: bytewise)
    }

    /// Every segment as (first document, count, numeric bounds of `field` when flushed, the segment): flushed ones
    /// first, then the in-memory ones.
    func segments(field: String) -> [(base: Int, count: Int, bounds: ClosedRange<Double>?, segment: SegmentRef)] {
        var result: [(Int, Int, ClosedRange<Double>?, SegmentRef)] = index.storedSegments.map {
            (Int($0.base), $0.count, $0.bounds[field], .stored($0))
        }
        for (position, buffer) in memory.enumerated() {
            result.append((Int(buffer.base), buffer.count, nil, .memory(buffer, position: position)))
        }
        return result
    }

    /// The doc values of `field` in a segment.
    func column(field: String, segment: SegmentRef) throws -> Column? {
        switch segment {
        case .memory(let buffer, _):
            guard var column = buffer.column(field) else { return nil }
            column.pad(to: buffer.count)
            return column
        case .stored(let info):
            return try index.cachedColumn(segment: info, field: field, db: segmentDB)
        }
    }

    /// The segment holding global document `doc`.
    func segment(containing doc: Int) -> SegmentRef? {
        if let position = index.storedSegmentPosition(containing: Int64(doc)) {
            return .stored(index.storedSegments[position])
        }
        for (position, buffer) in memory.enumerated() where doc >= Int(buffer.base) {
            if doc < Int(buffer.base) + max(buffer.count, 1) || position == memory.count - 1 {
                return .memory(buffer, position: position)
            }
        }
        return nil
    }

    /// The values of `field` for global document `doc`.
    func values(field: String, doc: Int, columns: inout [Int64: Column?]) throws -> [SortKey] {
        guard let segment = self.segment(containing: doc) else { return [] }
        let key = segment.cacheKey
        if columns[key] == nil { columns[key] = .some(try column(field: field, segment: segment)) }
        guard let column = columns[key] ?? nil else { return [] }
        let base: Int
        switch segment {
        case .stored(let info): base = Int(info.base)
        case .memory(let buffer, _): base = Int(buffer.base)
        }
        return column.values(doc - base)
    }

    /// Sum of per-segment statistics for `field`.
    func statistics(field: String) -> FieldStatistics {
        var total = FieldStatistics()
        for buffer in memory {
            if let stats = buffer.statistics(field) {
                total.documentCount += stats.documentCount
                total.tokenCount += stats.tokenCount
            }
        }
        for segment in index.storedSegments {
            if let stats = segment.statistics[field] {
                total.documentCount += stats.documentCount
                total.tokenCount += stats.tokenCount
            }
        }
        return total
    }

    /// Documents by id, as global numbers.
    func documents(ids: [String]) throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        var result: [Int] = []
        let statement = try db.cachedStatement(sql: "SELECT doc FROM docs WHERE id = ?")
        for id in ids {
            if let doc = try Int.fetchOne(statement, arguments: [id]) { result.append(doc) }
        }
        return result
    }

    struct StoredHit {
        var id: String
        var version: Int64
        var seqNo: Int64
        var source: [UInt8]
    }

    /// Stored fields of documents, by global number.
    func storedHits(_ docs: [Int]) throws -> [Int: StoredHit] {
        var result: [Int: StoredHit] = [:]
        let statement = try db.cachedStatement(sql: "SELECT id, version, seq_no, source FROM docs WHERE doc = ?")
        let decompressor = try SourceCodec.Decompressor()
        let dictionary = index.sourceDictionary
        for doc in docs {
            guard let row = try Row.fetchOne(statement, arguments: [doc]) else { continue }
            let stored: Data = row[3]
            let source = try decompressor.decode(Array(stored), dictionary: dictionary)
            result[doc] = StoredHit(id: row[0], version: row[1], seqNo: row[2], source: source)
        }
        return result
    }
}

/// Mutable state of one search.
final class SearchScope {
    /// The candidates an enclosing conjunction already narrowed to: postings of segments without any need not be
    /// read.
    var restriction: Bitmap?
}
