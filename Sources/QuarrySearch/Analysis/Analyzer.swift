/// A text analyzer: how `text` values and `match` query strings become tokens.
///
/// `standard` follows the Unicode word-boundary rules (UAX #29) closely enough for logs and network data: letters,
/// digits and connectors form words; `.` `'` `:` between letters or digits keep a word together (`example.com`,
/// `can't`, `10.0.0.1`); each ideograph is its own token; everything is lowercased. It is hand-written because no
/// package in the set segments words on Linux without Foundation's slow bridging.
public enum Analyzer: String, Sendable, Hashable {
    case standard, simple, whitespace, keyword, stop

    /// The analyzers a mapping may name; language analyzers fall back to `standard`.
    static func named(_ name: String) -> Analyzer? {
        if let analyzer = Analyzer(rawValue: name) { return analyzer }
        let languages: Set<String> = [
            "english", "french", "german", "spanish", "italian", "dutch", "portuguese", "russian", "arabic",
            "cjk", "fingerprint", "pattern",
        ]
        return languages.contains(name) ? .standard : nil
    }

    /// The tokens of `text`, in order.
    public func tokens(_ text: String) -> [String] {
        switch self {
        case .keyword: return [text]
        case .whitespace:
            return text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        case .simple:
            return text.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        case .standard, .stop:
            let words = Self.standardTokens(text)
            return self == .stop ? words.filter { !Self.englishStopWords.contains($0) } : words
        }
    }

    static let englishStopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
        "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
        "will", "with",
    ]

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let v = scalar.value
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        let properties = scalar.properties
        if properties.isIdeographic { return false }
        return properties.isAlphabetic || properties.numericType != nil
            || properties.generalCategory == .nonspacingMark || properties.generalCategory == .spacingMark
    }

    private static func isMidWord(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "." || scalar == "'" || scalar == ":" || scalar == "\u{2019}" || scalar == ","
    }

    static func standardTokens(_ text: String) -> [String] {
        var text = text
        if let tokens = text.withUTF8({ asciiStandardTokens($0) }) { return tokens }
        return unicodeStandardTokens(text)
    }

    /// ASCII class of each byte: 1 letter, 2 digit, 3 underscore, 0 other.
    private static let asciiClass: [UInt8] = (0..<128).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): 1
        case UInt8(ascii: "0")...UInt8(ascii: "9"): 2
        case UInt8(ascii: "_"): 3
        default: 0
        }
    }

    /// The fast path for pure-ASCII text (almost all network data); `nil` when a byte is not ASCII.
    private static func asciiStandardTokens(_ bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        var tokens: [String] = []
        var start = -1
        var i = 0
        let n = bytes.count
        func emit(_ end: Int) {
            let length = end - start
            tokens.append(
                String(unsafeUninitializedCapacity: length) { buffer in
                    for k in 0..<length {
                        let byte = bytes[start + k]
                        buffer[k] = byte >= 65 && byte <= 90 ? byte + 32 : byte
                    }
                    return length
                }
            )
            start = -1
        }
        while i < n {
            let byte = bytes[i]
            guard byte < 0x80 else { return nil }
            let kind = asciiClass[Int(byte)]
            if kind != 0 {
                if start < 0 { start = i }
            } else if start >= 0 {
                // `.` and `'` join letters and digits, `:` letters, `,` digits (UAX #29's MidNumLet, MidLetter,
                // MidNum).
                let previous = asciiClass[Int(bytes[i - 1])]
                let next = i + 1 < n && bytes[i + 1] < 0x80 ? asciiClass[Int(bytes[i + 1])] : 0
                let joins: Bool
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "'"): joins = next != 0
                case UInt8(ascii: ":"): joins = previous == 1 && next == 1
                case UInt8(ascii: ","): joins = previous == 2 && next == 2
                default: joins = false
                }
                if !joins { emit(i) }
            }
            i += 1
        }
        if start >= 0 { emit(n) }
        return tokens
    }

    static func unicodeStandardTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = String.UnicodeScalarView()
        let scalars = Array(text.unicodeScalars)
        var i = 0
        func flush() {
            if !current.isEmpty {
                tokens.append(String(current).lowercased())
                current = String.UnicodeScalarView()
            }
        }
        while i < scalars.count {
            let scalar = scalars[i]
            if isWordScalar(scalar) {
                current.append(scalar)
            } else if scalar.properties.isIdeographic {
                flush()
                tokens.append(String(scalar))
            } else if isMidWord(scalar), !current.isEmpty, i + 1 < scalars.count, isWordScalar(scalars[i + 1]) {
                // `,` joins only digits (1,000), `:` only letters; `.` and `'` join both.
                let previous = current[current.index(before: current.endIndex)]
                let bothDigits = previous.properties.numericType != nil && scalars[i + 1].properties.numericType != nil
                let bothLetters = previous.properties.isAlphabetic && scalars[i + 1].properties.isAlphabetic
                if (scalar == "," && bothDigits) || (scalar == ":" && bothLetters) || (scalar != "," && scalar != ":") {
                    current.append(scalar)
                } else {
                    flush()
                }
            } else {
                flush()
            }
            i += 1
        }
        flush()
        return tokens
    }
}
