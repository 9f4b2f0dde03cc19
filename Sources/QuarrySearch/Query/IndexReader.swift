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
        let (storedFrequency, wanted) = try flushedSegments(field: field, term: term)
        frequency += storedFrequency
        for segment in wanted { try addPostings(field: field, term: term, segment: segment, into: &bitmap) }
        return frequency
    }

    /// The flushed segments holding `term` in `field` that ``SearchScope/restriction`` leaves worth reading, and
    /// the term's document frequency over all flushed segments (read from the stored counts, not the postings).
    private func flushedSegments(field: String, term: String) throws -> (frequency: Int, segments: [SegmentInfo]) {
        let counts = try segmentDB.cachedStatement(
            sql: "SELECT segment, count FROM postings WHERE field = ? AND term = ?"
        )
        var frequency = 0
        var wanted: [SegmentInfo] = []
        let rows = try Row.fetchCursor(counts, arguments: [field, term])
        while let row = try rows.next() {
            guard let segment = index.storedSegment(id: row[0]) else { continue }
            frequency += row[1] as Int
            if isRelevant(base: Int(segment.base), count: segment.count) { wanted.append(segment) }
        }
        return (frequency, wanted)
    }

    /// The documents of one segment holding `term` in `field`, as global numbers.
    func addPostings(field: String, term: String, segment: SegmentInfo, into bitmap: inout Bitmap) throws {
        let statement = try segmentDB.cachedStatement(
            sql: "SELECT docs FROM postings WHERE field = ? AND term = ? AND segment = ?"
        )
        guard let data = try Data.fetchOne(statement, arguments: [field, term, segment.id]) else { return }
        let base = Int(segment.base)
        for doc in PostingsCodec.decodeDocuments(Array(data)) { bitmap.insert(base + Int(doc)) }
    }

    /// Postings of a text token with frequencies, by global document number, and the token's document frequency
    /// over all segments.
    func textPostings(
        field: String,
        token: String
    ) throws -> (postings: [(doc: Int, frequency: UInt16)], documentFrequency: Int) {
        var result: [(Int, UInt16)] = []
        let (storedFrequency, wanted) = try flushedSegments(field: field, term: token)
        var documentFrequency = storedFrequency
        let statement = try segmentDB.cachedStatement(
            sql: "SELECT docs FROM postings WHERE field = ? AND term = ? AND segment = ?"
        )
        var stored: [(Int64, TextPostings)] = []
        for segment in wanted {
            if let data = try Data.fetchOne(statement, arguments: [field, token, segment.id]) {
                stored.append((segment.base, PostingsCodec.decodeText(Array(data))))
            }
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
            for key in builder.terms.keys where key.hasPrefix(prefix) { terms.insert(key) }
            for key in builder.text.keys where key.hasPrefix(prefix) { terms.insert(key) }
        }
        if prefix.isEmpty {
            for term in try String.fetchAll(
                segmentDB.cachedStatement(sql: "SELECT DISTINCT term FROM postings WHERE field = ?"),
                arguments: [field]
            ) { terms.insert(term) }
        } else {
            let upper = prefix + "\u{10FFFF}"
            for term in try String.fetchAll(
                segmentDB.cachedStatement(
                    sql: "SELECT DISTINCT term FROM postings WHERE field = ? AND term >= ? AND term < ?"
                ),
                arguments: [field, prefix, upper]
            ) { terms.insert(term) }
        }
        return terms.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
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
            return try index.cachedColumn(segment: info.id, field: field, db: segmentDB)
        }
    }

    /// The segment holding global document `doc`.
    func segment(containing doc: Int) -> SegmentRef? {
        let segments = index.storedSegments
        var low = 0
        var high = segments.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let segment = segments[mid]
            if doc < Int(segment.base) {
                high = mid - 1
            } else if doc >= Int(segment.base) + segment.count {
                low = mid + 1
            } else {
                return .stored(segment)
            }
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
        let inflater = try SourceCodec.Inflater()
        let dictionary = index.sourceDictionary
        for doc in docs {
            guard let row = try Row.fetchOne(statement, arguments: [doc]) else { continue }
            let stored: Data = row[3]
            let source = try inflater.decode(Array(stored), dictionary: dictionary)
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
