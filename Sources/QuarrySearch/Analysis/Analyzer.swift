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
                // `,` joins only digits (1,000); the others join letters and digits alike.
                let previous = current[current.index(before: current.endIndex)]
                let bothDigits = previous.properties.numericType != nil && scalars[i + 1].properties.numericType != nil
                if scalar != "," || bothDigits {
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
