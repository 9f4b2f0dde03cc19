import Crypto
import Foundation
import QuarryCore

/// Tines' and Huginn's filters beyond standard Liquid: JSON in and out, hashes and HMACs, regular expressions,
/// JSONPath, `get`.
enum ExtensionFilters {
    static let all: [String: LiquidFilter] = {
        var filters: [String: LiquidFilter] = [:]
        // The value itself: a template that is exactly `{{ … | as_object }}` renders to this JSON value rather than
        // to text (see ``LiquidTemplate/renderValue(_:story:)``).
        filters["as_object"] = { input, arguments in
            try arguments.expect(0)
            return input
        }
        let toJSON: LiquidFilter = { input, arguments in
            try arguments.expect(0)
            return .string(input.serialized())
        }
        filters["json"] = toJSON
        filters["to_json"] = toJSON
        let fromJSON: LiquidFilter = { input, arguments in
            try arguments.expect(0)
            guard case .string(let text) = input else { return input }
            do {
                return try JSON.parse(text)
            } catch {
                throw LiquidError(.argument, "\(arguments.filterName): invalid JSON: \(error)")
            }
        }
        filters["json_parse"] = fromJSON
        filters["from_json"] = fromJSON
        filters["sha256"] = { input, arguments in
            try arguments.expect(0)
            return .string(hex(SHA256.hash(data: Data(input.liquidText.utf8))))
        }
        filters["sha1"] = { input, arguments in
            try arguments.expect(0)
            return .string(hex(Insecure.SHA1.hash(data: Data(input.liquidText.utf8))))
        }
        filters["md5"] = { input, arguments in
            try arguments.expect(0)
            return .string(hex(Insecure.MD5.hash(data: Data(input.liquidText.utf8))))
        }
        filters["hmac_sha256"] = { input, arguments in
            try arguments.expect(1)
            let key = SymmetricKey(data: Data(arguments[0]!.liquidText.utf8))
            return .string(hex(HMAC<SHA256>.authenticationCode(for: Data(input.liquidText.utf8), using: key)))
        }
        filters["hmac_sha1"] = { input, arguments in
            try arguments.expect(1)
            let key = SymmetricKey(data: Data(arguments[0]!.liquidText.utf8))
            return .string(hex(HMAC<Insecure.SHA1>.authenticationCode(for: Data(input.liquidText.utf8), using: key)))
        }
        filters["regex_replace"] = { input, arguments in
            try arguments.expect(2)
            return .string(
                try regexReplace(input.liquidText, arguments[0]!.liquidText, arguments[1]!.liquidText, all: true)
            )
        }
        filters["regex_replace_first"] = { input, arguments in
            try arguments.expect(2)
            return .string(
                try regexReplace(input.liquidText, arguments[0]!.liquidText, arguments[1]!.liquidText, all: false)
            )
        }
        filters["regex_extract"] = { input, arguments in
            try arguments.expect(1, 2)
            let regex = try compile(arguments[0]!.liquidText)
            let text = input.liquidText
            let group = try StandardFilters.integerArgument(arguments[1], name: "regex_extract") ?? 0
            guard let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
                group >= 0, group < match.numberOfRanges, let range = Range(match.range(at: group), in: text)
            else { return .null }
            return .string(String(text[range]))
        }
        filters["jsonpath"] = { input, arguments in
            try arguments.expect(1)
            return try JSONPath(arguments[0]!.liquidText).evaluate(on: input)
        }
        filters["get"] = { input, arguments in
            try arguments.expect(1)
            return RenderContext.property(of: input, arguments[0]!) ?? .null
        }
        return filters
    }()

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 15)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func compile(_ pattern: String) throws(LiquidError) -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern)
        } catch {
            throw LiquidError(.argument, "invalid regular expression /\(pattern)/")
        }
    }

    /// Replaces matches of `pattern`; `\1` and `$1` in the replacement refer to groups, as in Ruby and Tines.
    static func regexReplace(
        _ text: String,
        _ pattern: String,
        _ replacement: String,
        all: Bool
    ) throws(LiquidError)
        -> String
    {
        let regex = try compile(pattern)
        var template = ""
        let characters = Array(replacement)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "\\", index + 1 < characters.count, characters[index + 1].isNumber {
                template += "$"
            } else if character == "\\", index + 1 < characters.count, characters[index + 1] == "\\" {
                template += "\\\\"
                index += 1
            } else if character == "\\" {
                template += "\\\\"
            } else {
                template.append(character)
            }
            index += 1
        }
        let range = NSRange(text.startIndex..., in: text)
        if all {
            return regex.stringByReplacingMatches(in: text, range: range, withTemplate: template)
        }
        guard let match = regex.firstMatch(in: text, range: range), let matched = Range(match.range, in: text) else {
            return text
        }
        let substitute = regex.replacementString(for: match, in: text, offset: 0, template: template)
        return text.replacingCharacters(in: matched, with: substitute)
    }
}

/// A small JSONPath: `$`, `.key`, `['key']`, `[n]` (negative from the end), `[*]` / `.*`, and `..key` (at any
/// depth). A path with a wildcard or `..` returns the array of matches; otherwise the one value, or nil.
struct JSONPath {
    enum Step {
        case key(String)
        case index(Int)
        case wildcard
        case descendant(String)
    }

    var steps: [Step] = []
    var returnsList = false

    init(_ path: String) throws(LiquidError) {
        var scalars = Substring(path).trimmingWhitespace()
        if scalars.hasPrefix("$") { scalars = scalars.dropFirst() }
        func readName() -> String {
            let name = scalars.prefix { $0 != "." && $0 != "[" }
            scalars = scalars.dropFirst(name.count)
            return String(name)
        }
        while let first = scalars.first {
            if scalars.hasPrefix("..") {
                scalars = scalars.dropFirst(2)
                steps.append(.descendant(readName()))
                returnsList = true
            } else if first == "." {
                scalars = scalars.dropFirst()
                let name = readName()
                if name == "*" {
                    steps.append(.wildcard)
                    returnsList = true
                } else {
                    steps.append(.key(name))
                }
            } else if first == "[" {
                guard let close = scalars.firstIndex(of: "]") else {
                    throw LiquidError(.argument, "jsonpath: unclosed '[' in \(path)")
                }
                let inside = scalars[scalars.index(after: scalars.startIndex)..<close].trimmingWhitespace()
                scalars = scalars[scalars.index(after: close)...]
                if inside == "*" {
                    steps.append(.wildcard)
                    returnsList = true
                } else if let index = Int(inside) {
                    steps.append(.index(index))
                } else if let quote = inside.first, quote == "'" || quote == "\"", inside.count >= 2 {
                    steps.append(.key(String(inside.dropFirst().dropLast())))
                } else {
                    throw LiquidError(.argument, "jsonpath: cannot read '[\(inside)]' in \(path)")
                }
            } else {
                steps.append(.key(readName()))
            }
        }
    }

    func evaluate(on value: JSON) -> JSON {
        var current = [value]
        for step in steps {
            var next: [JSON] = []
            for item in current {
                switch step {
                case .key(let key):
                    if let found = RenderContext.property(of: item, .string(key)) { next.append(found) }
                case .index(let index):
                    if let found = RenderContext.property(of: item, .int(Int64(index))) { next.append(found) }
                case .wildcard:
                    switch item {
                    case .array(let values): next.append(contentsOf: values)
                    case .object(let object): next.append(contentsOf: object.values)
                    default: break
                    }
                case .descendant(let key):
                    collect(key, in: item, into: &next)
                }
            }
            current = next
        }
        if returnsList { return .array(current) }
        return current.first ?? .null
    }

    private func collect(_ key: String, in value: JSON, into results: inout [JSON]) {
        switch value {
        case .object(let object):
            if let found = object[key] { results.append(found) }
            for member in object { collect(key, in: member.value, into: &results) }
        case .array(let values):
            for item in values { collect(key, in: item, into: &results) }
        default: break
        }
    }
}
