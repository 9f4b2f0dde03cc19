import CCompressZlib
import CZstd
import Foundation
import QuarryCore

/// How `_source` is kept in the documents file: each document compressed on its own (so that one document reads
/// without its neighbours) with zstd, primed with a dictionary trained on the index's first documents, which carries
/// what documents of one index share — field names, the shape of timestamps and addresses — and gives per-document
/// compression the ratio of compressing blocks of documents (Elasticsearch compresses `_source` in blocks; Packetbeat
/// documents of 1.3 kB compress to 0.12 of their bytes with a 16 kB trained dictionary).
///
/// A stored row starts with a marker, or is the document's bytes as they came (rows written before compression, and
/// documents that do not get smaller; JSON never starts with a control character):
/// - ``zstdMarker``: a zstd frame compressed with the index's dictionary;
/// - ``plainZstdMarker``: a zstd frame without one (written before the index had a dictionary);
/// - ``deflateMarker`` and ``plainDeflateMarker``: raw deflate with and without the dictionary, as Quarry wrote rows
///   before it used zstd (six times slower to write for a third more bytes); still read.
///
/// zstd through its C API (``CZstd``): no listed Swift package wraps it; deflate through CompressNIO's C module,
/// which has no preset dictionaries.
package enum SourceCodec {
    package static let deflateMarker: UInt8 = 1
    package static let plainDeflateMarker: UInt8 = 2
    package static let zstdMarker: UInt8 = 3
    package static let plainZstdMarker: UInt8 = 4
    /// zstd's fastest regular level: with a trained dictionary, level 3 stores 0.112 of the bytes against 0.116 in
    /// a fifth to a third more time (`bench/zstd_settings.c` has these measurements and the ones below).
    static let level: Int32 = 1
    /// The dictionary's largest size: trained on 1,000 Packetbeat documents, a 16 kB dictionary compresses them to
    /// 0.116 of their bytes, a 4 kB one to 0.124, no slower (zstd digests the dictionary once per index).
    static let dictionaryBytes = 16_384
    /// How many of the first documents train the dictionary: training takes 74–115 ms on 1,000, 455 ms on 5,000
    /// for 0.115 of the bytes instead of 0.116.
    package static let trainingDocuments = 1_000
    /// At most this many bytes of them: training time grows with the bytes, and a first request of large documents
    /// (up to the 100 MB a request may hold) would otherwise stall its write for seconds.
    static let trainingBytes = 4 << 20
    /// Fewer documents than this train dictionaries that compress worse than a few of the documents themselves
    /// (trained on 10 Packetbeat documents: 0.218 of the bytes, against deflate's 0.157 before).
    static let fewestTrainingDocuments = 32
    /// No stored document inflates to more than this; a larger size in a frame's header means a damaged row.
    static let largestSource = 1 << 31

    /// A dictionary from the first documents an index receives: trained by zstd on up to ``trainingDocuments`` of
    /// them within ``trainingBytes``, or, from too few to train on, their text itself — one document of each shape
    /// (shapes told apart by their top-level keys: a Packetbeat DNS event and a flow differ), the most common shape
    /// last, where the compressor finds matches most cheaply. Empty when there is nothing to learn from (the next
    /// write tries again).
    package static func dictionary(from sources: some Sequence<[UInt8]>) -> [UInt8] {
        var samples: [[UInt8]] = []
        var sampledBytes = 0
        for source in sources where !source.isEmpty {
            guard samples.count < trainingDocuments, sampledBytes + source.count <= trainingBytes else { break }
            samples.append(source)
            sampledBytes += source.count
        }
        if samples.count >= fewestTrainingDocuments, let trained = train(samples) { return trained }
        var shapes: [[String]: (count: Int, first: Int, source: [UInt8])] = [:]
        for (position, source) in samples.enumerated() {
            let shape = (try? JSON.parse(source))?.objectValue?.keys ?? []
            shapes[shape, default: (0, position, source)].count += 1
        }
        let ordered = shapes.values.sorted { ($0.count, $1.first) < ($1.count, $0.first) }
        var joined: [UInt8] = []
        for shape in ordered.suffix(8) {
            joined += shape.source
            joined.append(UInt8(ascii: "\n"))
        }
        return Array(joined.suffix(dictionaryBytes))
    }

    /// zstd's dictionary trainer over `samples`; nil when it finds nothing worth a dictionary.
    private static func train(_ samples: [[UInt8]]) -> [UInt8]? {
        let joined = Array(samples.joined())
        let sizes = samples.map(\.count)
        var dictionary = [UInt8](repeating: 0, count: dictionaryBytes)
        let size = dictionary.withUnsafeMutableBytes { out in
            joined.withUnsafeBytes { input in
                ZDICT_trainFromBuffer(
                    out.baseAddress,
                    out.count,
                    input.baseAddress,
                    sizes,
                    UInt32(samples.count)
                )
            }
        }
        guard ZDICT_isError(size) == 0, size > 0 else { return nil }
        return Array(dictionary[..<size])
    }

    /// Compresses documents one at a time with the index's dictionary; one per thread (a zstd context is not
    /// shared).
    package final class Compressor {
        private let context: OpaquePointer
        let dictionary: SourceDictionary?
        private var output: [UInt8] = []

        package init(dictionary: SourceDictionary?) throws {
            guard let context = ZSTD_createCCtx() else {
                throw StoreError.internalFailure("zstd could not make a compression context")
            }
            self.context = context
            self.dictionary = dictionary
        }

        deinit { ZSTD_freeCCtx(context) }

        /// The stored form of `source`: compressed when that is smaller, else `source` itself.
        package func stored(_ source: [UInt8]) -> [UInt8] {
            guard !source.isEmpty else { return source }
            let bound = ZSTD_compressBound(source.count) + 1
            if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
            let digested = dictionary?.compression
            let written: Int? = source.withUnsafeBytes { input in
                output.withUnsafeMutableBytes { out in
                    out[0] = digested == nil ? SourceCodec.plainZstdMarker : SourceCodec.zstdMarker
                    let frame = out.baseAddress! + 1
                    let size =
                        if let digested {
                            ZSTD_compress_usingCDict(
                                context,
                                frame,
                                out.count - 1,
                                input.baseAddress,
                                input.count,
                                digested
                            )
                        } else {
                            ZSTD_compressCCtx(context, frame, out.count - 1, input.baseAddress, input.count, level)
                        }
                    return ZSTD_isError(size) == 0 ? size + 1 : nil
                }
            }
            guard let written, written < source.count else { return source }
            return Array(output[..<written])
        }
    }

    /// Compression contexts kept between requests. A context's first use sizes and clears about a megabyte of
    /// tables, which for a request of 50 documents took as long as compressing them; an index keeps a few.
    final class CompressorPool: @unchecked Sendable {
        private let lock = NSLock()
        private var idle: [Compressor] = []
        /// One for each core preparing a request, and one for the transaction.
        private let capacity = ProcessInfo.processInfo.activeProcessorCount + 1

        /// A context for `dictionary`: one kept, or a new one.
        func take(for dictionary: SourceDictionary?) throws -> Compressor {
            while let kept = lock.withLock({ idle.popLast() }) {
                if kept.dictionary === dictionary { return kept }
            }
            return try Compressor(dictionary: dictionary)
        }

        /// Keeps `compressor` for a later request, unless enough are kept.
        func giveBack(_ compressor: Compressor) {
            lock.withLock { if idle.count < capacity { idle.append(compressor) } }
        }
    }

    /// Reads stored documents of every form; one per thread.
    package final class Decompressor {
        private let context: OpaquePointer
        /// For rows written before zstd, made on the first such row.
        private var inflater: Inflater?

        package init() throws {
            guard let context = ZSTD_createDCtx() else {
                throw StoreError.internalFailure("zstd could not make a decompression context")
            }
            self.context = context
        }

        deinit { ZSTD_freeDCtx(context) }

        /// The stored form's bytes as the document had them.
        package func decode(_ stored: [UInt8], dictionary: SourceDictionary?) throws -> [UInt8] {
            switch stored.first {
            case SourceCodec.zstdMarker?:
                guard let digested = dictionary?.decompression else {
                    throw StoreError.internalFailure("a stored document needs the index's dictionary, which is missing")
                }
                return try decompress(stored.dropFirst(), dictionary: digested)
            case SourceCodec.plainZstdMarker?:
                return try decompress(stored.dropFirst(), dictionary: nil)
            case SourceCodec.deflateMarker?:
                guard let dictionary, !dictionary.bytes.isEmpty else {
                    throw StoreError.internalFailure("a stored document needs the index's dictionary, which is missing")
                }
                return try deflated().inflate(stored.dropFirst(), dictionary: dictionary.bytes)
            case SourceCodec.plainDeflateMarker?:
                return try deflated().inflate(stored.dropFirst(), dictionary: [])
            default:
                return stored
            }
        }

        private func deflated() throws -> Inflater {
            if let inflater { return inflater }
            let made = try Inflater()
            inflater = made
            return made
        }

        private func decompress(_ frame: ArraySlice<UInt8>, dictionary: OpaquePointer?) throws -> [UInt8] {
            try frame.withUnsafeBytes { input in
                let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
                // zstd.h's ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest values; the
                // compressor above always writes the size.
                guard declared < UInt64.max - 1, declared <= UInt64(SourceCodec.largestSource) else {
                    throw StoreError.internalFailure("a stored document's zstd frame has no valid size")
                }
                let expected = Int(declared)
                var failure: Int?
                let result = [UInt8](unsafeUninitializedCapacity: expected) { out, initialized in
                    let size =
                        if let dictionary {
                            ZSTD_decompress_usingDDict(
                                context,
                                out.baseAddress,
                                out.count,
                                input.baseAddress,
                                input.count,
                                dictionary
                            )
                        } else {
                            ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
                        }
                    guard ZSTD_isError(size) == 0, size == expected else {
                        failure = size
                        initialized = 0
                        return
                    }
                    initialized = size
                }
                if let failure {
                    let reason = ZSTD_isError(failure) != 0 ? String(cString: ZSTD_getErrorName(failure)) : "short"
                    throw StoreError.internalFailure("a stored document does not decompress (zstd: \(reason))")
                }
                return result
            }
        }
    }

    /// Inflates rows written before zstd (raw deflate, with the dictionary set before the first byte).
    private final class Inflater {
        private var stream = z_stream()

        init() throws {
            let status = CCompressZlib_inflateInit2(&stream, -15)
            guard status == Z_OK else { throw StoreError.internalFailure("zlib inflateInit2 failed: \(status)") }
        }

        deinit { inflateEnd(&stream) }

        func inflate(_ compressed: ArraySlice<UInt8>, dictionary: [UInt8]) throws -> [UInt8] {
            guard inflateReset(&stream) == Z_OK else { throw StoreError.internalFailure("zlib inflateReset failed") }
            if !dictionary.isEmpty {
                let status = dictionary.withUnsafeBufferPointer { words in
                    inflateSetDictionary(&stream, words.baseAddress, UInt32(words.count))
                }
                guard status == Z_OK else {
                    throw StoreError.internalFailure("a stored document's dictionary does not apply (\(status))")
                }
            }
            var result: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: max(4_096, compressed.count * 8))
            var input = Array(compressed)
            var status: Int32 = Z_OK
            try input.withUnsafeMutableBufferPointer { input in
                stream.next_in = input.baseAddress
                stream.avail_in = UInt32(input.count)
                repeat {
                    let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                        stream.next_out = out.baseAddress
                        stream.avail_out = UInt32(out.count)
                        status = CCompressZlib.inflate(&stream, Z_NO_FLUSH)
                        return out.count - Int(stream.avail_out)
                    }
                    guard status == Z_OK || status == Z_STREAM_END else {
                        throw StoreError.internalFailure("a stored document does not inflate (zlib \(status))")
                    }
                    result += chunk[..<produced]
                    if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                        throw StoreError.internalFailure("a stored document ends early")
                    }
                } while status != Z_STREAM_END
            }
            return result
        }
    }
}

/// An index's `_source` dictionary (``SourceCodec``) and zstd's digested forms of it, made once for the index:
/// digesting a dictionary costs as much as compressing several documents. zstd's digested dictionaries are read-only
/// once made and documented as safe to share between threads, hence `@unchecked Sendable`.
package final class SourceDictionary: @unchecked Sendable {
    /// As kept in the documents file's `meta`: a zstd dictionary, or (from few documents, and in indices written
    /// before zstd) plain text that both zstd and deflate take as a dictionary of content.
    package let bytes: [UInt8]
    /// `ZSTD_CDict`; nil only when zstd rejects the bytes, and then documents are compressed without it.
    fileprivate let compression: OpaquePointer?
    /// `ZSTD_DDict`.
    fileprivate let decompression: OpaquePointer?

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
        compression = bytes.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, $0.count, SourceCodec.level) }
        decompression = bytes.withUnsafeBytes { ZSTD_createDDict($0.baseAddress, $0.count) }
    }

    deinit {
        ZSTD_freeCDict(compression)
        ZSTD_freeDDict(decompression)
    }
}
