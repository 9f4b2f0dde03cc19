import CCompressZlib
import Foundation
package import QuarryCore

/// How `_source` is kept in the documents file: each document deflated on its own (so that one document reads
/// without its neighbours), primed with a dictionary of the index's first documents, which carries what documents of
/// one index share — field names, the shape of timestamps and addresses — and gives per-document compression the
/// ratio of compressing blocks of documents (Elasticsearch compresses `_source` in blocks; Packetbeat documents of
/// 1.3 kB deflate 2× alone, 6× with a 4 kB dictionary).
///
/// A stored row is the document's bytes as they came (rows written before this, and documents that do not get
/// smaller), or ``marker`` followed by raw deflate primed with the index's dictionary, or ``plainMarker`` followed by
/// raw deflate without one (written before the index had a dictionary): JSON never starts with byte 1 or 2.
///
/// Written against zlib directly (through CompressNIO's C module): CompressNIO has no preset dictionaries.
package enum SourceCodec {
    static let marker: UInt8 = 1
    static let plainMarker: UInt8 = 2
    /// The dictionary's size: larger ones compress little better and cost more per document (zlib hashes the whole
    /// dictionary for each document).
    static let dictionaryBytes = 4_096

    /// A dictionary from the first documents an index receives: one document of each shape among them (shapes told
    /// apart by their top-level keys: a Packetbeat DNS event and a flow differ), the most common shape last since
    /// zlib prefers the end of a dictionary, then cut to its last `dictionaryBytes`. Both shapes in it compress a
    /// mixed index 6.3×; a dictionary of flows alone only 3×.
    package static func dictionary(from documents: some Sequence<(source: [UInt8], document: JSON)>) -> [UInt8] {
        var shapes: [[String]: (count: Int, first: Int, source: [UInt8])] = [:]
        for (position, (source, document)) in documents.enumerated() {
            let shape = document.objectValue?.keys ?? []
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

    /// The stored form's bytes as the document had them.
    static func decode(_ stored: [UInt8], dictionary: [UInt8]?) throws -> [UInt8] {
        guard stored.first == marker || stored.first == plainMarker else { return stored }
        return try Inflater().decode(stored, dictionary: dictionary)
    }

    /// Deflates documents one at a time with a dictionary; one per thread (zlib's stream state is not shared).
    package final class Compressor {
        private var stream = z_stream()
        private let dictionary: [UInt8]
        private var output: [UInt8] = []

        package init(dictionary: [UInt8]) throws {
            self.dictionary = dictionary
            // Level 1: the fastest; with the dictionary it compresses within a few percent of level 6. A smaller
            // window and hash table, and copying a stream primed once instead of setting the dictionary for each
            // document, trade size for speed about evenly (`QuarryBench breakdown`: 17.0–17.4 µs a document and 0.157
            // of the source at these settings, 14.8–15.1 µs and 0.162 with a window of 2¹³ and memLevel 5, copied).
            let status = CCompressZlib_deflateInit2(&stream, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY)
            guard status == Z_OK else { throw StoreError.internalFailure("zlib deflateInit2 failed: \(status)") }
        }

        deinit { deflateEnd(&stream) }

        /// The stored form of `source`: compressed when that is smaller, else `source` itself.
        package func stored(_ source: [UInt8]) -> [UInt8] {
            guard !source.isEmpty, deflateReset(&stream) == Z_OK else { return source }
            if !dictionary.isEmpty {
                let status = dictionary.withUnsafeBufferPointer { words in
                    deflateSetDictionary(&stream, words.baseAddress, UInt32(words.count))
                }
                guard status == Z_OK else { return source }
            }
            let bound = Int(deflateBound(&stream, UInt(source.count))) + 1
            if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
            let written: Int? = source.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer { out in
                    // zlib only reads the input; `next_in` is not const in every zlib build.
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                    stream.avail_in = UInt32(input.count)
                    out[0] = dictionary.isEmpty ? SourceCodec.plainMarker : SourceCodec.marker
                    stream.next_out = out.baseAddress! + 1
                    stream.avail_out = UInt32(out.count - 1)
                    guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return nil }
                    return out.count - Int(stream.avail_out)
                }
            }
            guard let written, written < source.count else { return source }
            return Array(output[..<written])
        }
    }

    /// Inflates stored documents (raw deflate, with the dictionary set before the first byte).
    final class Inflater {
        private var stream = z_stream()

        init() throws {
            let status = CCompressZlib_inflateInit2(&stream, -15)
            guard status == Z_OK else { throw StoreError.internalFailure("zlib inflateInit2 failed: \(status)") }
        }

        deinit { inflateEnd(&stream) }

        /// ``SourceCodec/decode(_:dictionary:)`` with this inflater.
        func decode(_ stored: [UInt8], dictionary: [UInt8]?) throws -> [UInt8] {
            switch stored.first {
            case SourceCodec.marker?:
                guard let dictionary, !dictionary.isEmpty else {
                    throw StoreError.internalFailure("a stored document needs the index's dictionary, which is missing")
                }
                return try inflate(stored.dropFirst(), dictionary: dictionary)
            case SourceCodec.plainMarker?: return try inflate(stored.dropFirst(), dictionary: [])
            default: return stored
            }
        }

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
