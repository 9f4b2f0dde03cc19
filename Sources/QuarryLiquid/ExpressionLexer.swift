import QuarryCore

/// One token of the markup inside `{{ … }}` or `{% … %}`.
enum MarkupToken: Equatable, Sendable {
    case identifier(String)
    case string(String)
    case integer(Int64)
    case float(Double)
    case dot
    case dotDot
    case openBracket
    case closeBracket
    case openParenthesis
    case closeParenthesis
    case pipe
    case colon
    case comma
    case equals
    /// `==`, `!=`, `<>`, `<`, `>`, `<=`, `>=`.
    case comparison(String)
    case end

    var displayText: String {
        switch self {
        case .identifier(let name): return name
        case .string(let value): return "'\(value)'"
        case .integer(let value): return String(value)
        case .float(let value): return JSON.rubyFloatText(value)
        case .dot: return "."
        case .dotDot: return ".."
        case .openBracket: return "["
        case .closeBracket: return "]"
        case .openParenthesis: return "("
        case .closeParenthesis: return ")"
        case .pipe: return "|"
        case .colon: return ":"
        case .comma: return ","
        case .equals: return "="
        case .comparison(let op): return op
        case .end: return "end of markup"
        }
    }
}

/// Splits markup into tokens following Shopify Liquid's strict lexer: identifiers are `[A-Za-z_][\w-]*\??`,
/// strings are single- or double-quoted with no escapes, numbers may be negative and have a fraction.
struct MarkupLexer {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ markup: String) {
        bytes = Array(markup.utf8)
    }

    static func tokenize(_ markup: String) throws(LiquidError) -> [MarkupToken] {
        var lexer = MarkupLexer(markup)
        var tokens: [MarkupToken] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token == .end { return tokens }
        }
    }

    private static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F || byte >= 0x80
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    private static func isIdentifierPart(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || isDigit(byte) || byte == 0x2D
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C || byte == 0x0B
    }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        offset + ahead < bytes.count ? bytes[offset + ahead] : nil
    }

    mutating func next() throws(LiquidError) -> MarkupToken {
        while let byte = peek(), Self.isWhitespace(byte) { offset += 1 }
        guard let byte = peek() else { return .end }
        switch byte {
        case UInt8(ascii: "."):
            if peek(1) == UInt8(ascii: ".") {
                offset += 2
                return .dotDot
            }
            offset += 1
            return .dot
        case UInt8(ascii: "["):
            offset += 1
            return .openBracket
        case UInt8(ascii: "]"):
            offset += 1
            return .closeBracket
        case UInt8(ascii: "("):
            offset += 1
            return .openParenthesis
        case UInt8(ascii: ")"):
            offset += 1
            return .closeParenthesis
        case UInt8(ascii: "|"):
            offset += 1
            return .pipe
        case UInt8(ascii: ":"):
            offset += 1
            return .colon
        case UInt8(ascii: ","):
            offset += 1
            return .comma
        case UInt8(ascii: "="):
            if peek(1) == UInt8(ascii: "=") {
                offset += 2
                return .comparison("==")
            }
            offset += 1
            return .equals
        case UInt8(ascii: "!"):
            guard peek(1) == UInt8(ascii: "=") else { throw unexpected(byte) }
            offset += 2
            return .comparison("!=")
        case UInt8(ascii: "<"):
            if peek(1) == UInt8(ascii: "=") {
                offset += 2
                return .comparison("<=")
            }
            if peek(1) == UInt8(ascii: ">") {
                offset += 2
                return .comparison("<>")
            }
            offset += 1
            return .comparison("<")
        case UInt8(ascii: ">"):
            if peek(1) == UInt8(ascii: "=") {
                offset += 2
                return .comparison(">=")
            }
            offset += 1
            return .comparison(">")
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            let start = offset + 1
            var end = start
            while end < bytes.count && bytes[end] != byte { end += 1 }
            guard end < bytes.count else {
                throw LiquidError(
                    .syntax,
                    "unterminated string literal in \"\(String(decoding: bytes, as: UTF8.self))\""
                )
            }
            offset = end + 1
            return .string(String(decoding: bytes[start..<end], as: UTF8.self))
        case UInt8(ascii: "-"):
            guard let next = peek(1), Self.isDigit(next) else { throw unexpected(byte) }
            return try number()
        default:
            if Self.isDigit(byte) { return try number() }
            if Self.isIdentifierStart(byte) {
                let start = offset
                offset += 1
                while let next = peek(), Self.isIdentifierPart(next) { offset += 1 }
                if peek() == UInt8(ascii: "?") { offset += 1 }
                return .identifier(String(decoding: bytes[start..<offset], as: UTF8.self))
            }
            throw unexpected(byte)
        }
    }

    private mutating func number() throws(LiquidError) -> MarkupToken {
        let start = offset
        if peek() == UInt8(ascii: "-") { offset += 1 }
        while let byte = peek(), Self.isDigit(byte) { offset += 1 }
        var isFloat = false
        if peek() == UInt8(ascii: "."), let next = peek(1), Self.isDigit(next) {
            isFloat = true
            offset += 1
            while let byte = peek(), Self.isDigit(byte) { offset += 1 }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        // A number directly followed by identifier characters (`123abc`) is not a number.
        if let byte = peek(), Self.isIdentifierStart(byte) {
            throw LiquidError(.syntax, "unexpected \"\(text)\(Character(Unicode.Scalar(byte)))\"")
        }
        if isFloat { return .float(Double(text) ?? 0) }
        if let value = Int64(text) { return .integer(value) }
        return .float(Double(text) ?? 0)
    }

    private func unexpected(_ byte: UInt8) -> LiquidError {
        let markup = String(decoding: bytes, as: UTF8.self)
        return LiquidError(.syntax, "unexpected character '\(Character(Unicode.Scalar(byte)))' in \"\(markup)\"")
    }
}
