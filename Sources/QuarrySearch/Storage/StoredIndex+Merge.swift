import Foundation
import GRDB
import QuarryCore

/// A merge stopped because its index is closing; what it wrote is unreachable and removed at the next open.
struct MergeInterrupted: Error {}

/// Segment merging: neighbouring flushed segments become one, in layout 2, without the documents deleted
/// meanwhile (``MergePolicy`` picks which).
///
/// A merge runs on `mergeQueue`, reading its sources through `mergeReader` and writing the new segment's rows through
/// `segmentWriter` in transactions of a few thousand rows, so flushes go on between them and writes and searches
/// never wait for it. Until the last, small transaction registers the new segment and unregisters its sources, its
/// rows are unreachable: a merge killed half way leaves the index as it was, and its rows are found and removed at
/// the next open. The sources' rows are removed afterwards, listed first in the segments file's `garbage` meta so
/// that a kill during the removal is finished at the next open. Document numbers do not change: a merged segment
/// covers its sources' range, and keeps a bitmap of which of its documents are live (``StoredIndex/liveMasks``).
extension StoredIndex {
    var mergePolicy: MergePolicy { MergePolicy(floorDocuments: segmentDocuments) }

    /// Starts merging in the background when the policy finds segments to merge.
    func scheduleMerge() {
        let start = lock.withLock {
            guard !closing, !mergeScheduled else { return false }
            mergeScheduled = true
            return true
        }
        if start { mergeQueue.async { self.mergeWhileNeeded() } }
    }

    private func mergeWhileNeeded() {
        while true {
            let sources: [SegmentInfo]? = lock.withLock {
                guard !closing, let window = mergePolicy.nextMerge(policySegmentsLocked()) else {
                    mergeScheduled = false
                    return nil
                }
                return Array(segments[window])
            }
            guard let sources else { return }
            do {
                try merge(sources)
                // The merge's columns and posting lists were allocated on this thread, whose arena would keep them.
                SystemAllocator.returnFreedMemory()
            } catch {
                // Interrupted, or failed (the disk full): the segments stay as they were, and the next flush tries
                // again; `_forcemerge` reports its own failures.
                lock.withLock { mergeScheduled = false }
                return
            }
        }
    }

    /// `POST /{index}/_forcemerge`: merges until at most `maxSegments` flushed segments remain, or rewrites the
    /// segments with deleted documents (`onlyExpungeDeletes`), or (neither given) merges what the policy would;
    /// returns when done.
    func forceMerge(maxSegments: Int?, onlyExpungeDeletes: Bool, flush: Bool) throws {
        if flush { try self.flush() }
        try mergeQueue.sync {
            while true {
                let sources: [SegmentInfo]? = lock.withLock {
                    guard !closing else { return nil }
                    let candidates = policySegmentsLocked()
                    let window: Range<Int>?
                    if onlyExpungeDeletes {
                        // Elasticsearch's `index.merge.policy.expunge_deletes_allowed`: 10%.
                        window = candidates.indices.first {
                            Double(candidates[$0].total - candidates[$0].live) > 0.1 * Double(candidates[$0].total)
                        }.map { $0..<$0 + 1 }
                    } else if let maxSegments {
                        if candidates.count > max(1, maxSegments) {
                            window = mergePolicy.smallestNeighbours(
                                candidates,
                                count: candidates.count - max(1, maxSegments) + 1
                            )
                        } else if candidates.count == 1, candidates[0].live < candidates[0].total {
                            window = 0..<1
                        } else {
                            window = nil
                        }
                    } else {
                        window = mergePolicy.nextMerge(candidates)
                    }
                    return window.map { Array(segments[$0]) }
                }
                guard let sources else { return }
                try merge(sources)
            }
        }
    }

    /// The flushed segments as the merge policy sees them (called with `lock` held).
    private func policySegmentsLocked() -> [MergePolicy.Segment] {
        var deletedIn = [Int](repeating: 0, count: segments.count)
        for doc in deleted {
            if let position = storedSegmentPosition(containing: doc) { deletedIn[position] += 1 }
        }
        return segments.enumerated().map { position, segment in
            let present = liveMasks[segment.id]?.count ?? segment.count
            return MergePolicy.Segment(live: present - deletedIn[position], total: present)
        }
    }

    private func stopIfClosing() throws {
        if lock.withLock({ closing }) { throw MergeInterrupted() }
    }

    // MARK: Merging

    /// Merges neighbouring flushed `sources` (oldest first) into one segment; runs on `mergeQueue`.
    private func merge(_ sources: [SegmentInfo]) throws {
        guard let first = sources.first else { return }
        let base = first.base
        let span = sources.reduce(0) { $0 + $1.count }
        let end = base + Int64(span)
        let (deletedNow, known, masks) = lock.withLock {
            (deleted.filter { $0 >= base && $0 < end }, self.fieldIDs, sources.map { liveMasks[$0.id] })
        }
        var live = Bitmap(capacity: span, filled: true)
        for doc in deletedNow { live.remove(Int(doc - base)) }
        for (source, mask) in zip(sources, masks) {
            if let mask { live.removeAbsent(from: mask, at: Int(source.base - base)) }
        }

        // Every field and text length column of the sources, numbered up front (numbers outlive a stopped merge).
        var names = Set<String>()
        for source in sources {
            for (name, statistics) in source.statistics {
                names.insert(name)
                if statistics.tokenCount > 0 || known[lengthColumn(name)] != nil { names.insert(lengthColumn(name)) }
            }
        }
        var fields: [(String, Int64)] = []
        var added: [String: Int64] = [:]
        try segmentWriter.inDatabase { db in
            try db.inTransaction {
                let numbering = try SegmentFields(db, known: known)
                fields = try numbering.ids(for: Array(names))
                added = numbering.added
                return .commit
            }
        }
        let numbered = known.merging(added) { old, _ in old }
        lock.withLock { self.fieldIDs.merge(added) { old, _ in old } }

        let id = allocateSegmentID()
        var info = SegmentInfo(
            id: id,
            base: base,
            count: span,
            statistics: [:],
            bounds: [:],
            valueDocuments: [:],
            layout: 2
        )
        var present: [String: Bitmap] = [:]
        var tokens: [String: Int] = [:]
        for (name, fieldID) in fields {
            try stopIfClosing()
            let isLength = name.hasPrefix(lengthPrefix)
            let field = isLength ? String(name.dropFirst(lengthPrefix.count)) : name
            var has = present[field] ?? Bitmap(capacity: span)
            if !isLength {
                try mergePostings(field: name, id: fieldID, sources, into: id, live: live, fieldIDs: numbered, &has)
            }
            if let column = try mergeColumn(name, id: fieldID, sources, into: id, live: live, fieldIDs: numbered) {
                for doc in 0..<column.documentCount where !column.range(doc).isEmpty { has.insert(doc) }
                if isLength {
                    tokens[field] = column.intTotal
                } else {
                    if let bounds = column.numericBounds { info.bounds[name] = bounds.min...bounds.max }
                    info.valueDocuments[name] = column.documentsWithValues
                }
            }
            present[field] = has
        }
        for (field, documents) in present where !documents.isEmpty {
            info.statistics[field] = FieldStatistics(documentCount: documents.count, tokenCount: tokens[field] ?? 0)
        }
        try stopIfClosing()

        // The switch: one small transaction, then the same in memory.
        let garbage: [JSON] = sources.map { source in
            let names = source.layout == 1 ? source.statistics.keys.flatMap { [$0, lengthColumn($0)] } : []
            return [
                "segment": .int(source.id), "layout": .int(Int64(source.layout)),
                "fields": .array(names.map(JSON.string)),
            ]
        }
        let dropped = live.count < span
        try segmentWriter.inDatabase { db in
            try db.inTransaction {
                try SegmentRowWriter(segment: id, db).register(info, live: dropped ? live : nil)
                for source in sources {
                    try db.execute(sql: "DELETE FROM segments WHERE id = ?", arguments: [source.id])
                    try db.execute(sql: "DELETE FROM segment_live WHERE segment = ?", arguments: [source.id])
                }
                try Self.addGarbage(garbage, db)
                return .commit
            }
        }
        lock.withLock {
            if let position = segments.firstIndex(where: { $0.id == first.id }) {
                segments.replaceSubrange(position..<position + sources.count, with: [info])
            }
            for source in sources {
                segmentsByID[source.id] = nil
                liveMasks[source.id] = nil
            }
            segmentsByID[id] = info
            if dropped { liveMasks[id] = live }
            // The deleted documents now absent from every segment: the merged segment's bitmap excludes them.
            deleted.subtract(deletedNow)
            try? database.inDatabase { db in
                try db.inTransaction {
                    let forget = try db.cachedStatement(sql: "DELETE FROM deleted WHERE doc = ?")
                    for doc in deletedNow { try forget.execute(arguments: [doc]) }
                    return .commit
                }
            }
            clearColumnCache()
        }
        try removeGarbage()
    }

    /// Writes the merged posting lists of one field: a k-way merge of the sources' lists in term order, each
    /// renumbered from the merged segment's base, without the documents that are not `live`.
    private func mergePostings(
        field: String,
        id fieldID: Int64,
        _ sources: [SegmentInfo],
        into segment: Int64,
        live: Bitmap,
        fieldIDs: [String: Int64],
        _ present: inout Bitmap
    ) throws {
        let base = sources[0].base
        try mergeReader.read { db in
            var streams: [TermStream] = []
            let firstLayout = sources.enumerated().filter { $0.element.layout == 1 }
            if !firstLayout.isEmpty {
                streams.append(
                    try TermStream(
                        firstLayoutField: field,
                        sources: Dictionary(uniqueKeysWithValues: firstLayout.map { ($0.element.id, $0.offset) }),
                        db
                    )
                )
            }
            if let sourceFieldID = fieldIDs[field] {
                for (position, source) in sources.enumerated() where source.layout == 2 {
                    streams.append(try TermStream(segment: source.id, field: sourceFieldID, source: position, db))
                }
            }
            var heap = TermHeap(streams.filter { $0.term != nil })
            var batch: [(term: String, documents: [UInt32], frequencies: [UInt16]?)] = []
            var batchBytes = 0
            func write() throws {
                guard !batch.isEmpty else { return }
                try segmentWriter.inDatabase { writerDB in
                    try writerDB.inTransaction {
                        let writer = try SegmentRowWriter(segment: segment, writerDB)
                        for row in batch {
                            try writer.postings(field: fieldID, term: row.term, row.documents, row.frequencies)
                        }
                        return .commit
                    }
                }
                batch.removeAll(keepingCapacity: true)
                batchBytes = 0
                try stopIfClosing()
            }
            while let (term, pieces) = try heap.next() {
                var documents: [UInt32] = []
                var frequencies: [UInt16] = []
                var hasFrequencies = false
                for piece in pieces.sorted(by: { $0.source < $1.source }) {
                    let offset = Int(sources[piece.source].base - base)
                    let (local, counts) = PostingsCodec.decode(piece.blob, layout: sources[piece.source].layout)
                    if counts != nil { hasFrequencies = true }
                    for (position, doc) in local.enumerated() where live.contains(offset + Int(doc)) {
                        documents.append(UInt32(offset + Int(doc)))
                        frequencies.append(counts?[position] ?? 1)
                        present.insert(offset + Int(doc))
                    }
                }
                guard !documents.isEmpty else { continue }
                batch.append((term, documents, hasFrequencies ? frequencies : nil))
                batchBytes += term.utf8.count + documents.count
                if batch.count >= 8_192 || batchBytes >= 4 << 20 { try write() }
            }
            try write()
        }
    }

    /// Writes the merged doc values `name` (a field's, or a text field's lengths) and returns them.
    private func mergeColumn(
        _ name: String,
        id fieldID: Int64,
        _ sources: [SegmentInfo],
        into segment: Int64,
        live: Bitmap,
        fieldIDs: [String: Int64]
    ) throws -> Column? {
        let base = sources[0].base
        var merged: Column?
        try mergeReader.read { db in
            for source in sources {
                guard let column = try Self.storedColumn(segment: source, field: name, fieldIDs: fieldIDs, db) else {
                    continue
                }
                if merged == nil { merged = Column(kind: column.kind) }
                let offset = Int(source.base - base)
                for doc in 0..<min(column.documentCount, source.count) where live.contains(offset + doc) {
                    merged!.append(valuesOf: doc, in: column, as: offset + doc)
                }
            }
        }
        guard var merged else { return nil }
        merged.pad(to: live.capacity)
        let column = merged
        try segmentWriter.inDatabase { db in
            try db.inTransaction {
                try SegmentRowWriter(segment: segment, db).column(field: fieldID, column)
                return .commit
            }
        }
        return merged
    }

    // MARK: Removing what merges left

    /// The segments file's list of segments whose rows are to be removed.
    private static let garbageKey = "garbage"

    private static func garbage(_ db: Database) throws -> [JSON] {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [garbageKey])
            .flatMap { try JSON.parse($0).arrayValue } ?? []
    }

    static func addGarbage(_ entries: [JSON], _ db: Database) throws {
        guard !entries.isEmpty else { return }
        try setMeta(garbageKey, JSON.array(try garbage(db) + entries).serialized(), db)
    }

    /// Lists the rows of segments that do not exist (a merge killed before it registered its segment) for
    /// ``removeGarbage()``; called when the index opens.
    static func findUnregisteredRows(registered: Set<Int64>, _ db: Database) throws {
        var orphans = Set<Int64>()
        for table in ["segment_terms", "segment_columns", "segment_live"] {
            // One probe per segment id, not a scan of the table.
            var after: Int64 = -1
            let next = try db.makeStatement(sql: "SELECT MIN(segment) FROM \(table) WHERE segment > ?")
            while let segment = try Int64?.fetchOne(next, arguments: [after]) ?? nil {
                if !registered.contains(segment) { orphans.insert(segment) }
                after = segment
            }
        }
        let listed = Set(try garbage(db).compactMap { $0["segment"]?.intValue })
        try addGarbage(
            orphans.subtracting(listed).sorted().map { ["segment": .int($0), "layout": 2, "fields": []] },
            db
        )
    }

    /// Removes the rows listed as garbage, a field at a time (each a short transaction), then gives the freed pages
    /// back to the file system.
    func removeGarbage() throws {
        let entries = try segmentWriter.inDatabase { try Self.garbage($0) }
        guard !entries.isEmpty else { return }
        let fieldIDs = lock.withLock { self.fieldIDs }
        for entry in entries {
            guard let segment = entry["segment"]?.intValue else { continue }
            if entry["layout"]?.intValue == 1 {
                for name in entry["fields"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                    try segmentWriter.inDatabase { db in
                        try db.execute(
                            sql: "DELETE FROM postings WHERE field = ? AND segment = ?",
                            arguments: [name, segment]
                        )
                        try db.execute(
                            sql: "DELETE FROM columns WHERE field = ? AND segment = ?",
                            arguments: [name, segment]
                        )
                    }
                }
            } else {
                for fieldID in fieldIDs.values.sorted() {
                    try segmentWriter.inDatabase { db in
                        try db.execute(
                            sql: "DELETE FROM segment_terms WHERE segment = ? AND field = ?",
                            arguments: [segment, fieldID]
                        )
                    }
                }
                try segmentWriter.inDatabase { db in
                    try db.execute(sql: "DELETE FROM segment_terms WHERE segment = ?", arguments: [segment])
                    try db.execute(sql: "DELETE FROM segment_columns WHERE segment = ?", arguments: [segment])
                    try db.execute(sql: "DELETE FROM segment_live WHERE segment = ?", arguments: [segment])
                }
            }
            try segmentWriter.inDatabase { db in
                try db.inTransaction {
                    let remaining = try Self.garbage(db).filter { $0["segment"]?.intValue != segment }
                    try Self.setMeta(Self.garbageKey, JSON.array(remaining).serialized(), db)
                    return .commit
                }
            }
        }
        try segmentWriter.inDatabase { db in try db.execute(sql: "PRAGMA incremental_vacuum") }
    }
}

/// The posting lists of one field in term order: of one layout-2 segment, or of every layout-1 source at once
/// (that table is keyed by field and term first, so one pass over the field serves them all).
private final class TermStream {
    typealias Piece = (source: Int, blob: [UInt8])

    private(set) var term: String?
    private(set) var pieces: [Piece] = []
    private let cursor: RowCursor
    /// Layout 1: the sources' positions by segment id (the field's rows of other segments are skipped).
    private let firstLayoutSources: [Int64: Int]?
    private let source: Int
    /// Layout 1: the row read past the current term.
    private var pending: (term: String, segment: Int64, blob: [UInt8])?

    init(segment: Int64, field: Int64, source: Int, _ db: Database) throws {
        cursor = try Row.fetchCursor(
            db.makeStatement(sql: "SELECT term, docs FROM segment_terms WHERE segment = ? AND field = ? ORDER BY term"),
            arguments: [segment, field]
        )
        self.source = source
        firstLayoutSources = nil
        try advance()
    }

    init(firstLayoutField field: String, sources: [Int64: Int], _ db: Database) throws {
        cursor = try Row.fetchCursor(
            db.makeStatement(sql: "SELECT term, segment, docs FROM postings WHERE field = ? ORDER BY term, segment"),
            arguments: [field]
        )
        source = -1
        firstLayoutSources = sources
        try advance()
    }

    /// Moves to the next term with at least one list of a source.
    func advance() throws {
        pieces = []
        term = nil
        guard let sources = firstLayoutSources else {
            if let row = try cursor.next() {
                term = row[0]
                pieces = [(source, Array(row[1] as Data))]
            }
            return
        }
        while pieces.isEmpty {
            if pending == nil, let row = try cursor.next() { pending = (row[0], row[1], Array(row[2] as Data)) }
            guard let first = pending else { return }
            term = first.term
            // Bytewise, as SQLite tells terms apart (Swift's `==` would join canonically equivalent ones).
            while let row = pending, row.term.utf8.elementsEqual(first.term.utf8) {
                if let position = sources[row.segment] { pieces.append((position, row.blob)) }
                pending = try cursor.next().map { ($0[0], $0[1], Array($0[2] as Data)) }
            }
        }
    }
}

/// The term streams of a merge ordered by their current term (bytewise, as SQLite orders them).
private struct TermHeap {
    private var streams: [TermStream]

    init(_ streams: [TermStream]) {
        self.streams = []
        for stream in streams { push(stream) }
    }

    /// The smallest current term with every stream's lists of it, advancing those streams.
    mutating func next() throws -> (String, [TermStream.Piece])? {
        guard let top = streams.first, let term = top.term else { return nil }
        var pieces: [TermStream.Piece] = []
        while let stream = streams.first, let current = stream.term, current.utf8.elementsEqual(term.utf8) {
            pop()
            pieces += stream.pieces
            try stream.advance()
            if stream.term != nil { push(stream) }
        }
        return (term, pieces)
    }

    private static func precedes(_ a: TermStream, _ b: TermStream) -> Bool {
        bytewise(a.term ?? "", b.term ?? "")
    }

    private mutating func push(_ stream: TermStream) {
        streams.append(stream)
        var child = streams.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(streams[child], streams[parent]) else { break }
            streams.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func pop() {
        streams.swapAt(0, streams.count - 1)
        streams.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < streams.count, Self.precedes(streams[left], streams[smallest]) { smallest = left }
            if right < streams.count, Self.precedes(streams[right], streams[smallest]) { smallest = right }
            guard smallest != parent else { return }
            streams.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// One flushed segment as `_cat/segments` reports it.
public struct SegmentSummary: Sendable, Hashable {
    /// The segment's name, `_` and its id in base 36 as Lucene names them.
    public var name: String
    public var firstDocument: Int64
    public var documents: Int
    public var deletedDocuments: Int
}

extension StoredIndex {
    var segmentSummaries: [SegmentSummary] {
        lock.withLock {
            zip(segments, policySegmentsLocked()).map { segment, counts in
                SegmentSummary(
                    name: "_" + String(segment.id, radix: 36),
                    firstDocument: segment.base,
                    documents: counts.live,
                    deletedDocuments: counts.total - counts.live
                )
            }
        }
    }
}
