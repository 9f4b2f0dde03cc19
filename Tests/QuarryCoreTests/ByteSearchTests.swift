import QuarryCore
import Testing

/// `firstIndex(of:from:)` against the standard library's byte-at-a-time search, on random arrays and every start.
@Test func byteSearchFindsWhatALinearScanFinds() {
    var random = SystemRandomNumberGenerator()
    for length in [0, 1, 2, 7, 16, 31, 64, 200] {
        for _ in 0..<20 {
            // A small alphabet, so the byte sought is sometimes absent, sometimes everywhere.
            let alphabet = UInt8.random(in: 1...4, using: &random)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0..<alphabet, using: &random) + 9 }
            for start in 0...(length + 2) {
                let expected = start < length ? bytes[start...].firstIndex(of: 0x0A) : nil
                #expect(bytes.firstIndex(of: 0x0A, from: start) == expected, "\(bytes) from \(start)")
            }
        }
    }
}
