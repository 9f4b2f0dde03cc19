import Foundation
import GRDB
import Logging
import QuarryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One index: the documents file (`NAME.sqlite`, the source of truth, written before a write is acknowledged),
/// the segments file (`NAME.segments.sqlite`: flushed segments' postings and doc values), and the in-memory
/// segments of the newest documents.
///
/// Durability: every write request commits its documents in one SQLite transaction (WAL, `synchronous=NORMAL`,
/// which survives the process being killed). In-memory segments are rebuilt from the documents after a crash, so
/// writing segments out is only an optimisation. A full in-memory segment is frozen (still searchable) and written
/// to the segments file by a background queue owned by the index, so ingest does not stop while it is written;
/// the two files have separate write locks for that reason. Segments are merged in the background
/// (`StoredIndex+Merge.swift`), which keeps their number bounded and drops deleted documents' postings.
///
/// `@unchecked Sendable`: every mutable property is read and written only while holding `lock`. Writes are in
/// `StoredIndex+Write.swift`; the state they share with this file is internal to the module for that reason, and
/// touched only here and there.
final class StoredIndex: @unchecked Sendable {
    /// Documents held in memory before the segment is frozen (``EmbeddedStore/Configuration/segmentDocuments``).
    let segmentDocuments: Int
    static let flushBytes = 48 << 20
    /// Decoded doc-value columns kept between searches.
    static let columnCacheBytes = 64 << 20

    let fileURL: URL
    /// The segments file beside the documents file.
    var segmentsURL: URL { Self.segmentsURL(for: fileURL) }
    let database: DatabaseQueue
    /// Connections to the segments file: one for the background writers (segments and merges), one for searches,
    /// one for the merges' reading.
    let segmentWriter: DatabaseQueue
    private let segmentReader: DatabaseQueue
    let mergeReader: DatabaseQueue
    /// Writes frozen segments in order, one at a time.
    let flushQueue = DispatchQueue(label: "quarry.index.flush")
    /// Runs merges, one at a time, beside writes and searches.
    let mergeQueue = DispatchQueue(label: "quarry.index.merge")
    let lock = NSLock()

    var metadata: IndexMetadata {
        didSet { metadataGeneration &+= 1 }
    }
    /// Counts changes of `metadata`: a write indexes its documents before it takes the lock, from the mapping of
    /// this generation, and indexes them again should the generation have moved on by the time it holds the lock.
    var metadataGeneration = 0
    var nextDoc: Int64 = 0
    var nextSeqNo: Int64 = 0
    var segments: [SegmentInfo] = []
    var segmentsByID: [Int64: SegmentInfo] = [:]
    /// The ids of field names in the segments file (layout 2 keys postings and columns by them).
    var fieldIDs: [String: Int64] = [:]
    /// Merged segments' live documents (numbered from the segment's base): a merge drops deleted documents from
    /// postings and doc values and records which remain, so they need not stay in `deleted`.
    var liveMasks: [Int64: Bitmap] = [:]
    /// The id the next segment (flushed or merged) takes.
    var nextSegmentID: Int64 = 1
    /// Set by ``close(writingSegments:)``: a merge in progress stops and leaves nothing behind.
    var closing = false
    /// A merge is queued or running.
    var mergeScheduled = false
    var buffer: SegmentBuilder
    /// Full in-memory segments waiting to be written, oldest first; searchable meanwhile.
    var frozen: [SegmentBuilder] = []
    var deleted: Set<Int64> = []
    /// The dictionary `_source` rows are compressed with (``SourceCodec``), made from the index's first documents
    /// and kept in the documents file's `meta`; nil until the first write (and for indices from before it existed,
    /// whose rows are plain until then).
    var sourceDictionary: SourceDictionary?
    /// Reads stored rows for `get`, updates and the replay at open: one zstd context for the index, made on first
    /// use (a context is 96 kB), used only with `lock` held or before the index is shared.
    private var sourceDecompressor: SourceCodec.Decompressor?
    /// Compresses `_source` rows, for requests on any thread.
    let compressors = SourceCodec.CompressorPool()
    private var columnCache: [String: Column] = [:]
    private var columnCacheSize = 0
    var idSequence: UInt16 = 0
    /// The ids of unflushed documents that could not be indexed again when the index was opened (damaged rows).
    private(set) var unindexedAtOpen: [String] = []
    /// The random part of generated ids: a SplitMix64 sequence from a system-random start, since asking the kernel
    /// for randomness per document was 1 % of a bulk load's time (ids need to be unique, not secret).
    var idNoise: UInt64 = {
        var random = SystemRandomNumberGenerator()
        return random.next()
    }()

    var name: String { metadata.name }

    // MARK: Opening

    /// Creates a new index file.
    static func create(at url: URL, metadata: IndexMetadata, segmentDocuments: Int) throws -> StoredIndex {
        let database = try openDatabase(url)
        try database.inDatabase { db in
            try db.inTransaction {
                try createSchema(db)
                try saveMetadata(metadata, db)
                try setMeta("next_doc", "0", db)
                try setMeta("next_seq_no", "0", db)
                return .commit
            }
        }
        return try StoredIndex(url: url, database: database, segmentDocuments: segmentDocuments)
    }

    /// Opens an existing index file, replaying the unflushed documents into memory.
    static func open(at url: URL, segmentDocuments: Int) throws -> StoredIndex {
        try StoredIndex(url: url, database: openDatabase(url), segmentDocuments: segmentDocuments)
    }

    static func segmentsURL(for url: URL) -> URL {
        url.deletingPathExtension().appendingPathExtension("segments.sqlite")
    }

    private static func openDatabase(_ url: URL, segments: Bool = false) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.journalMode = .wal
        // A second connection (the segment reader, or a store still closing) may hold a lock for a moment.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -16384")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // Pages that merges free go back to the file system (takes effect in a new file only).
            if segments { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
        }
        return try DatabaseQueue(path: url.path, configuration: configuration)
    }

    private init(url: URL, database: DatabaseQueue, segmentDocuments: Int) throws {
        fileURL = url
        self.segmentDocuments = max(1, segmentDocuments)
        self.database = database
        segmentWriter = try Self.openDatabase(Self.segmentsURL(for: url), segments: true)
        segmentReader = try Self.openDatabase(Self.segmentsURL(for: url), segments: true)
        mergeReader = try Self.openDatabase(Self.segmentsURL(for: url), segments: true)
        // A merge reads each row once, in key order: a small page cache keeps its memory small.
        try mergeReader.inDatabase { db in try db.execute(sql: "PRAGMA cache_size = -2048") }
        var loaded: (IndexMetadata, Int64, Int64, Set<Int64>)?
        var dictionary: SourceDictionary?
        try database.inDatabase { db in
            try Self.createSchema(db)
            let metadata = try Self.loadMetadata(db)
            let nextDoc = Int64(try Self.meta("next_doc", db) ?? "0") ?? 0
            let nextSeqNo = Int64(try Self.meta("next_seq_no", db) ?? "0") ?? 0
            let deleted = Set(try Int64.fetchAll(db, sql: "SELECT doc FROM deleted"))
            loaded = (metadata, nextDoc, nextSeqNo, deleted)
            dictionary = try Self.meta(Self.sourceDictionaryKey, db).flatMap { Data(base64Encoded: $0) }.flatMap {
                $0.isEmpty ? nil : SourceDictionary(Array($0))
            }
        }
        var flushed: Int64 = 0
        var segments: [SegmentInfo] = []
        var fieldIDs: [String: Int64] = [:]
        var liveMasks: [Int64: Bitmap] = [:]
        var nextSegmentID: Int64 = 1
        try segmentWriter.inDatabase { db in
            try Self.createSegmentSchema(db)
            flushed = Int64(try Self.meta("flushed_doc", db) ?? "0") ?? 0
            for row in try Row.fetchAll(db, sql: "SELECT id, base, count, info FROM segments ORDER BY base") {
                let info = try JSON.parse(row["info"] as String)
                segments.append(SegmentInfo(id: row["id"], base: row["base"], count: row["count"], json: info))
            }
            for row in try Row.fetchAll(db, sql: "SELECT id, name FROM fields") { fieldIDs[row[1]] = row[0] }
            for row in try Row.fetchAll(db, sql: "SELECT segment, bits FROM segment_live") {
                let id: Int64 = row[0]
                guard let segment = segments.first(where: { $0.id == id }),
                    let mask = Bitmap(bytes: Array(row[1] as Data), capacity: segment.count)
                else { continue }
                liveMasks[id] = mask
            }
            // Past every id in use, including the rows of a merge that was interrupted (removed later).
            let used = try Int64?.fetchAll(
                db,
                sql: """
                    SELECT MAX(id) FROM segments UNION ALL SELECT MAX(segment) FROM segment_terms
                    UNION ALL SELECT MAX(segment) FROM segment_columns
                    """
            )
            nextSegmentID = (used.compactMap { $0 }.max() ?? 0) + 1
        }
        guard let (metadata, nextDoc, nextSeqNo, deleted) = loaded else {
            throw StoreError.internalFailure("could not read index file \(url.lastPathComponent)")
        }
        self.metadata = metadata
        self.nextDoc = nextDoc
        self.nextSeqNo = nextSeqNo
        self.segments = segments
        self.segmentsByID = Dictionary(uniqueKeysWithValues: segments.map { ($0.id, $0) })
        self.fieldIDs = fieldIDs
        self.liveMasks = liveMasks
        self.nextSegmentID = nextSegmentID
        // A merge that ended just before its deleted documents were forgotten leaves them in both places.
        var remaining = deleted
        for (id, mask) in liveMasks {
            guard let segment = segmentsByID[id] else { continue }
            for doc in deleted where doc >= segment.base && doc < segment.base + Int64(segment.count) {
                if !mask.contains(Int(doc - segment.base)) { remaining.remove(doc) }
            }
        }
        self.deleted = remaining
        sourceDictionary = dictionary
        buffer = SegmentBuilder(base: flushed)
        try replayUnflushed(from: flushed)
        try segmentWriter.inDatabase { db in
            try Self.findUnregisteredRows(registered: Set(segments.map(\.id)), db)
        }
        mergeQueue.async { try? self.removeGarbage() }
        // What an earlier process left unmerged waits a moment: a command that only reads (`quarry search`) has
        // closed the index by then, and a server merges it.
        mergeQueue.asyncAfter(deadline: .now() + .seconds(5)) { [weak self] in self?.scheduleMerge() }
    }

    private func replayUnflushed(from flushed: Int64) throws {
        let mappings = metadata.mappings
        var replayed: [(Int64, IndexedDocument)] = []
        try database.inDatabase { db in
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT doc, id, source FROM docs WHERE doc >= ? ORDER BY doc",
                arguments: [flushed]
            )
            while let row = try rows.next() {
                let id: String = row["id"]
                do {
                    let json = try JSON.parse(decodeSource(row["source"], dictionary: sourceDictionary))
                    var indexer = DocumentIndexer(mappings: mappings, documentID: id)
                    replayed.append((row["doc"], try indexer.index(json)))
                } catch {
                    // Only a damaged row fails here (the same document was indexed when it was written): it stays
                    // stored, and is said so rather than skipped in silence; the reason is not logged, as it may
                    // quote the document.
                    unindexedAtOpen.append(id)
                    Logger(label: "quarry.store").error(
                        "a document could not be indexed again after an interrupted write; it stays stored, but no query on its fields finds it",
                        metadata: ["index": "\(metadata.name)", "id": "\(id)", "error": "\(type(of: error))"]
                    )
                }
            }
        }
        for (number, document) in replayed { buffer.add(document, number: number) }
        buffer.count = Int(nextDoc - buffer.base)
    }

    private static func createSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS docs(
                    doc INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, version INTEGER NOT NULL,
                    seq_no INTEGER NOT NULL, source BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS deleted(doc INTEGER PRIMARY KEY);
                """
        )
    }

    private static func createSegmentSchema(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS segments(
                    id INTEGER PRIMARY KEY, base INTEGER NOT NULL, count INTEGER NOT NULL, info TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS postings(
                    field TEXT NOT NULL, term TEXT NOT NULL, segment INTEGER NOT NULL, count INTEGER NOT NULL,
                    docs BLOB NOT NULL, PRIMARY KEY(field, term, segment)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS columns(
                    field TEXT NOT NULL, segment INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY(field, segment)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS fields(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                CREATE TABLE IF NOT EXISTS segment_terms(
                    segment INTEGER NOT NULL, field INTEGER NOT NULL, term TEXT NOT NULL, count INTEGER NOT NULL,
                    docs BLOB NOT NULL, PRIMARY KEY(segment, field, term)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS segment_columns(
                    segment INTEGER NOT NULL, field INTEGER NOT NULL, data BLOB NOT NULL,
                    PRIMARY KEY(segment, field)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS segment_live(segment INTEGER PRIMARY KEY, bits BLOB NOT NULL);
                """
        )
    }

    /// The `meta` key of ``sourceDictionary`` (base64).
    static let sourceDictionaryKey = "source_dictionary"

    private static func meta(_ key: String, _ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    static func setMeta(_ key: String, _ value: String, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)")
            .execute(arguments: [key, value])
    }

    static func saveMetadata(_ metadata: IndexMetadata, _ db: Database) throws {
        let json: JSON = [
            "name": .string(metadata.name), "uuid": .string(metadata.uuid),
            "creation_date": .int(metadata.creationDate), "settings": .object(metadata.settings),
            "mappings": .object(metadata.mappings.json), "aliases": .object(metadata.aliases),
        ]
        try setMeta("metadata", json.serialized(), db)
    }

    private static func loadMetadata(_ db: Database) throws -> IndexMetadata {
        guard let text = try meta("metadata", db) else {
            throw StoreError.internalFailure("index file has no metadata")
        }
        let json = try JSON.parse(text)
        let settings = json["settings"]?.objectValue ?? [:]
        return IndexMetadata(
            name: json["name"]?.stringValue ?? "",
            uuid: json["uuid"]?.stringValue ?? "",
            creationDate: json["creation_date"]?.intValue ?? 0,
            settings: settings,
            mappings: try Mappings(json: json["mappings"]?.objectValue ?? [:], settings: settings),
            aliases: json["aliases"]?.objectValue ?? [:]
        )
    }

    /// Writes the in-memory segments out (unless the index is being deleted) and closes the files; the object must
    /// not be used afterwards.
    func close(writingSegments: Bool = true) throws {
        lock.withLock { closing = true }
        mergeQueue.sync {}
        if writingSegments {
            try flush()
        } else {
            waitForBackgroundWrites()
        }
        try lock.withLock {
            try database.close()
            try segmentWriter.close()
            try segmentReader.close()
            try mergeReader.close()
        }
    }

    // MARK: Metadata changes

    /// Changes the metadata (mappings, aliases, settings) durably.
    func updateMetadata(_ change: (inout IndexMetadata) throws -> Void) throws {
        try lock.withLock {
            var updated = metadata
            try change(&updated)
            try database.inDatabase { db in try Self.saveMetadata(updated, db) }
            metadata = updated
        }
    }

    /// The last failure of the segment writer (the segment stays in memory, searchable, and is tried again).
    var flushError: (any Error)?

    // MARK: Reads

    /// A stored row's `_source` as it came (``SourceCodec``), with `lock` held or before the index is shared.
    func decodeSource(_ stored: Data, dictionary: SourceDictionary?) throws -> [UInt8] {
        let decompressor = try sourceDecompressor ?? SourceCodec.Decompressor()
        sourceDecompressor = decompressor
        return try decompressor.decode(Array(stored), dictionary: dictionary)
    }

    /// The document with `id`, or `nil`.
    func get(_ id: String) throws -> StoredDocument? {
        try lock.withLock {
            try database.inDatabase { db in
                guard
                    let row = try Row.fetchOne(
                        db.cachedStatement(sql: "SELECT version, seq_no, source FROM docs WHERE id = ?"),
                        arguments: [id]
                    )
                else { return nil }
                let source: Data = row[2]
                return StoredDocument(
                    index: metadata.name,
                    id: id,
                    version: row[0],
                    seqNo: row[1],
                    source: try decodeSource(source, dictionary: sourceDictionary)
                )
            }
        }
    }

    /// Number of live documents.
    var documentCount: Int {
        lock.withLock {
            // Documents merges dropped are neither in `deleted` nor live: the holes of the merged segments' bitmaps.
            let mergedAway = liveMasks.values.reduce(0) { $0 + $1.capacity - $1.count }
            return Int(nextDoc) - deleted.count - mergedAway
        }
    }

    /// Number of documents replaced or deleted (ES's `docs.deleted`).
    var deletedCount: Int {
        lock.withLock { deleted.count }
    }

    /// Bytes on disk (both files and their write-ahead logs).
    var sizeInBytes: Int64 {
        let paths = [fileURL.path, fileURL.path + "-wal", segmentsURL.path, segmentsURL.path + "-wal"]
        return paths.reduce(0) { total, path in
            total + ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0)
        }
    }

    /// Runs `body` with a consistent view of the index for searching.
    func withReader<T>(_ body: (IndexReader) throws -> T) throws -> T {
        try lock.withLock {
            // One read transaction for the whole search: a consistent snapshot, and no file locking per statement.
            try database.read { db in
                try segmentReader.read { segmentDB in
                    let reader = IndexReader(index: self, db: db, segmentDB: segmentDB)
                    return try body(reader)
                }
            }
        }
    }

    // MARK: Reader support (called with `lock` held, from `IndexReader`)

    var capacity: Int { Int(nextDoc) }
    /// The frozen segments and the one receiving documents, oldest first.
    var memorySegments: [SegmentBuilder] { frozen + [buffer] }
    var storedSegments: [SegmentInfo] { segments }
    var deletedDocuments: Set<Int64> { deleted }
    /// Merged segments' live documents by segment id.
    var mergedLiveDocuments: [Int64: Bitmap] { liveMasks }

    func storedSegment(id: Int64) -> SegmentInfo? { segmentsByID[id] }

    /// The position in ``storedSegments`` of the flushed segment holding document `doc`, by binary search (they
    /// are contiguous ranges in order).
    func storedSegmentPosition(containing doc: Int64) -> Int? {
        var low = 0
        var high = segments.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if doc < segments[middle].base {
                high = middle - 1
            } else if doc >= segments[middle].base + Int64(segments[middle].count) {
                low = middle + 1
            } else {
                return middle
            }
        }
        return nil
    }

    func cachedColumn(segment: SegmentInfo, field: String, db: Database) throws -> Column? {
        let key = "\(segment.id)\u{0}\(field)"
        if let column = columnCache[key] { return column }
        guard let column = try Self.storedColumn(segment: segment, field: field, fieldIDs: fieldIDs, db) else {
            return nil
        }
        // Counted decoded: packed columns grow several times over when decoded (a bitmap becomes 4-byte offsets).
        let bytes = column.memoryBytes
        if columnCacheSize + bytes > Self.columnCacheBytes {
            columnCache.removeAll(keepingCapacity: true)
            columnCacheSize = 0
        }
        columnCache[key] = column
        columnCacheSize += bytes
        return column
    }

    /// Forgets every cached column (a merge replaced segments).
    func clearColumnCache() {
        columnCache.removeAll()
        columnCacheSize = 0
    }

    /// The doc values of `field` in a flushed segment, read from the table of its layout.
    static func storedColumn(
        segment: SegmentInfo,
        field: String,
        fieldIDs: [String: Int64],
        _ db: Database
    ) throws -> Column? {
        let data: Data?
        if segment.layout == 1 {
            data = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT data FROM columns WHERE field = ? AND segment = ?"),
                arguments: [field, segment.id]
            )
        } else {
            guard let fieldID = fieldIDs[field] else { return nil }
            data = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT data FROM segment_columns WHERE segment = ? AND field = ?"),
                arguments: [segment.id, fieldID]
            )
        }
        return data.flatMap { Column(decoding: Array($0)) }
    }
}

extension SegmentInfo {
    init(id: Int64, base: Int64, count: Int, json: JSON) {
        var statistics: [String: FieldStatistics] = [:]
        for (field, value) in json["statistics"]?.objectValue ?? [:] {
            statistics[field] = FieldStatistics(
                documentCount: Int(value["docs"]?.intValue ?? 0),
                tokenCount: Int(value["tokens"]?.intValue ?? 0)
            )
        }
        var bounds: [String: ClosedRange<Double>] = [:]
        for (field, value) in json["bounds"]?.objectValue ?? [:] {
            if let lo = value[0]?.doubleValue, let hi = value[1]?.doubleValue, lo <= hi { bounds[field] = lo...hi }
        }
        var valueDocuments: [String: Int] = [:]
        for (field, value) in json["value_documents"]?.objectValue ?? [:] {
            valueDocuments[field] = Int(value.intValue ?? 0)
        }
        self.init(
            id: id,
            base: base,
            count: count,
            statistics: statistics,
            bounds: bounds,
            valueDocuments: valueDocuments,
            layout: Int(json["layout"]?.intValue ?? 1)
        )
    }

    var json: JSON {
        var statistics: JSONObject = [:]
        for (field, value) in self.statistics {
            statistics[field] = ["docs": .int(Int64(value.documentCount)), "tokens": .int(Int64(value.tokenCount))]
        }
        var bounds: JSONObject = [:]
        for (field, range) in self.bounds {
            bounds[field] = [.double(range.lowerBound), .double(range.upperBound)]
        }
        var valueDocuments: JSONObject = [:]
        for (field, count) in self.valueDocuments { valueDocuments[field] = .int(Int64(count)) }
        return [
            "statistics": .object(statistics), "bounds": .object(bounds), "value_documents": .object(valueDocuments),
            "layout": .int(Int64(layout)),
        ]
    }
}

extension JSON {
    /// Deep-merges `patch` into this object, as `_update` with a partial `doc` does.
    func merging(_ patch: JSON) -> JSON {
        guard case .object(var base) = self, case .object(let changes) = patch else { return patch }
        for (key, value) in changes {
            if let current = base[key], case .object = current, case .object = value {
                base[key] = current.merging(value)
            } else {
                base[key] = value
            }
        }
        return .object(base)
    }
}
