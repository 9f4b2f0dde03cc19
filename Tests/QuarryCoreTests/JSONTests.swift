import QuarryCore
import Testing

struct JSONTests {
    @Test func parsesNestedValuesKeepingOrderAndIntegerness() throws {
        let json = try JSON.parse(#"{"b": 1, "a": [true, null, 2.5, "x\u00e9\n"], "c": {"d": -9223372036854775808}}"#)
        #expect(json.objectValue?.keys == ["b", "a", "c"])
        #expect(json["b"] == .int(1))
        #expect(json["a"] == [true, nil, 2.5, "xé\n"])
        #expect(json["c"]?["d"] == .int(Int64.min))
    }

    @Test func serializesCompactlyWithEscapes() throws {
        let json: JSON = ["s": "a\"b\\c\u{01}", "n": 1.0, "i": 3, "e": [:], "l": []]
        #expect(json.serialized() == #"{"s":"a\"b\\c\u0001","n":1.0,"i":3,"e":{},"l":[]}"#)
    }

    @Test func prettyPrintsLikeElasticsearch() {
        let json: JSON = ["a": [1, 2]]
        #expect(json.serialized(pretty: true) == "{\n  \"a\" : [\n    1,\n    2\n  ]\n}")
    }

    @Test(arguments: [
        (#"{"a": }"#, 1, 7),
        ("{\n  \"a\": tru }", 2, 8),
        (#"{"a": 1,}"#, 1, 9),
        (#"[1 2]"#, 1, 4),
        (#"{"a": "unterminated"#, 1, 20),
        (#"{"a": 01}"#, 1, 7),
    ])
    func reportsLineAndColumnOfMalformedInput(text: String, line: Int, column: Int) {
        #expect {
            try JSON.parse(text)
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.line == line && error.column == column
        }
    }

    @Test func rejectsDuplicateKeysAndTrailingGarbage() {
        #expect(throws: JSONParseError.self) { try JSON.parse(#"{"a": 1, "a": 2}"#) }
        #expect(throws: JSONParseError.self) { try JSON.parse("{} x") }
    }

    @Test func limitsNestingDepth() {
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: Never.self) { try JSON.parse(fine) }
    }

    @Test func followsDottedPathsThroughObjectsAndArrays() throws {
        let json = try JSON.parse(#"{"hits":{"total":{"value":3},"hits":[{"_id":"a"},{"_id":"b"}]}}"#)
        #expect(json.value(atPath: "hits.total.value") == 3)
        #expect(json.value(atPath: "hits.hits.1._id") == "b")
        #expect(json.value(atPath: "hits.hits.2._id") == nil)
        #expect(json.value(atPath: "hits.missing") == nil)
    }

    @Test func decodesSurrogatePairs() throws {
        #expect(try JSON.parse(#""\ud83d\ude00""#) == "😀")
    }

    @Test func roundTripsLargeObjectsThroughTheHashIndex() throws {
        var object = JSONObject()
        for i in 0..<100 { object["k\(i)"] = .int(Int64(i)) }
        object["k50"] = nil
        #expect(object.count == 99)
        #expect(object["k99"] == .int(99))
        #expect(object["k50"] == nil)
        let parsed = try JSON.parse(JSON.object(object).serialized())
        #expect(parsed == .object(object))
    }
}

/// Malformed input of every kind is an error, never a trap: mutations of valid JSON and random bytes.
struct JSONRobustnessTests {
    @Test func mutatedAndRandomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let seed = Array(#"{"a":[1,2.5e3,-0,"x\"y\u00e9",true,null,{"b":{"c":[]}}],"d":"\ud83d\ude00"}"#.utf8)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes = seed
            if round % 4 == 0 {
                bytes = (0..<Int.random(in: 0..<64, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let position = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[position] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.remove(at: position)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                    }
                    if bytes.isEmpty { break }
                }
            }
            if (try? JSON.parse(bytes)) != nil { parsed += 1 }
        }
        #expect(parsed < 20_000, "most mutations are invalid and were reported as errors")
    }
}
