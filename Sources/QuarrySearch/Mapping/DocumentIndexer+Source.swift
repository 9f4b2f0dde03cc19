import QuarryCore

extension DocumentIndexer {
    /// Indexes a document straight from its `_source` bytes, reading them once and building no JSON tree (for bulk
    /// requests of Packetbeat documents, the tree was a third of the CPU time before the transaction).
    ///
    /// Returns nil for what it leaves to ``index(_:)``: bytes that are not one valid JSON object, a field the
    /// mapping does not have yet (dynamic mapping), and any value the mapping refuses. Errors and mapping changes
    /// are so made in one place, in Elasticsearch's words, and whatever this returns is what ``index(_:)`` returns
    /// for the parsed document (`SourceIndexingTests` compares both on every document of the store's tests).
    package func index(source: UnsafeBufferPointer<UInt8>) -> IndexedDocument? {
        var document = IndexedDocument()
        return index(source: source, into: &document) ? document : nil
    }

    /// Indexes a document from its bytes into `sink`, as ``index(source:)`` does; returns false, having perhaps
    /// put part of the document in `sink`, where that returns nil.
    package func index<Sink: IndexingSink>(source: UnsafeBufferPointer<UInt8>, into document: inout Sink) -> Bool {
        var reader = SourceReader(parser: JSONParser(source))
        do {
            reader.parser.skipWhitespace()
            guard reader.next == UInt8(ascii: "{") else { return false }
            try readObject(&reader, node: mappings.root, prefix: "", depth: 1, into: &document)
            reader.parser.skipWhitespace()
            guard reader.parser.index == source.count else { return false }
        } catch {
            return false
        }
        return true
    }

    /// An object's members, as ``walk(_:node:prefix:into:)`` visits a parsed object's.
    private func readObject<Sink: IndexingSink>(
        _ reader: inout SourceReader,
        node: MappingNode?,
        prefix: String,
        depth: Int,
        into document: inout Sink
    ) throws {
        guard depth < SourceReader.maximumDepth else { throw SourceReader.NeedsTree() }
        reader.parser.index += 1
        reader.parser.skipWhitespace()
        if reader.next == UInt8(ascii: "}") {
            reader.parser.index += 1
            return
        }
        let firstKey = reader.keys.count
        defer { reader.keys.removeSubrange(firstKey...) }
        while true {
            reader.parser.skipWhitespace()
            guard reader.next == UInt8(ascii: "\"") else { throw SourceReader.NeedsTree() }
            let keyStart = reader.parser.index
            let key: SourceReader.Key
            if let plain = reader.readPlainKey() {
                key = .plain(plain)
            } else {
                key = .parsed(try reader.parser.parseString())
            }
            // Duplicate keys are refused by the parser, empty ones by the indexer: both in the tree path's words.
            guard !reader.isEmpty(key), reader.keys.count - firstKey < SourceReader.maximumKeys,
                !reader.keys[firstKey...].contains(where: { reader.same($0, key) })
            else { throw SourceReader.NeedsTree() }
            reader.keys.append(key)
            reader.parser.skipWhitespace()
            guard reader.next == UInt8(ascii: ":") else { throw SourceReader.NeedsTree() }
            reader.parser.index += 1
            reader.parser.skipWhitespace()
            // Read from the key as written: without a dot, or an escape that could spell one, it names one level.
            let child: MappingNode.Child?
            switch key {
            case .plain(let range):
                let name = reader.bytes(of: range)
                child = name.contains(UInt8(ascii: ".")) ? nil : node?.child(named: name)
            case .parsed(let text):
                let written = reader.bytes(of: keyStart..<reader.parser.index)
                let oneLevel = !written.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "\\") }
                child = oneLevel ? node?.children[text] : nil
            }
            switch child {
            case .field(let field)?:
                try readField(&reader, field: field, depth: depth, into: &document)
            case .object(let objectNode)?:
                try readObjectValue(&reader, node: objectNode, depth: depth, into: &document)
            case nil:
                let key = reader.text(of: key)
                try Self.validateDottedName(key)
                let path = prefix.isEmpty ? key : prefix + "." + key
                try readUnknown(&reader, path: path, depth: depth, into: &document)
            }
            reader.parser.skipWhitespace()
            switch reader.next {
            case UInt8(ascii: ","): reader.parser.index += 1
            case UInt8(ascii: "}"):
                reader.parser.index += 1
                return
            default: throw SourceReader.NeedsTree()
            }
        }
    }

    /// A mapped field's value, as `visitField` indexes it.
    private func readField<Sink: IndexingSink>(
        _ reader: inout SourceReader,
        field: FieldDefinition,
        depth: Int,
        into document: inout Sink
    ) throws {
        switch reader.next {
        case UInt8(ascii: "["):
            try reader.readElements(depth: depth) { reader, depth in
                try readField(&reader, field: field, depth: depth, into: &document)
            }
        case UInt8(ascii: "n"):
            try reader.parser.expectLiteral("null")
            if let nullValue = field.nullValue { try indexLeaf(nullValue, field: field, into: &document) }
        case UInt8(ascii: "{"):
            guard field.type.family == .unindexed || field.type == .flattened else { throw SourceReader.NeedsTree() }
            _ = try reader.parser.parseValue(depth: depth)
        default:
            try indexLeaf(try reader.parser.parseValue(depth: depth), field: field, into: &document)
        }
    }

    /// The value of a mapped object, as `visitObject` reads it.
    private func readObjectValue<Sink: IndexingSink>(
        _ reader: inout SourceReader,
        node: MappingNode,
        depth: Int,
        into document: inout Sink
    ) throws {
        switch reader.next {
        case UInt8(ascii: "{"):
            if mappings.disabledObjects.contains(node.path) {
                _ = try reader.parser.parseValue(depth: depth)
            } else {
                try readObject(&reader, node: node, prefix: node.path, depth: depth + 1, into: &document)
            }
        case UInt8(ascii: "["):
            try reader.readElements(depth: depth) { reader, depth in
                try readObjectValue(&reader, node: node, depth: depth, into: &document)
            }
        case UInt8(ascii: "n"):
            try reader.parser.expectLiteral("null")
        default:
            throw SourceReader.NeedsTree()
        }
    }

    /// A dotted key or one its object's node does not know, as `visitUnknown` resolves it; anything that would map
    /// a new field is left to the tree path.
    private func readUnknown<Sink: IndexingSink>(
        _ reader: inout SourceReader,
        path: String,
        depth: Int,
        into document: inout Sink
    ) throws {
        if let field = mappings.field(path) {
            try readField(&reader, field: field, depth: depth, into: &document)
        } else if let node = mappings.node(at: path) {
            try readObjectValue(&reader, node: node, depth: depth, into: &document)
        } else {
            switch reader.next {
            case UInt8(ascii: "n"):
                try reader.parser.expectLiteral("null")
            case UInt8(ascii: "["):
                try reader.readElements(depth: depth) { reader, depth in
                    try readUnknown(&reader, path: path, depth: depth, into: &document)
                }
            default:
                throw SourceReader.NeedsTree()
            }
        }
    }
}

/// The parser reading a source token by token, and the keys of the objects open in it (to refuse duplicates, as
/// the parser does when it builds a tree).
private struct SourceReader {
    /// Thrown where the tree path takes over.
    struct NeedsTree: Error {}

    /// Deeper documents, and objects with more members, go the tree path (whose limits and hashed duplicate check
    /// apply there).
    static let maximumDepth = 200
    static let maximumKeys = 64

    var parser: JSONParser
    /// A key of an open object: where it is in the source when it is plain ASCII (compared byte for byte, as no
    /// other spelling makes the same key), else its text.
    enum Key {
        case plain(Range<Int>)
        case parsed(String)
    }

    var keys: [Key] = []

    func text(of key: Key) -> String {
        switch key {
        case .plain(let range): String(decoding: bytes(of: range), as: UTF8.self)
        case .parsed(let text): text
        }
    }

    func isEmpty(_ key: Key) -> Bool {
        switch key {
        case .plain(let range): range.isEmpty
        case .parsed(let text): text.isEmpty
        }
    }

    func same(_ one: Key, _ other: Key) -> Bool {
        if case .plain(let first) = one, case .plain(let second) = other {
            return bytes(of: first).elementsEqual(bytes(of: second))
        }
        return text(of: one) == text(of: other)
    }

    /// The source's bytes at `range`.
    func bytes(of range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: parser.bytes[range])
    }

    /// Reads a key made of printable ASCII without escapes, returning where its text is; nil, having read nothing,
    /// for any other key (the parser then reads it: escapes to undo, non-ASCII text to validate).
    mutating func readPlainKey() -> Range<Int>? {
        let start = parser.index + 1
        var end = start
        while end < parser.bytes.count {
            let byte = parser.bytes[end]
            if byte == UInt8(ascii: "\"") {
                guard end > start else { return nil }
                parser.index = end + 1
                return start..<end
            }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { return nil }
            end += 1
        }
        return nil
    }

    /// The byte at the reading position, if any.
    var next: UInt8? { parser.index < parser.bytes.count ? parser.bytes[parser.index] : nil }

    /// Reads an array at the reading position, calling `element` at the start of each element.
    mutating func readElements(depth: Int, _ element: (inout SourceReader, Int) throws -> Void) throws {
        guard depth + 1 < Self.maximumDepth else { throw NeedsTree() }
        parser.index += 1
        parser.skipWhitespace()
        if next == UInt8(ascii: "]") {
            parser.index += 1
            return
        }
        while true {
            parser.skipWhitespace()
            try element(&self, depth + 1)
            parser.skipWhitespace()
            switch next {
            case UInt8(ascii: ","): parser.index += 1
            case UInt8(ascii: "]"):
                parser.index += 1
                return
            default: throw NeedsTree()
            }
        }
    }
}
