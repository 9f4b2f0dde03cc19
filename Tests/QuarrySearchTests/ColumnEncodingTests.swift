import QuarryCore
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Doc-value columns as the segments file keeps them: counts per document instead of offsets (a bitmap for
/// single-valued fields), every kind round-tripping, and columns written before that still decoding.
@Suite(.mayBlock)
struct ColumnEncodingTests {
    @Test func randomColumnsOfEveryKindRoundTrip() throws {
        var random = SystemRandomNumberGenerator()
        for trial in 0..<400 {
            let kind = Column.Kind(rawValue: UInt8(trial % 4))!
            var column = Column(kind: kind)
            let documents = Int.random(in: 0...700, using: &random)
            // Single-valued, sparse or multi-valued, with now and then a document of 300 values (the overflow).
            let most = trial % 3 == 0 ? 1 : 3
            for doc in 0..<documents {
                var count = Int.random(in: 0...most, using: &random)
                if trial % 7 == 0 && doc == documents / 2 { count = 300 }
                for value in 0..<count {
                    switch kind {
                    case .int: column.append(doc: doc, int: Int64(doc * 31 + value) - 5_000)
                    case .double: column.append(doc: doc, double: Double(doc) / 3 + Double(value))
                    case .string: column.append(doc: doc, string: "v\(doc % 17)-\(value)")
                    case .ip: column.append(doc: doc, ip: IPAddress("10.0.\(doc % 250).\(value % 250)")!)
                    }
                }
            }
            column.pad(to: documents)
            let decoded = try #require(Column(decoding: column.encoded()), "trial \(trial)")
            #expect(decoded.documentCount == column.documentCount)
            for doc in 0..<documents where decoded.values(doc) != column.values(doc) {
                Issue.record("trial \(trial), document \(doc): \(decoded.values(doc)) != \(column.values(doc))")
                break
            }
        }
    }

    @Test func singleValuedColumnsTakeABitADocument() {
        var column = Column(kind: .int)
        for doc in stride(from: 0, to: 8_000, by: 2) { column.append(doc: doc, int: Int64(doc)) }
        column.pad(to: 8_000)
        // 9 bytes of header, the mode, 1,000 bytes of bitmap, then the width, the base and 4,000 distances of 2 bytes.
        #expect(column.encoded().count == 9 + 1 + 1_000 + 1 + 8 + 8_000)
    }

    @Test func integersPackToTheirSpanAndAddressesToFourBytesWhenAllAreIPv4() throws {
        for values: [Int64] in [[7], [-3, 250], [1_796_000_000_000, 1_796_086_400_000], [.min, .max, 0], [5, 5, 5]] {
            var column = Column(kind: .int)
            for (doc, value) in values.enumerated() { column.append(doc: doc, int: value) }
            let decoded = try #require(Column(decoding: column.encoded()))
            #expect((0..<values.count).map { decoded.values($0) } == values.map { [.int($0)] })
        }
        var v4 = Column(kind: .ip)
        var mixed = Column(kind: .ip)
        for doc in 0..<100 {
            v4.append(doc: doc, ip: IPAddress("192.0.2.\(doc)")!)
            mixed.append(doc: doc, ip: IPAddress(doc == 50 ? "2001:db8::1" : "198.51.100.\(doc)")!)
        }
        #expect(v4.encoded().count < mixed.encoded().count / 3)
        for column in [v4, mixed] {
            let decoded = try #require(Column(decoding: column.encoded()))
            #expect((0..<100).allSatisfy { decoded.values($0) == column.values($0) })
        }
    }

    @Test func columnsWrittenWithOffsetsStillDecode() throws {
        // kind int, 3 documents, 2 values, offsets [0, 1, 1, 2], values 5 and 7: the layout before counts.
        var bytes: [UInt8] = [0]
        bytes.appendLE(UInt32(3))
        bytes.appendLE(UInt32(2))
        for offset: UInt32 in [0, 1, 1, 2] { bytes.appendLE(offset) }
        bytes.appendLE(Int64(5))
        bytes.appendLE(Int64(7))
        let column = try #require(Column(decoding: bytes))
        #expect(column.values(0) == [.int(5)])
        #expect(column.values(1) == [])
        #expect(column.values(2) == [.int(7)])
        // Counts without packed values (the layout of the first compact columns) decode too.
        var counted: [UInt8] = [0x80]
        counted.appendLE(UInt32(2))
        counted.appendLE(UInt32(1))
        counted += [0, 0b01]
        counted.appendLE(Int64(9))
        let earlier = try #require(Column(decoding: counted))
        #expect(earlier.values(0) == [.int(9)] && earlier.values(1) == [])
        // Damaged blobs are refused, not misread.
        #expect(Column(decoding: Array(column.encoded().dropLast(3))) == nil)
    }
}
