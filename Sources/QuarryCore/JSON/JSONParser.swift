#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Malformed JSON, with the 1-based line and column of the offending byte as Elasticsearch (Jackson) reports them.
public struct JSONParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var line: Int
    public var column: Int
    public var offset: Int
    public var reason: String

    /// `[line:column] reason`, the shape of ES's `x_content_parse_exception` reasons.
    public var description: String { "[\(line):\(column)] \(reason)" }
}

extension JSON {
    /// Limits that protect the parser from hostile input.
    public static let maximumNestingDepth = 1_000

    /// Parses one JSON text; anything but white space after the value is an error.
    /// - Throws: ``JSONParseError`` naming the position of the first problem.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        var text = text
        let result = text.withUTF8 { bytes in Result { () throws(JSONParseError) -> JSON in try parse(bytes) } }
        return try result.get()
    }

    /// Parses one JSON text from UTF-8 bytes.
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSON {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSON in try parse(buffer) }
        }
        if let result { return try result.get() }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(JSONParseError) in try parse(buffer) }
    }

    /// Parses one JSON text from a buffer of UTF-8 bytes.
    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSON {
        var parser = JSONParser(buffer)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < buffer.count {
            throw parser.error(
                "Unexpected character (\(parser.describe(buffer[parser.index]))): expected end-of-input"
            )
        }
        return value
    }
}

/// A byte-level recursive-descent JSON parser. Hand-written because Foundation's `JSONSerialization` loses the
/// integer/double distinction and key order that Elasticsearch semantics need, and is several times slower. The store's
/// indexer also reads documents with it token by token, without building a tree.
package struct JSONParser {
    package let bytes: UnsafeBufferPointer<UInt8>
    package var index = 0
    /// Members and elements of the containers being parsed, as a stack: each container is copied out once, at its
    /// exact size, instead of growing its own array.
    private var memberStack: [JSONObject.Member] = []
    private var elementStack: [JSON] = []

    package init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    func error(_ reason: String, at position: Int? = nil) -> JSONParseError {
        let position = min(position ?? index, bytes.count)
        var line = 1
        var lineStart = 0
        var i = 0
        while i < position {
            if bytes[i] == UInt8(ascii: "\n") {
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        return JSONParseError(line: line, column: position - lineStart + 1, offset: position, reason: reason)
    }

    func describe(_ byte: UInt8) -> String {
        if byte >= 0x20 && byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))' (code \(byte))"
        }
        return "CTRL-CHAR, code \(byte)"
    }

    package mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    package mutating func parseValue(depth: Int) throws(JSONParseError) -> JSON {
        guard index < bytes.count else { throw error("Unexpected end-of-input: expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < JSON.maximumNestingDepth else {
                throw error("The nesting depth exceeds the maximum allowed (\(JSON.maximumNestingDepth))")
            }
            return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < JSON.maximumNestingDepth else {
                throw error("The nesting depth exceeds the maximum allowed (\(JSON.maximumNestingDepth))")
            }
            return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        case let byte:
            throw error("Unexpected character (\(describe(byte))): expected a value")
        }
    }

    package mutating func expectLiteral(_ literal: String) throws(JSONParseError) {
        let start = index
        for expected in literal.utf8 {
            guard index < bytes.count, bytes[index] == expected else {
                var end = start
                while end < bytes.count, bytes[end] >= UInt8(ascii: "a") && bytes[end] <= UInt8(ascii: "z") {
                    end += 1
                }
                let token = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                throw error(
                    "Unrecognized token '\(token)': was expecting (JSON String, Number, Array, Object or token "
                        + "'null', 'true' or 'false')",
                    at: start
                )
            }
            index += 1
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSON {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(JSONObject())
        }
        let start = memberStack.count
        defer { memberStack.removeSubrange(start...) }
        var seen: Set<String>?
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw error("Unexpected end-of-input: expected close marker for OBJECT") }
            guard bytes[index] == UInt8(ascii: "\"") else {
                throw error(
                    "Unexpected character (\(describe(bytes[index]))): was expecting double-quote to start field name"
                )
            }
            let keyStart = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                if index >= bytes.count { throw error("Unexpected end-of-input: expected a colon") }
                throw error(
                    "Unexpected character (\(describe(bytes[index]))): was expecting a colon to separate field name "
                        + "and value"
                )
            }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            let count = memberStack.count - start
            let duplicate: Bool
            if count < 16 {
                duplicate = memberStack[start...].contains { $0.key == key }
            } else {
                if seen == nil { seen = Set(memberStack[start...].map(\.key)) }
                duplicate = !seen!.insert(key).inserted
            }
            if duplicate { throw error("Duplicate field '\(key)'", at: keyStart) }
            memberStack.append((key, value))
            skipWhitespace()
            guard index < bytes.count else { throw error("Unexpected end-of-input: expected close marker for OBJECT") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                return .object(JSONObject(uniqueMembers: Array(memberStack[start...])))
            case let byte:
                throw error("Unexpected character (\(describe(byte))): was expecting comma to separate Object entries")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSON {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array([])
        }
        let start = elementStack.count
        defer { elementStack.removeSubrange(start...) }
        while true {
            skipWhitespace()
            elementStack.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else { throw error("Unexpected end-of-input: expected close marker for ARRAY") }
            switch bytes[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                return .array(Array(elementStack[start...]))
            case let byte:
                throw error("Unexpected character (\(describe(byte))): was expecting comma to separate Array entries")
            }
        }
    }

    package mutating func parseString() throws(JSONParseError) -> String {
        index += 1
        let start = index
        var isASCII = true
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
                let string = try isASCII ? String(decoding: raw, as: UTF8.self) : validated(raw, at: start)
                index += 1
                return string
            }
            if byte >= 0x80 { isASCII = false }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 {
                throw error(
                    "Illegal unquoted character (\(describe(byte))): has to be escaped using backslash to be "
                        + "included in string value"
                )
            }
            index += 1
        }
        var scalars = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return try scalars.withUnsafeBufferPointer { raw throws(JSONParseError) in
                    try validated(raw, at: start)
                }
            }
            if byte < 0x20 {
                throw error(
                    "Illegal unquoted character (\(describe(byte))): has to be escaped using backslash to be "
                        + "included in string value"
                )
            }
            if byte != UInt8(ascii: "\\") {
                scalars.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): scalars.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): scalars.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                {
                    index += 2
                    let low = try parseHex4()
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        appendScalar(0xFFFD, to: &scalars)
                        code = low
                    }
                }
                appendScalar(code, to: &scalars)
            default:
                throw error("Unrecognized character escape \(describe(escape))", at: index - 1)
            }
        }
        throw error("Unexpected end-of-input: was expecting closing quote for a string value")
    }

    /// The string of `raw`, which must be valid UTF-8: invalid bytes are an error, as in Elasticsearch's parser,
    /// not replaced characters that would change the value silently.
    func validated(_ raw: UnsafeBufferPointer<UInt8>, at start: Int) throws(JSONParseError) -> String {
        guard let string = String(validating: raw, as: UTF8.self) else {
            throw error("Invalid UTF-8 in a string value", at: start)
        }
        return string
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("Unexpected end-of-input in character escape sequence") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default:
                throw error("Unexpected character (\(describe(byte))): expected a hex-digit for character escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    func appendScalar(_ code: UInt32, to scalars: inout [UInt8]) {
        let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
        scalars.append(contentsOf: UTF8.encode(scalar)!)
    }

    mutating func parseNumber() throws(JSONParseError) -> JSON {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else {
            throw error("Unexpected character: expected digit after minus sign")
        }
        if bytes[index] == UInt8(ascii: "0"), index + 1 < bytes.count, bytes[index + 1] >= UInt8(ascii: "0"),
            bytes[index + 1] <= UInt8(ascii: "9")
        {
            throw error("Invalid numeric value: Leading zeroes not allowed")
        }
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            let digits = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            if index == digits { throw error("Unexpected character: Decimal point not followed by a digit") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                index += 1
            }
            let digits = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                index += 1
            }
            if index == digits { throw error("Unexpected character: Exponent indicator not followed by a digit") }
        }
        if isInteger, index - start <= 18 {
            var value: Int64 = 0
            var i = start
            let negative = bytes[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            while i < index {
                value = value * 10 + Int64(bytes[i] - UInt8(ascii: "0"))
                i += 1
            }
            return .int(negative ? -value : value)
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let value = Int64(text) { return .int(value) }
        return .double(Double(text) ?? .nan)
    }
}
