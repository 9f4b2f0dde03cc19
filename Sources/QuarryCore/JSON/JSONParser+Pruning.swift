/// What a pruned parse (``JSON/parse(_:choosing:)``) does with an object member, given its dotted path.
public enum JSONMemberChoice: Sendable {
    /// The member, whole.
    case keep
    /// The members below it chosen by the same rule (in an object, or in the objects of an array); a scalar is
    /// dropped.
    case descend
    /// Nothing of it: its value is skipped without being built.
    case drop
}

extension JSON {
    /// Parses a JSON object keeping only the members `choose` asks for, by their dotted paths (`client.ip`).
    ///
    /// For `_source` filtering: a search hit that returns 3 of a document's 40 fields would otherwise build every
    /// string, number and object of the document only to throw most of them away. Skipped values are scanned for
    /// their end, not checked as strictly as a whole parse checks them (the stored source was checked when it
    /// was indexed).
    public static func parse(
        _ bytes: some Collection<UInt8>,
        choosing choose: (String) -> JSONMemberChoice
    ) throws(JSONParseError) -> JSON {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSON in
                var parser = JSONParser(buffer)
                parser.skipWhitespace()
                let value = try parser.parsePruned(depth: 0, prefix: "", choose: choose) ?? .object(JSONObject())
                parser.skipWhitespace()
                if parser.index < buffer.count {
                    throw parser.error(
                        "Unexpected character (\(parser.describe(buffer[parser.index]))): expected end-of-input"
                    )
                }
                return value
            }
        }
        if let result { return try result.get() }
        return try parse(Array(bytes), choosing: choose)
    }
}

extension JSONParser {
    /// The value at `prefix` as a ``JSONMemberChoice/descend`` member: an object with the chosen members, an array
    /// of such objects and arrays, or nil for a scalar (skipped).
    mutating func parsePruned(
        depth: Int,
        prefix: String,
        choose: (String) -> JSONMemberChoice
    ) throws(JSONParseError) -> JSON? {
        guard index < bytes.count else { throw error("Unexpected end-of-input: expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            guard depth < JSON.maximumNestingDepth else {
                throw error("The nesting depth exceeds the maximum allowed (\(JSON.maximumNestingDepth))")
            }
            index += 1
            var members: [JSONObject.Member] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(JSONObject())
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("Unexpected end of an object: was expecting double-quote to start field name")
                }
                let keyStart = index
                let key = try parseString()
                try expectColon()
                let path = prefix.isEmpty ? key : prefix + "." + key
                let value: JSON?
                switch choose(path) {
                case .keep: value = try parseValue(depth: depth + 1)
                case .descend: value = try parsePruned(depth: depth + 1, prefix: path, choose: choose)
                case .drop:
                    try skipValue(depth: depth + 1)
                    value = nil
                }
                if let value {
                    if members.contains(where: { $0.key == key }) {
                        throw error("Duplicate field '\(key)'", at: keyStart)
                    }
                    members.append((key, value))
                }
                if try endOfContainer(UInt8(ascii: "}")) { return .object(JSONObject(uniqueMembers: members)) }
            }
        case UInt8(ascii: "["):
            guard depth < JSON.maximumNestingDepth else {
                throw error("The nesting depth exceeds the maximum allowed (\(JSON.maximumNestingDepth))")
            }
            index += 1
            var elements: [JSON] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array([])
            }
            while true {
                skipWhitespace()
                if let element = try parsePruned(depth: depth + 1, prefix: prefix, choose: choose) {
                    elements.append(element)
                }
                if try endOfContainer(UInt8(ascii: "]")) { return .array(elements) }
            }
        default:
            try skipValue(depth: depth)
            return nil
        }
    }

    /// Moves past the value that starts here, building nothing.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        skipWhitespace()
        guard index < bytes.count else { throw error("Unexpected end-of-input: expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < JSON.maximumNestingDepth else {
                throw error("The nesting depth exceeds the maximum allowed (\(JSON.maximumNestingDepth))")
            }
            let close = bytes[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == close {
                index += 1
                return
            }
            while true {
                skipWhitespace()
                if close == UInt8(ascii: "}") {
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                        throw error("Unexpected end of an object: was expecting double-quote to start field name")
                    }
                    try skipString()
                    try expectColon()
                }
                try skipValue(depth: depth + 1)
                if try endOfContainer(close) { return }
            }
        case UInt8(ascii: "\""):
            try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"),
                    UInt8(ascii: "+"), UInt8(ascii: "-"):
                    index += 1
                default: return
                }
            }
        case let byte:
            throw error("Unexpected character (\(describe(byte))): expected a value")
        }
    }

    /// Moves past a string (escapes are stepped over, not decoded).
    private mutating func skipString() throws(JSONParseError) {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return
            case UInt8(ascii: "\\"): index += 2
            default: index += 1
            }
        }
        throw error("Unexpected end-of-input: was expecting closing quote for a string value")
    }

    private mutating func expectColon() throws(JSONParseError) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
            throw error("Unexpected end of an object member: was expecting a colon")
        }
        index += 1
        skipWhitespace()
    }

    /// After a member or element: true at the container's `close` (moved past it), false after a comma.
    private mutating func endOfContainer(_ close: UInt8) throws(JSONParseError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw error("Unexpected end-of-input: expected close marker") }
        switch bytes[index] {
        case UInt8(ascii: ","):
            index += 1
            return false
        case close:
            index += 1
            return true
        case let byte:
            throw error("Unexpected character (\(describe(byte))): was expecting a comma or a close marker")
        }
    }
}
