import Foundation
import GRDB
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
/// the two files have separate write locks for that reason.
///
/// `@unchecked Sendable`: every mutable property is read and written only while holding `lock`.
final class StoredIndex: @unchecked Sendable {
    /// Documents held in memory before the segment is frozen (``EmbeddedStore/Configuration/segmentDocuments``).
    private let segmentDocuments: Int
    static let flushBytes = 48 << 20
    /// Decoded doc-value columns kept between searches.
    static let columnCacheBytes = 64 << 20

    let fileURL: URL
    /// The segments file beside the documents file.
    var segmentsURL: URL { Self.segmentsURL(for: fileURL) }
    private let database: DatabaseQueue
    /// Connections to the segments file: one for the background writer, one for searches.
    private let segmentWriter: DatabaseQueue
    private let segmentReader: DatabaseQueue
    /// Writes frozen segments in order, one at a time.
    private let flushQueue = DispatchQueue(label: "quarry.index.flush")
    private let lock = NSLock()

    private(set) var metadata: IndexMetadata
    private var nextDoc: Int64 = 0
    private var nextSeqNo: Int64 = 0
    private var segments: [SegmentInfo] = []
    private var segmentsByID: [Int64: SegmentInfo] = [:]
    private var buffer: SegmentBuilder
    /// Full in-memory segments waiting to be written, oldest first; searchable meanwhile.
    private var frozen: [SegmentBuilder] = []
    private var deleted: Set<Int64> = []
    private var columnCache: [String: Column] = [:]
    private var columnCacheSize = 0
    private var idSequence: UInt16 = 0

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

    private static func openDatabase(_ url: URL) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.journalMode = .wal
        // A second connection (the segment reader, or a store still closing) may hold a lock for a moment.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -16384")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        return try DatabaseQueue(path: url.path, configuration: configuration)
    }

    private init(url: URL, database: DatabaseQueue, segmentDocuments: Int) throws {
        fileURL = url
        self.segmentDocuments = max(1, segmentDocuments)
        self.database = database
        segmentWriter = try Self.openDatabase(Self.segmentsURL(for: url))
        segmentReader = try Self.openDatabase(Self.segmentsURL(for: url))
        var loaded: (IndexMetadata, Int64, Int64, Set<Int64>)?
        try database.inDatabase { db in
            try Self.createSchema(db)
            let metadata = try Self.loadMetadata(db)
            let nextDoc = Int64(try Self.meta("next_doc", db) ?? "0") ?? 0
            let nextSeqNo = Int64(try Self.meta("next_seq_no", db) ?? "0") ?? 0
            let deleted = Set(try Int64.fetchAll(db, sql: "SELECT doc FROM deleted"))
            loaded = (metadata, nextDoc, nextSeqNo, deleted)
        }
        var flushed: Int64 = 0
        var segments: [SegmentInfo] = []
        try segmentWriter.inDatabase { db in
            try Self.createSegmentSchema(db)
            flushed = Int64(try Self.meta("flushed_doc", db) ?? "0") ?? 0
            for row in try Row.fetchAll(db, sql: "SELECT id, base, count, info FROM segments ORDER BY base") {
                let info = try JSON.parse(row["info"] as String)
                segments.append(SegmentInfo(id: row["id"], base: row["base"], count: row["count"], json: info))
            }
        }
        guard let (metadata, nextDoc, nextSeqNo, deleted) = loaded else {
            throw StoreError.internalFailure("could not read index file \(url.lastPathComponent)")
        }
        self.metadata = metadata
        self.nextDoc = nextDoc
        self.nextSeqNo = nextSeqNo
        self.segments = segments
        self.segmentsByID = Dictionary(uniqueKeysWithValues: segments.map { ($0.id, $0) })
        self.deleted = deleted
        buffer = SegmentBuilder(base: flushed)
        try replayUnflushed(from: flushed)
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
                let source: Data = row["source"]
                guard let json = try? JSON.parse(source) else { continue }
                var indexer = DocumentIndexer(mappings: mappings, documentID: row["id"])
                if let document = try? indexer.index(json) {
                    replayed.append((row["doc"], document))
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
                """
        )
    }

    private static func meta(_ key: String, _ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    private static func setMeta(_ key: String, _ value: String, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)")
            .execute(arguments: [key, value])
    }

    private static func saveMetadata(_ metadata: IndexMetadata, _ db: Database) throws {
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
        if writingSegments {
            try flush()
        } else {
            waitForBackgroundWrites()
        }
        try lock.withLock {
            try database.close()
            try segmentWriter.close()
            try segmentReader.close()
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

    // MARK: Writes

    private struct ExistingDocument {
        var doc: Int64
        var version: Int64
        var seqNo: Int64
        var source: Data
    }

    /// Applies writes in one transaction; per-item failures are results, not thrown errors.
    /// - Throws: only when the transaction itself fails (disk full, I/O error); then nothing was written.
    func write(_ operations: [WriteOperation]) throws -> [WriteResult] {
        let written = try lock.withLock {
            var mappings = metadata.mappings
            var mappingChanged = false
            var pending: [(Int64, IndexedDocument)] = []
            var newlyDeleted: [Int64] = []
            var nextDoc = self.nextDoc
            var nextSeqNo = self.nextSeqNo
            var results: [WriteResult] = []
            results.reserveCapacity(operations.count)
            let indexName = metadata.name
            let uuid = metadata.uuid
            let limits = MappingLimits(settings: metadata.settings)
            let preindexed = Self.preindex(operations, mappings: mappings, limits: limits)

            try database.inDatabase { db in
                try db.inTransaction {
                    let lookup = try db.cachedStatement(
                        sql: "SELECT doc, version, seq_no, source FROM docs WHERE id = ?"
                    )
                    let insert = try db.cachedStatement(
                        sql: "INSERT INTO docs(doc, id, version, seq_no, source) VALUES (?, ?, ?, ?, ?)"
                    )
                    let remove = try db.cachedStatement(sql: "DELETE FROM docs WHERE doc = ?")
                    let tombstone = try db.cachedStatement(sql: "INSERT OR IGNORE INTO deleted(doc) VALUES (?)")

                    func existing(_ id: String) throws -> ExistingDocument? {
                        guard let row = try Row.fetchOne(lookup, arguments: [id]) else { return nil }
                        return ExistingDocument(doc: row[0], version: row[1], seqNo: row[2], source: row[3])
                    }

                    func check(
                        _ conditions: WriteConditions,
                        _ id: String,
                        _ current: ExistingDocument?
                    ) throws(StoreError) {
                        if let external = conditions.externalVersion, let current,
                            let reason = external.conflict(with: current.version)
                        {
                            throw StoreError.versionConflict(index: indexName, uuid: uuid, id: id, reason: reason)
                        }
                        guard let required = conditions.ifSeqNo else { return }
                        let term = conditions.ifPrimaryTerm ?? 1
                        guard let current else {
                            throw StoreError.versionConflict(
                                index: indexName,
                                uuid: uuid,
                                id: id,
                                reason:
                                    "version conflict, required seqNo [\(required)], primary term [\(term)] but no document was found"
                            )
                        }
                        if current.seqNo != required || term != 1 {
                            throw StoreError.versionConflict(
                                index: indexName,
                                uuid: uuid,
                                id: id,
                                reason:
                                    "version conflict, required seqNo [\(required)], primary term [\(term)]. current document has seqNo [\(current.seqNo)] and primary term [1]"
                            )
                        }
                    }

                    func store(
                        id: String,
                        source: [UInt8],
                        document: JSON,
                        replacing current: ExistingDocument?,
                        preindexed: IndexedDocument? = nil,
                        externalVersion: Int64? = nil
                    ) throws -> WriteResult {
                        let indexed: IndexedDocument
                        if let preindexed {
                            indexed = preindexed
                        } else {
                            var indexer = DocumentIndexer(mappings: mappings, documentID: id, limits: limits)
                            indexed = try indexer.index(document)
                            if indexer.mappingChanged {
                                mappings = indexer.mappings
                                mappingChanged = true
                            }
                        }
                        if let current {
                            try remove.execute(arguments: [current.doc])
                            try tombstone.execute(arguments: [current.doc])
                            newlyDeleted.append(current.doc)
                        }
                        let version = externalVersion ?? (current?.version ?? 0) + 1
                        try insert.execute(arguments: [nextDoc, id, version, nextSeqNo, Data(source)])
                        pending.append((nextDoc, indexed))
                        let result = WriteResult(
                            index: indexName,
                            id: id,
                            version: version,
                            result: current == nil ? "created" : "updated",
                            seqNo: nextSeqNo,
                            status: current == nil ? 201 : 200
                        )
                        nextDoc += 1
                        nextSeqNo += 1
                        return result
                    }

                    for (position, operation) in operations.enumerated() {
                        do {
                            let result: WriteResult
                            switch operation {
                            case .index(let request):
                                let id = request.id ?? self.generateID()
                                let current = request.id == nil ? nil : try existing(id)
                                if request.createOnly, let current {
                                    throw StoreError.versionConflict(
                                        index: indexName,
                                        uuid: uuid,
                                        id: id,
                                        reason:
                                            "version conflict, document already exists (current version [\(current.version)])"
                                    )
                                }
                                try check(request.conditions, id, current)
                                result = try store(
                                    id: id,
                                    source: request.source,
                                    document: request.document,
                                    replacing: current,
                                    preindexed: preindexed[position],
                                    externalVersion: request.conditions.externalVersion?.version
                                )
                            case .delete(let id, let conditions):
                                let current = try existing(id)
                                try check(conditions, id, current)
                                if let current {
                                    try remove.execute(arguments: [current.doc])
                                    try tombstone.execute(arguments: [current.doc])
                                    newlyDeleted.append(current.doc)
                                    result = WriteResult(
                                        index: indexName,
                                        id: id,
                                        version: conditions.externalVersion?.version ?? current.version + 1,
                                        result: "deleted",
                                        seqNo: nextSeqNo,
                                        status: 200
                                    )
                                } else {
                                    result = WriteResult(
                                        index: indexName,
                                        id: id,
                                        version: conditions.externalVersion?.version ?? 1,
                                        result: "not_found",
                                        seqNo: nextSeqNo,
                                        status: 404
                                    )
                                }
                                nextSeqNo += 1
                            case .update(let request):
                                let current = try existing(request.id)
                                try check(request.conditions, request.id, current)
                                if let current {
                                    let old = try JSON.parse(current.source)
                                    let merged = request.doc.map { old.merging($0) } ?? old
                                    if request.detectNoop, merged == old {
                                        result = WriteResult(
                                            index: indexName,
                                            id: request.id,
                                            version: current.version,
                                            result: "noop",
                                            seqNo: current.seqNo,
                                            status: 200
                                        )
                                    } else {
                                        result = try store(
                                            id: request.id,
                                            source: merged.serializedBytes(),
                                            document: merged,
                                            replacing: current
                                        )
                                    }
                                } else if let upsert = request.docAsUpsert ? request.doc : request.upsert {
                                    result = try store(
                                        id: request.id,
                                        source: upsert.serializedBytes(),
                                        document: upsert,
                                        replacing: nil
                                    )
                                } else {
                                    throw StoreError.documentMissing(index: indexName, uuid: uuid, id: request.id)
                                }
                            }
                            results.append(result)
                        } catch let error as StoreError {
                            // Items fail before they write anything, so the rest of the request goes on.
                            results.append(.failure(index: indexName, id: operation.id ?? "", error))
                        } catch let error as JSONParseError {
                            results.append(
                                .failure(index: indexName, id: operation.id ?? "", .documentParsing(error.description))
                            )
                        }
                    }
                    try Self.setMeta("next_doc", String(nextDoc), db)
                    try Self.setMeta("next_seq_no", String(nextSeqNo), db)
                    if mappingChanged {
                        var updated = self.metadata
                        updated.mappings = mappings
                        try Self.saveMetadata(updated, db)
                    }
                    return .commit
                }
            }
            // Committed: make the writes visible.
            if mappingChanged { metadata.mappings = mappings }
            for (number, document) in pending { buffer.add(document, number: number) }
            deleted.formUnion(newlyDeleted)
            self.nextDoc = nextDoc
            self.nextSeqNo = nextSeqNo
            buffer.count = Int(nextDoc - buffer.base)
            if buffer.count >= segmentDocuments || buffer.estimatedBytes >= Self.flushBytes {
                freezeLocked()
            }
            return results
        }
        // Backpressure: when the segment writer falls behind, wait for it rather than hold ever more in memory.
        if lock.withLock({ frozen.count }) > 1 { flushQueue.sync {} }
        return written
    }

    /// Indexes the documents of a large request on all cores before the (sequential) transaction. A document
    /// that fails, or would change the mapping, is left `nil` and indexed again in order, so errors and dynamic
    /// mapping behave exactly as in the sequential path; the mapping only ever grows, so results from the snapshot
    /// stay valid after an earlier document of the request adds a field.
    private static func preindex(
        _ operations: [WriteOperation],
        mappings: Mappings,
        limits: MappingLimits
    ) -> [IndexedDocument?] {
        guard operations.count >= 256 else { return [IndexedDocument?](repeating: nil, count: operations.count) }
        return parallelChunks(count: operations.count, initial: nil) { range, store in
            let mappings = mappings.isolatedCopy()
            for position in range {
                guard case .index(let request) = operations[position] else { continue }
                var indexer = DocumentIndexer(mappings: mappings, documentID: request.id ?? "", limits: limits)
                guard let document = try? indexer.index(request.document) else { continue }
                // A new field: the sequential path maps it once; mapping it here would repeat that work for
                // every following document of the chunk.
                if indexer.mappingChanged { break }
                store(position, document)
            }
        }
    }

    /// An id like Elasticsearch's auto-generated ones: 20 URL-safe characters, time-ordered so that the `id` index
    /// grows at its end.
    private func generateID() -> String {
        idSequence &+= 1
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let millis = UInt64(time.tv_sec) * 1000 + UInt64(time.tv_nsec) / 1_000_000
        var random = SystemRandomNumberGenerator()
        let noise = random.next()
        // 6 bytes of time, 2 of sequence, 7 random: 15 bytes, 20 URL-safe base64 characters.
        var bytes = [UInt8](repeating: 0, count: 15)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: millis >> UInt64(40 - 8 * i)) }
        bytes[6] = UInt8(truncatingIfNeeded: idSequence >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: idSequence)
        for i in 0..<7 { bytes[8 + i] = UInt8(truncatingIfNeeded: noise >> UInt64(8 * i)) }
        return String(unsafeUninitializedCapacity: 20) { output in
            var position = 0
            for group in stride(from: 0, to: 15, by: 3) {
                let value = UInt32(bytes[group]) << 16 | UInt32(bytes[group + 1]) << 8 | UInt32(bytes[group + 2])
                for shift in [18, 12, 6, 0] {
                    output[position] = Self.base64URL[Int(value >> UInt32(shift) & 63)]
                    position += 1
                }
            }
            return position
        }
    }

    /// The 64 URL-safe characters in byte order, so that later ids sort after earlier ones and SQLite's `id`
    /// index grows at its end instead of splitting pages all over.
    private static let base64URL = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

    /// Waits until the segment writes already handed to the background queue have ended.
    func waitForBackgroundWrites() {
        flushQueue.sync {}
    }

    /// Writes every in-memory segment to the segments file and waits until they are written.
    func flush() throws {
        lock.withLock { freezeLocked() }
        flushQueue.sync {}
        if let error = lock.withLock({ flushError }) { throw error }
    }

    /// The last failure of the segment writer (the segment stays in memory, searchable, and is tried again).
    private var flushError: (any Error)?

    /// Freezes the in-memory segment and hands it to the segment writer.
    private func freezeLocked() {
        buffer.count = Int(nextDoc - buffer.base)
        guard buffer.count > 0 else { return }
        frozen.append(buffer)
        buffer = SegmentBuilder(base: nextDoc)
        flushQueue.async { self.writeOldestFrozenSegment() }
    }

    /// Runs on `flushQueue`: writes the oldest frozen segment in one transaction of the segments file, then
    /// swaps it for its stored form.
    private func writeOldestFrozenSegment() {
        guard let builder = lock.withLock({ frozen.first }) else { return }
        do {
            var info = builder.info
            let end = builder.base + Int64(builder.count)
            try segmentWriter.inDatabase { db in
                try db.inTransaction {
                    try Self.writeSegment(builder, info: &info, end: end, db)
                    return .commit
                }
            }
            lock.withLock {
                frozen.removeFirst()
                segments.append(info)
                segmentsByID[info.id] = info
                flushError = nil
            }
        } catch {
            lock.withLock {
                flushError = error
                // Keep it searchable in memory; the next freeze or flush tries again.
            }
        }
    }

    private static func writeSegment(
        _ builder: SegmentBuilder,
        info: inout SegmentInfo,
        end: Int64,
        _ db: Database
    )
        throws
    {
        try db.execute(
            sql: "INSERT INTO segments(base, count, info) VALUES (?, ?, ?)",
            arguments: [info.base, builder.count, info.json.serialized()]
        )
        info.id = db.lastInsertedRowID
        let posting = try db.cachedStatement(
            sql: "INSERT INTO postings(field, term, segment, count, docs) VALUES (?, ?, ?, ?, ?)"
        )
        let column = try db.cachedStatement(sql: "INSERT INTO columns(field, segment, data) VALUES (?, ?, ?)")
        // Inserted in key order (SQLite compares TEXT bytewise), so the B-tree grows at its end.
        func bytewise(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
        for field in builder.fields.keys.sorted(by: bytewise) {
            let fieldBuilder = builder.fields[field]!
            for term in fieldBuilder.terms.keys.sorted(by: bytewise) {
                let docs = fieldBuilder.terms[term]!
                try posting.execute(arguments: [field, term, info.id, docs.count, Data(PostingsCodec.encode(docs))])
            }
            for token in fieldBuilder.text.keys.sorted(by: bytewise) {
                let postings = fieldBuilder.text[token]!
                let blob = PostingsCodec.encode(postings.documents, frequencies: postings.frequencies)
                try posting.execute(arguments: [field, token, info.id, postings.documents.count, Data(blob)])
            }
            if var values = fieldBuilder.column {
                values.pad(to: builder.count)
                try column.execute(arguments: [field, info.id, Data(values.encoded())])
            }
            if var lengths = fieldBuilder.lengths {
                lengths.pad(to: builder.count)
                try column.execute(arguments: [lengthColumn(field), info.id, Data(lengths.encoded())])
            }
        }
        try setMeta("flushed_doc", String(end), db)
    }

    // MARK: Reads

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
                    source: Array(source)
                )
            }
        }
    }

    /// Number of live documents.
    var documentCount: Int {
        lock.withLock { Int(nextDoc) - deleted.count }
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

    func storedSegment(id: Int64) -> SegmentInfo? { segmentsByID[id] }

    func cachedColumn(segment: Int64, field: String, db: Database) throws -> Column? {
        let key = "\(segment)\u{0}\(field)"
        if let column = columnCache[key] { return column }
        guard
            let data = try Data.fetchOne(
                db.cachedStatement(sql: "SELECT data FROM columns WHERE field = ? AND segment = ?"),
                arguments: [field, segment]
            ), let column = Column(decoding: Array(data))
        else { return nil }
        if columnCacheSize + data.count > Self.columnCacheBytes {
            columnCache.removeAll(keepingCapacity: true)
            columnCacheSize = 0
        }
        columnCache[key] = column
        columnCacheSize += data.count
        return column
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
            valueDocuments: valueDocuments
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
