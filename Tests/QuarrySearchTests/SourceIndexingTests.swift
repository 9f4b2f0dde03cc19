import Foundation
import QuarryCore
import QuarryPacketbeat
import QuarrySamples
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Indexing straight from a document's bytes (``DocumentIndexer/index(source:)``) against the tree path it stands in
/// for: whatever it indexes, the tree path indexes the same way, and what it leaves to the tree path is exactly what
/// the tree path refuses or maps anew.
@Suite("Indexing from the source's bytes", .mayBlock)
struct SourceIndexingTests {
    /// Every document of the reference hunt's sample data, once the index's mapping holds its fields.
    @Test func packetbeatDocumentsAreReadOnce() throws {
        let template = try #require(PacketbeatTemplate.body["template"]?["mappings"]?.objectValue)
        var mappings = try Mappings(json: template)
        var generator = DNSDocumentGenerator(configuration: .init(documents: 3_000, end: 1_796_000_000_000, seed: 11))
        var fromBytes = 0
        var total = 0
        while let json = generator.next() {
            let bytes = json.serializedBytes()
            var tree = DocumentIndexer(mappings: mappings, documentID: "d")
            let expected = try tree.index(JSON.parse(bytes))
            if tree.mappingChanged {
                mappings = tree.mappings
                continue
            }
            total += 1
            let read = bytes.withUnsafeBufferPointer {
                DocumentIndexer(mappings: mappings, documentID: "d").index(source: $0)
            }
            guard let read else { continue }
            fromBytes += 1
            #expect(Self.describe(read) == Self.describe(expected))
        }
        #expect(total > 2_900)
        #expect(fromBytes == total)
    }

    /// Random documents over a mapping with every kind of field (and random damage to their bytes).
    @Test(arguments: [1, 2, 3] as [UInt64])
    func randomDocumentsIndexAsTheTreeIndexesThem(seed: UInt64) throws {
        let mappings = try Mappings(json: Self.mapping)
        var random = SplitMix64(seed: seed)
        var counts = (read: 0, refused: 0, mapped: 0, damaged: 0)
        for _ in 0..<3_000 {
            var text = Self.document(&random)
            if Int.random(in: 0..<10, using: &random) == 0, !text.isEmpty {
                var bytes = Array(text.utf8)
                let at = Int.random(in: 0..<bytes.count, using: &random)
                if Bool.random(using: &random) {
                    bytes[at] = UInt8.random(in: 0...127, using: &random)
                } else {
                    bytes.removeSubrange(at...)
                }
                text = String(decoding: bytes, as: UTF8.self)
                counts.damaged += 1
            }
            let bytes = Array(text.utf8)
            var tree = DocumentIndexer(mappings: mappings, documentID: "d")
            let expected = (try? JSON.parse(bytes)).flatMap { try? tree.index($0) }
            let read = bytes.withUnsafeBufferPointer {
                DocumentIndexer(mappings: mappings, documentID: "d").index(source: $0)
            }
            if let read {
                counts.read += 1
                #expect(!tree.mappingChanged, "\(text)")
                #expect(Self.describe(read) == expected.map(Self.describe), "\(text)")
            } else {
                // Left to the tree path only when it refuses the document or maps a new field.
                #expect(expected == nil || tree.mappingChanged, "\(text)")
                if tree.mappingChanged { counts.mapped += 1 } else { counts.refused += 1 }
            }
        }
        // Each outcome is common enough for the comparison to mean something.
        #expect(counts.read > 500, "\(counts)")
        #expect(counts.refused > 200, "\(counts)")
        #expect(counts.mapped > 100, "\(counts)")
    }

    /// A segment joined from batches (the path of large requests) holds exactly what adding the same documents
    /// one at a time makes: every term's documents, every token's postings and frequencies, every column, every
    /// field's statistics. Random documents over every kind of field (a term twice in a document, text tokens
    /// repeated), in batches of random sizes after documents added the other way.
    @Test(arguments: [4, 5] as [UInt64])
    func batchesJoinTheSegmentAsDocumentsAddedOneByOne(seed: UInt64) throws {
        var mappings = try Mappings(json: Self.mapping)
        var random = SplitMix64(seed: seed)
        var sources: [[UInt8]] = []
        while sources.count < 2_000 {
            let bytes = Array(Self.document(&random).utf8)
            var tree = DocumentIndexer(mappings: mappings, documentID: "d")
            guard let parsed = try? JSON.parse(bytes), (try? tree.index(parsed)) != nil else { continue }
            // Fields new to the mapping are mapped first, as the request before would have.
            if tree.mappingChanged { mappings = tree.mappings }
            sources.append(bytes)
        }
        let indexed = sources.map { source in
            source.withUnsafeBufferPointer { DocumentIndexer(mappings: mappings, documentID: "d").index(source: $0) }
        }
        #expect(indexed.allSatisfy { $0 != nil })
        var oneByOne = SegmentBuilder(base: 100)
        for (number, document) in indexed.enumerated() {
            if let document { oneByOne.add(document, number: 100 + Int64(number)) }
        }
        var joined = SegmentBuilder(base: 100)
        let prefix = 37
        for number in 0..<prefix {
            if let document = indexed[number] { joined.add(document, number: 100 + Int64(number)) }
        }
        var start = prefix
        var batches = 0
        while start < sources.count {
            let size = min(Int.random(in: 1...400, using: &random), sources.count - start)
            var batch = DocumentBatch()
            for offset in 0..<size {
                batch.begin(document: offset)
                let read = sources[start + offset].withUnsafeBufferPointer {
                    DocumentIndexer(mappings: mappings, documentID: "d").index(source: $0, into: &batch)
                }
                #expect(read)
            }
            joined.append(batch, at: 100 + Int64(start))
            start += size
            batches += 1
        }
        #expect(batches > 5)
        #expect(joined.count == oneByOne.count)
        #expect(joined.info == oneByOne.info)
        let expected = Self.describe(oneByOne)
        #expect(expected.count > 500)
        let difference = Self.describe(joined).difference(from: expected)
        #expect(difference.isEmpty, "first differences: \(Array(difference.prefix(6)))")
    }

    /// Everything an in-memory segment holds, as sorted lines of text.
    static func describe(_ segment: SegmentBuilder) -> [String] {
        var lines: [String] = []
        for (path, field) in segment.fields {
            for term in field.terms.terms { lines.append("term \(path) \(term) \(field.documents(term) ?? [])") }
            for token in field.tokens.terms {
                let postings = field.postings(token)
                lines.append("token \(path) \(token) \(postings?.documents ?? []) \(postings?.frequencies ?? [])")
            }
            for (name, column) in [("values", field.column), ("lengths", field.lengths)] {
                guard let column else { continue }
                for doc in 0..<segment.count where !column.values(doc).isEmpty {
                    lines.append("\(name) \(path) \(doc) \(column.values(doc))")
                }
            }
            lines.append("statistics \(path) \(field.statistics)")
        }
        return lines.sorted()
    }

    static let mapping: JSONObject = [
        "properties": [
            "name": ["type": "keyword"],
            "title": ["type": "text", "fields": ["raw": ["type": "keyword"]]],
            "count": ["type": "long"],
            "small": ["type": "integer"],
            "ratio": ["type": "double"],
            "f": ["type": "float"],
            "flag": ["type": "boolean"],
            "at": ["type": "date"],
            "addr": ["type": "ip"],
            "status": ["type": "keyword", "null_value": "none"],
            "short": ["type": "keyword", "ignore_above": 5],
            "loose": ["type": "long", "ignore_malformed": true],
            "hidden": ["type": "keyword", "index": false],
            "blob": ["type": "object", "enabled": false],
            "labels": ["type": "flattened"],
            "bin": ["type": "binary"],
            "host": [
                "properties": [
                    "name": ["type": "keyword"], "ip": ["type": "ip"],
                    "os": ["properties": ["family": ["type": "keyword"]]],
                ]
            ],
        ]
    ]

    static let keys = [
        "name", "title", "count", "small", "ratio", "f", "flag", "at", "addr", "status", "short", "loose", "hidden",
        "blob", "labels", "bin", "host", "host.name", "host.os.family", "host.os", "new", "", "a..b", "title.raw",
        "naïve", "名前",
    ]
    static let hostKeys = ["name", "ip", "os", "os.family", "other"]
    static let strings = [
        "abc", "ÉCOLE Straße", "tab\there", "quote\"d", "42", "-7", "4.5", "1e3", "true", "false", "",
        "2024-01-02T03:04:05Z", "2024-01-02", "10.0.0.1", "::1", "fe80::1%eth0", "not an address", "AbCdEfG",
        "The Quick brown fox", "😀 emoji",
    ]

    /// A JSON text of a random document: members chosen from the mapping's names and others (duplicates and
    /// dotted names included), values of every type, arrays, nulls and objects where they do not belong.
    static func document(_ random: inout SplitMix64) -> String {
        var members: [String] = []
        for _ in 0..<Int.random(in: 0...7, using: &random) {
            let key = keys.randomElement(using: &random)!
            let value = key.hasPrefix("host") && Bool.random(using: &random) ? hostObject(&random) : value(&random, 0)
            members.append(Self.key(key, &random) + space(&random) + ":" + space(&random) + value)
        }
        return space(&random) + "{" + members.joined(separator: "," + space(&random)) + "}" + space(&random)
    }

    /// A key as JSON, sometimes spelled with escapes (the same key either way, so also a duplicate of itself).
    static func key(_ key: String, _ random: inout SplitMix64) -> String {
        guard Int.random(in: 0..<6, using: &random) == 0 else { return JSON.string(key).serialized() }
        return "\"" + key.unicodeScalars.map { String(format: "\\u%04x", $0.value) }.joined() + "\""
    }

    static func hostObject(_ random: inout SplitMix64) -> String {
        var members: [String] = []
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            let key = hostKeys.randomElement(using: &random)!
            let value =
                key == "os" ? "{\"family\":\(value(&random, 2))}" : value(&random, 1)
            members.append(JSON.string(key).serialized() + ":" + value)
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    static func value(_ random: inout SplitMix64, _ depth: Int) -> String {
        switch Int.random(in: 0..<12, using: &random) {
        case 0, 1, 2:
            let text = strings.randomElement(using: &random)!
            // Sometimes with escapes where none are needed: the same string either way.
            return Bool.random(using: &random)
                ? JSON.string(text).serialized()
                : "\""
                    + text.unicodeScalars.map { $0.value > 0xFFFF ? String($0) : String(format: "\\u%04x", $0.value) }
                    .joined() + "\""
        case 3, 4:
            return String([0, 1, -1, 42, 255, 70_000, 3_000_000_000, Int64.max].randomElement(using: &random)!)
        case 5:
            return ["1.5", "-0.0", "2e3", "1E-2", "3.0", "1e400", "123456789012345678901"].randomElement(
                using: &random
            )!
        case 6: return Bool.random(using: &random) ? "true" : "false"
        case 7: return "null"
        case 8, 9:
            guard depth < 3 else { return "null" }
            let count = Int.random(in: 0...3, using: &random)
            return "[" + (0..<count).map { _ in value(&random, depth + 1) }.joined(separator: ",") + "]"
        default:
            guard depth < 3 else { return "1" }
            let count = Int.random(in: 0...2, using: &random)
            let members = (0..<count).map { _ in
                JSON.string(["k", "family", "name"].randomElement(using: &random)!).serialized() + ":"
                    + value(&random, depth + 1)
            }
            return "{" + members.joined(separator: ",") + "}"
        }
    }

    static func space(_ random: inout SplitMix64) -> String {
        [" ", "", "", "\n", "\t "].randomElement(using: &random)!
    }

    /// What a document's indexed form holds, in order, comparable as text.
    static func describe(_ document: IndexedDocument) -> [String] {
        document.terms.map { "term \($0.field.path) \($0.term)" }
            + document.texts.map { "text \($0.field.path) \($0.tokens)" }
            + document.values.map { "value \($0.field.path) \($0.value)" }
    }
}
