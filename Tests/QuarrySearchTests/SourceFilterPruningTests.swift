import Foundation
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

@testable import QuarrySearch

/// `_source` filtering over a source parsed pruned (`JSON.parse(_:choosing:)` with the filter's `choice`) against
/// the same filter over the whole parsed source: the answers must be the same, member for member and in order.
@Suite(.mayBlock) struct SourceFilterPruningTests {
    static let keys = ["a", "b", "c", "ip", "name"]
    static let patterns = [
        "a", "b", "c", "a.b", "a.b.c", "b.a", "c.ip", "a.name", "*", "a.*", "*.ip", "b*", "?", "a.?", "*.b.*", "nope",
    ]

    static func randomValue(depth: Int, using random: inout some RandomNumberGenerator) -> JSON {
        switch Int.random(in: 0..<(depth < 4 ? 7 : 4), using: &random) {
        case 0: return .string(["x", "y\\\"z", "ünï", ""].randomElement(using: &random)!)
        case 1: return .int(Int64.random(in: -1_000...1_000, using: &random))
        case 2: return [.null, .bool(true), .bool(false), .double(1.5e3)].randomElement(using: &random)!
        case 3: return .array([])
        case 4, 5:
            var object = JSONObject()
            for key in keys.shuffled(using: &random).prefix(Int.random(in: 0...4, using: &random)) {
                object[key] = randomValue(depth: depth + 1, using: &random)
            }
            return .object(object)
        default:
            return .array(
                (0..<Int.random(in: 0...3, using: &random)).map { _ in randomValue(depth: depth + 1, using: &random) }
            )
        }
    }

    @Test func prunedSourcesFilterAsWholeOnes() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            var document = JSONObject()
            for key in Self.keys.shuffled(using: &random).prefix(Int.random(in: 1...5, using: &random)) {
                document[key] = Self.randomValue(depth: 1, using: &random)
            }
            let bytes = JSON.object(document).serializedBytes(pretty: Bool.random(using: &random))
            let filter = SourceFilter(
                includes: Array(Self.patterns.shuffled(using: &random).prefix(Int.random(in: 0...3, using: &random))),
                excludes: Array(Self.patterns.shuffled(using: &random).prefix(Int.random(in: 0...2, using: &random)))
            ).compiled()
            let whole = filter.apply(try JSON.parse(bytes))
            let pruned = filter.apply(try JSON.parse(bytes, choosing: filter.choice))
            #expect(
                pruned.serialized() == whole.serialized(),
                "\(String(decoding: bytes, as: UTF8.self)) with \(filter)"
            )
        }
    }

    @Test func theHuntsFieldsOfPacketbeatDocuments() throws {
        let filter = SourceFilter(includes: ["client.ip", "source.ip", "host.name"]).compiled()
        var generator = DNSDocumentGenerator(configuration: .init(documents: 500, end: 1_796_000_000_000, seed: 5))
        while let document = generator.next() {
            let bytes = document.serializedBytes()
            let pruned = filter.apply(try JSON.parse(bytes, choosing: filter.choice))
            #expect(pruned.serialized() == filter.apply(document).serialized())
            #expect(pruned["host"]?["name"]?.stringValue != nil)
        }
    }

    @Test func damagedSourcesAreErrorsNotCrashes() throws {
        let filter = SourceFilter(includes: ["a.b"], excludes: ["c"]).compiled()
        let text = #"{"a": {"b": [1, {"x": "y\"z"}], "q": [true, null, -1.5e-3]}, "c": {"d": "e"}, "f": "g"}"#
        let bytes = Array(text.utf8)
        #expect(
            try filter.apply(JSON.parse(bytes, choosing: filter.choice)).serialized()
                == #"{"a":{"b":[1,{"x":"y\"z"}]}}"#
        )
        // Every prefix of the document is cut short somewhere: an error, whichever member it is cut in.
        for end in 0..<bytes.count {
            #expect(throws: JSONParseError.self) { try JSON.parse(bytes[0..<end], choosing: filter.choice) }
        }
        for damaged in [#"{"c": {"d" "e"}}"#, #"{"c": [1 2]}"#, #"{"c": tru}"#, #"{"a": {"b": 1,}}"#, #"{"c": 1} x"#] {
            #expect(throws: JSONParseError.self, "\(damaged)") {
                try JSON.parse(Array(damaged.utf8), choosing: filter.choice)
            }
        }
    }
}
