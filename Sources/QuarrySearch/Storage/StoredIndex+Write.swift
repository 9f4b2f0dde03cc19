import Foundation
import GRDB
import QuarryCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension StoredIndex {
    // MARK: Writes

    private struct ExistingDocument {
        var doc: Int64
        var version: Int64
        var seqNo: Int64
        /// The `_source` row as stored (``SourceCodec``).
        var source: Data
    }

    /// Applies writes in one transaction; per-item failures are results, not thrown errors.
    ///
    /// A request is indexed and compressed before the index's lock is taken (``prepare(_:)``), so that one
    /// request's indexing runs beside another's transaction (`quarry bulk` keeps two requests in flight, and Beats
    /// and Logstash send on several connections); what the lock then finds out of date is indexed again in order.
    /// - Throws: only when the transaction itself fails (disk full, I/O error); then nothing was written.
    /// - Parameter prepared: what ``prepare(_:)`` made of `operations` earlier (tests pass one made before a
    ///   mapping change); by default prepared here.
    func write(_ operations: [WriteOperation], prepared: PreparedWrite? = nil) throws -> [WriteResult] {
        let prepared = prepared ?? prepare(operations)
        let written = try lock.withLock {
            var mappings = metadata.mappings
            var mappingChanged = false
            /// Each stored document's number and indexed form, nil for one a batch holds (``Prepared/chunk``); the
            /// operation's position to index it from should the batches not join the segment.
            var pending: [(number: Int64, document: IndexedDocument?, position: Int)] = []
            var joinBatches = false
            var newlyDeleted: [Int64] = []
            var nextDoc = self.nextDoc
            var nextSeqNo = self.nextSeqNo
            var results: [WriteResult] = []
            results.reserveCapacity(operations.count)
            let indexName = metadata.name
            let uuid = metadata.uuid
            let limits = MappingLimits(settings: metadata.settings)
            // The first documents an index receives make its `_source` dictionary, unless another write made it
            // since this one was prepared.
            let newDictionary = sourceDictionary == nil ? prepared.newDictionary : nil
            let dictionary = sourceDictionary ?? newDictionary
            let preindexed =
                prepared.generation == metadataGeneration && prepared.dictionary === dictionary
                ? prepared.operations : [Prepared?](repeating: nil, count: operations.count)
            // Made only for what was not compressed before the lock (updates, documents prepared for an older
            // dictionary): a context takes memory of its own on first use.
            var compressor: SourceCodec.Compressor?
            defer { compressor.map(compressors.giveBack) }
            func compressed(_ source: [UInt8]) throws -> [UInt8] {
                if compressor == nil { compressor = try compressors.take(for: dictionary) }
                return compressor!.stored(source)
            }
            var batched = [Bool](repeating: false, count: operations.count)
            for (position, prepared) in preindexed.enumerated() {
                guard let chunk = prepared?.chunk else { continue }
                for covered in position..<position + chunk.count { batched[covered] = true }
            }

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
                        document: JSON?,
                        replacing current: ExistingDocument?,
                        position: Int,
                        preindexed: IndexedDocument? = nil,
                        stored: [UInt8]? = nil,
                        externalVersion: Int64? = nil
                    ) throws -> WriteResult {
                        let indexed: IndexedDocument?
                        if let preindexed {
                            indexed = preindexed
                        } else if batched[position] {
                            indexed = nil
                        } else {
                            var indexer = DocumentIndexer(mappings: mappings, documentID: id, limits: limits)
                            indexed = try indexer.index(document ?? JSON.parse(source))
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
                        try insert.execute(arguments: [
                            nextDoc, id, version, nextSeqNo, Data(try stored ?? compressed(source)),
                        ])
                        pending.append((nextDoc, indexed, position))
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
                        // A failure names the id the document was given, generated ones included, as in ES.
                        var itemID = operation.id ?? ""
                        do {
                            let result: WriteResult
                            switch operation {
                            case .index(let request):
                                // Read from its bytes here unless prepared on all cores; the tree is parsed only
                                // for what that leaves (new fields, errors), and first, so that a source that is
                                // not JSON fails before anything else is checked, as in Elasticsearch.
                                var indexed = preindexed[position]?.document
                                var document = request.document
                                if indexed == nil, document == nil, !batched[position] {
                                    let indexer = DocumentIndexer(mappings: mappings, documentID: "", limits: limits)
                                    indexed = request.source.withUnsafeBufferPointer { indexer.index(source: $0) }
                                    if indexed == nil { document = try JSON.parse(request.source) }
                                }
                                let id = request.id ?? self.generateID()
                                itemID = id
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
                                    document: document,
                                    replacing: current,
                                    position: position,
                                    preindexed: indexed,
                                    stored: preindexed[position]?.stored,
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
                                    // Only an update reads the stored document: inflated here, not on every lookup.
                                    let old = try JSON.parse(decodeSource(current.source, dictionary: dictionary))
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
                                            replacing: current,
                                            position: position
                                        )
                                    }
                                } else if let upsert = request.docAsUpsert ? request.doc : request.upsert {
                                    result = try store(
                                        id: request.id,
                                        source: upsert.serializedBytes(),
                                        document: upsert,
                                        replacing: nil,
                                        position: position
                                    )
                                } else {
                                    throw StoreError.documentMissing(index: indexName, uuid: uuid, id: request.id)
                                }
                            }
                            results.append(result)
                        } catch let error as StoreError {
                            // Items fail before they write anything, so the rest of the request goes on.
                            results.append(.failure(index: indexName, id: itemID, error))
                        } catch let error as JSONParseError {
                            results.append(.failure(index: indexName, id: itemID, .sourceParsing(error)))
                        }
                    }
                    // The batches join the segment whole when every operation stored a document, numbered in
                    // order; else the documents they hold are indexed one at a time, with the mapping as it is now
                    // (it only grew, so what a batch took still indexes the same).
                    joinBatches =
                        pending.count == operations.count && batched.allSatisfy { $0 }
                        && pending.first.map { $0.number + Int64(operations.count) == nextDoc } == true
                    if !joinBatches {
                        for index in pending.indices where pending[index].document == nil {
                            guard case .index(let request) = operations[pending[index].position] else { continue }
                            var indexer = DocumentIndexer(
                                mappings: mappings,
                                documentID: request.id ?? "",
                                limits: limits
                            )
                            pending[index].document = try indexer.index(request.document ?? JSON.parse(request.source))
                            if indexer.mappingChanged {
                                mappings = indexer.mappings
                                mappingChanged = true
                            }
                        }
                    }
                    if let newDictionary, nextDoc > self.nextDoc {
                        try Self.setMeta(
                            Self.sourceDictionaryKey,
                            Data(newDictionary.bytes).base64EncodedString(),
                            db
                        )
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
            if let newDictionary, nextDoc > self.nextDoc { sourceDictionary = newDictionary }
            if mappingChanged { metadata.mappings = mappings }
            if joinBatches {
                for (position, prepared) in preindexed.enumerated() {
                    if let chunk = prepared?.chunk { buffer.append(chunk, at: pending[0].number + Int64(position)) }
                }
            } else {
                for (number, document, _) in pending {
                    if let document { buffer.add(document, number: number) }
                }
            }
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

    /// What a write prepared before taking the index's lock, and from which mapping and dictionary.
    struct PreparedWrite {
        var generation: Int
        var dictionary: SourceDictionary?
        /// The dictionary this write makes, should the index have none yet.
        var newDictionary: SourceDictionary?
        var operations: [Prepared?]
    }

    /// Indexes and compresses a write's documents from a snapshot of the mapping, without holding the lock.
    func prepare(_ operations: [WriteOperation]) -> PreparedWrite {
        let snapshot: (metadata: IndexMetadata, generation: Int, dictionary: SourceDictionary?) = lock.withLock {
            (self.metadata, self.metadataGeneration, self.sourceDictionary)
        }
        let (metadata, generation, existing) = snapshot
        var newDictionary: SourceDictionary?
        if existing == nil {
            let made = SourceCodec.dictionary(
                from: operations.lazy.compactMap { operation -> [UInt8]? in
                    guard case .index(let request) = operation else { return nil }
                    return request.source
                }
            )
            if !made.isEmpty { newDictionary = SourceDictionary(made) }
        }
        let dictionary = existing ?? newDictionary
        return PreparedWrite(
            generation: generation,
            dictionary: dictionary,
            newDictionary: newDictionary,
            operations: Self.preindex(
                operations,
                mappings: metadata.mappings,
                limits: MappingLimits(settings: metadata.settings),
                dictionary: dictionary,
                compressors: compressors
            )
        )
    }

    /// What ``preindex(_:mappings:limits:dictionary:compressors:)`` prepared for one operation.
    struct Prepared: Sendable {
        var document: IndexedDocument?
        /// The `_source` row as it is stored (``SourceCodec``).
        var stored: [UInt8]?
        /// At a chunk's first position: the chunk's documents indexed as one batch, numbered from 0 in order, when
        /// every operation of the chunk indexed a document from the mapping as it was (see
        /// ``SegmentBuilder/append(_:at:)``); the operations then have no `document` of their own.
        var chunk: DocumentBatch?
    }

    /// Requests of this many operations or more are prepared on all cores.
    private static let parallelMinimum = 256

    /// Indexes and compresses a request's documents before the (sequential) transaction, a large request on all
    /// cores. Each core's chunk is indexed into one ``DocumentBatch``; should a document of it fail, or change the
    /// mapping, the chunk is indexed again a document at a time, and the failing one left without its indexed form
    /// to be indexed again in order, so errors and dynamic mapping behave exactly as in the sequential path; the
    /// mapping only ever grows, so results from the snapshot stay valid after an earlier document of the request
    /// adds a field.
    private static func preindex(
        _ operations: [WriteOperation],
        mappings: Mappings,
        limits: MappingLimits,
        dictionary: SourceDictionary?,
        compressors: SourceCodec.CompressorPool
    ) -> [Prepared?] {
        // A request too small to share between cores is prepared on the caller's thread, beside other connections'
        // requests, with the mapping as it is; worker threads get copies of their own.
        let parallel = operations.count >= parallelMinimum
        return parallelChunks(count: operations.count, initial: nil, minimumCount: parallelMinimum) { range, store in
            let mappings = parallel ? mappings.isolatedCopy() : mappings
            let compressor = try? compressors.take(for: dictionary)
            defer { compressor.map(compressors.giveBack) }
            var prepared = range.map { position -> Prepared in
                guard case .index(let request) = operations[position] else { return Prepared() }
                return Prepared(stored: compressor?.stored(request.source))
            }
            if let batch = batch(operations[range], mappings: mappings, limits: limits) {
                prepared[0].chunk = batch
            } else {
                indexOneByOne(operations[range], mappings: mappings, limits: limits, into: &prepared)
            }
            for (offset, item) in prepared.enumerated() { store(range.lowerBound + offset, item) }
        }
    }

    /// `operations` indexed as one batch, or nil if one is not a document to index, fails, or would change the
    /// mapping.
    private static func batch(
        _ operations: ArraySlice<WriteOperation>,
        mappings: Mappings,
        limits: MappingLimits
    ) -> DocumentBatch? {
        var batch = DocumentBatch()
        for (offset, operation) in operations.enumerated() {
            guard case .index(let request) = operation else { return nil }
            batch.begin(document: offset)
            var indexer = DocumentIndexer(mappings: mappings, documentID: request.id ?? "", limits: limits)
            if let document = request.document {
                guard (try? indexer.index(document, into: &batch)) != nil, !indexer.mappingChanged else { return nil }
            } else {
                guard request.source.withUnsafeBufferPointer({ indexer.index(source: $0, into: &batch) }) else {
                    return nil
                }
            }
        }
        return batch
    }

    /// Indexes `operations` a document at a time into `prepared` (what a chunk falls back to when one of its
    /// documents cannot join a batch).
    private static func indexOneByOne(
        _ operations: ArraySlice<WriteOperation>,
        mappings: Mappings,
        limits: MappingLimits,
        into prepared: inout [Prepared]
    ) {
        for (offset, operation) in operations.enumerated() {
            guard case .index(let request) = operation else { continue }
            var indexer = DocumentIndexer(mappings: mappings, documentID: request.id ?? "", limits: limits)
            if request.document == nil {
                prepared[offset].document = request.source.withUnsafeBufferPointer { indexer.index(source: $0) }
            }
            if prepared[offset].document == nil, let document = request.document ?? (try? JSON.parse(request.source)) {
                let indexed = try? indexer.index(document)
                // A new field: the sequential path maps it once; mapping it here would repeat that work for every
                // following document of the chunk, which is only compressed from there on.
                if indexer.mappingChanged { return }
                prepared[offset].document = indexed
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
        idNoise &+= 0x9E37_79B9_7F4A_7C15
        var noise = idNoise
        noise = (noise ^ (noise >> 30)) &* 0xBF58_476D_1CE4_E5B9
        noise = (noise ^ (noise >> 27)) &* 0x94D0_49BB_1331_11EB
        noise ^= noise >> 31
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
            info.id = allocateSegmentID()
            let end = builder.base + Int64(builder.count)
            var newFields: [String: Int64] = [:]
            try segmentWriter.inDatabase { db in
                try db.inTransaction {
                    newFields = [:]
                    let fields = try SegmentFields(db, known: lock.withLock { fieldIDs })
                    try Self.writeSegment(builder, info: info, fields: fields, db)
                    try Self.setMeta("flushed_doc", String(end), db)
                    newFields = fields.added
                    return .commit
                }
            }
            lock.withLock {
                fieldIDs.merge(newFields) { old, _ in old }
                frozen.removeFirst()
                segments.append(info)
                segmentsByID[info.id] = info
                flushError = nil
            }
            scheduleMerge()
        } catch {
            lock.withLock {
                flushError = error
                // Keep it searchable in memory; the next freeze or flush tries again.
            }
        }
    }

    /// A new segment's id; ids only grow, so a segment's rows sort after every earlier one's.
    func allocateSegmentID() -> Int64 {
        lock.withLock {
            defer { nextSegmentID += 1 }
            return nextSegmentID
        }
    }

    /// Writes a frozen segment in layout 2 (``SegmentInfo/layout``), its rows in key order so that the tables grow
    /// at their end.
    private static func writeSegment(
        _ builder: SegmentBuilder,
        info: SegmentInfo,
        fields: SegmentFields,
        _ db: Database
    ) throws {
        let writer = try SegmentRowWriter(segment: info.id, db)
        for (field, fieldID) in try fields.ids(for: Array(builder.fields.keys)) {
            let fieldBuilder = builder.fields[field]!
            let (terms, tokens) = (fieldBuilder.terms, fieldBuilder.tokens)
            if tokens.isEmpty {
                for id in terms.idsInByteOrder() {
                    try writer.postings(field: fieldID, term: terms.term(id), fieldBuilder.termDocuments[id])
                }
            } else if terms.isEmpty {
                for id in tokens.idsInByteOrder() {
                    let postings = fieldBuilder.tokenPostings[id]
                    try writer.postings(field: fieldID, term: tokens.term(id), postings.documents, postings.frequencies)
                }
            } else {
                // Exact terms and text tokens both: a token's row is the one kept.
                for term in Set(terms.terms).union(tokens.terms).sorted(by: bytewise) {
                    if let postings = fieldBuilder.postings(term) {
                        try writer.postings(field: fieldID, term: term, postings.documents, postings.frequencies)
                    } else if let documents = fieldBuilder.documents(term) {
                        try writer.postings(field: fieldID, term: term, documents)
                    }
                }
            }
        }
        var columns: [(String, Column)] = []
        for (field, fieldBuilder) in builder.fields {
            if let values = fieldBuilder.column { columns.append((field, values)) }
            if let lengths = fieldBuilder.lengths { columns.append((lengthColumn(field), lengths)) }
        }
        let ids = try fields.ids(for: columns.map(\.0))
        let byName = Dictionary(uniqueKeysWithValues: columns)
        for (name, fieldID) in ids {
            var column = byName[name]!
            column.pad(to: builder.count)
            try writer.column(field: fieldID, column)
        }
        try writer.register(info)
    }
}

/// SQLite orders `TEXT` bytewise; rows are written in that order.
func bytewise(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

/// The field ids of the segments file, adding the names a write brings (inside the write's transaction, so an
/// interrupted write adds none).
final class SegmentFields {
    private var known: [String: Int64]
    /// The ids this write added, to publish after it commits.
    private(set) var added: [String: Int64] = [:]
    private let db: Database

    init(_ db: Database, known: [String: Int64]) throws {
        self.db = db
        self.known = known
    }

    func id(_ name: String) throws -> Int64 {
        if let id = known[name] { return id }
        // Another writer of the file may have added it since `known` was read.
        try db.execute(sql: "INSERT OR IGNORE INTO fields(name) VALUES (?)", arguments: [name])
        guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM fields WHERE name = ?", arguments: [name]) else {
            throw StoreError.internalFailure("field \(name) could not be numbered")
        }
        known[name] = id
        added[name] = id
        return id
    }

    /// `names` with their ids, in id order (the order their rows are keyed in).
    func ids(for names: [String]) throws -> [(String, Int64)] {
        try names.map { ($0, try id($0)) }.sorted { $0.1 < $1.1 }
    }
}

/// Writes one segment's rows in layout 2; ``register(_:)`` makes the segment exist (until then its rows are
/// unreachable, and removed at the next open if the process dies first).
struct SegmentRowWriter {
    let segment: Int64
    private let terms: Statement
    private let columns: Statement
    private let db: Database

    init(segment: Int64, _ db: Database) throws {
        self.segment = segment
        self.db = db
        terms = try db.cachedStatement(
            sql: "INSERT INTO segment_terms(segment, field, term, count, docs) VALUES (?, ?, ?, ?, ?)"
        )
        columns = try db.cachedStatement(sql: "INSERT INTO segment_columns(segment, field, data) VALUES (?, ?, ?)")
    }

    func postings(field: Int64, term: String, _ documents: [UInt32], _ frequencies: [UInt16]? = nil) throws {
        let blob = PostingsCodec.encode(documents, frequencies: frequencies)
        try terms.execute(arguments: [segment, field, term, documents.count, Data(blob)])
    }

    func column(field: Int64, _ column: Column) throws {
        try columns.execute(arguments: [segment, field, Data(column.encoded())])
    }

    func register(_ info: SegmentInfo, live: Bitmap? = nil) throws {
        try db.execute(
            sql: "INSERT INTO segments(id, base, count, info) VALUES (?, ?, ?, ?)",
            arguments: [info.id, info.base, info.count, info.json.serialized()]
        )
        if let live {
            try db.execute(
                sql: "INSERT INTO segment_live(segment, bits) VALUES (?, ?)",
                arguments: [info.id, Data(live.bytes)]
            )
        }
    }
}
