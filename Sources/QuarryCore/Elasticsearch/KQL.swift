/// Kibana Query Language to Query DSL: the search bar's language as a query any Elasticsearch-compatible cluster
/// answers, translated as Kibana translates it (`and` → `bool.filter`, `or` → `bool.should` with
/// `minimum_should_match: 1`, `not` → `bool.must_not`, `field:value` → `match`, a quoted value → `match_phrase`,
/// a wildcard → `query_string`, `field:*` → `exists`, `field >= v` → `range`, `field:{ … }` → `nested`, a value
/// without a field → `multi_match` over every field).
///
/// ```swift
/// let query = try KQL.query("dns.question.name:*.evil.example and not client.ip:10.0.0.1")
/// // {"bool": {"filter": [{"bool": {"should": [{"query_string": …}], …}}, {"bool": {"must_not": …}}]}}
/// ```
///
/// Written by hand: no listed package parses KQL (Kibana's own parser is a PEG grammar in TypeScript).
public enum KQL {
    /// Why a text is not KQL, with the offset (in characters) where reading stopped.
    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var offset: Int
        public var description: String { "KQL syntax error at character \(offset + 1): \(message)" }
    }

    /// The `query` part of a search body for `text`; an empty text matches every document.
    public static func query(_ text: String) throws(SyntaxError) -> JSON {
        var parser = Parser(Array(text))
        return try parser.parseQuery()
    }

    /// Characters that end an unquoted value unless escaped with a backslash (`*` is a wildcard inside one).
    static let special: Set<Character> = ["\\", "(", ")", ":", "<", ">", "\"", "{", "}"]

    private struct Parser {
        let text: [Character]
        var position = 0
        /// The path of the `field:{ … }` being read: its fields are named under it.
        var nestedPath: String?

        init(_ text: [Character]) { self.text = text }

        mutating func parseQuery() throws(SyntaxError) -> JSON {
            skipSpace()
            if position == text.count { return ["match_all": [:]] }
            let query = try parseOr()
            skipSpace()
            guard position == text.count else { throw error("unexpected '\(text[position])'") }
            return query
        }

        // MARK: Boolean structure

        mutating func parseOr() throws(SyntaxError) -> JSON {
            var clauses = [try parseAnd()]
            while consumeKeyword("or") { clauses.append(try parseAnd()) }
            return clauses.count == 1 ? clauses[0] : KQL.either(clauses)
        }

        mutating func parseAnd() throws(SyntaxError) -> JSON {
            var clauses = [try parseNot()]
            while consumeKeyword("and") { clauses.append(try parseNot()) }
            return clauses.count == 1 ? clauses[0] : ["bool": ["filter": .array(clauses)]]
        }

        mutating func parseNot() throws(SyntaxError) -> JSON {
            skipSpace()
            if consumeNot() { return ["bool": ["must_not": try parseNot()]] }
            return try parseSubQuery()
        }

        mutating func parseSubQuery() throws(SyntaxError) -> JSON {
            skipSpace()
            if peek == "(" {
                position += 1
                let query = try parseOr()
                skipSpace()
                try expect(")")
                return query
            }
            return try parseExpression()
        }

        // MARK: Expressions

        mutating func parseExpression() throws(SyntaxError) -> JSON {
            let start = position
            let first = try parseLiteral(allowWildcard: true)
            skipSpace()
            if let range = rangeOperator() {
                position += range.count == 3 ? 2 : 1
                skipSpace()
                let value = try parseLiteral(allowWildcard: false)
                return KQL.either([["range": [qualified(first.text): [range: KQL.typed(value)]]]])
            }
            guard peek == ":" else {
                // A value alone: every field.
                position = start
                let value = try parseLiteral(allowWildcard: true)
                return KQL.anyField(value)
            }
            position += 1
            skipSpace()
            let field = qualified(first.text)
            if peek == "{" {
                position += 1
                let outer = nestedPath
                nestedPath = field
                let query = try parseOr()
                nestedPath = outer
                skipSpace()
                try expect("}")
                return ["nested": ["path": .string(field), "query": query, "score_mode": "none"]]
            }
            return try parseValues(field: field)
        }

        /// `field: value`, or `field: (a or b and not c)`.
        mutating func parseValues(field: String) throws(SyntaxError) -> JSON {
            skipSpace()
            guard peek == "(" else { return KQL.field(field, is: try parseLiteral(allowWildcard: true)) }
            position += 1
            let values = try parseValueOr(field: field)
            skipSpace()
            try expect(")")
            return values
        }

        mutating func parseValueOr(field: String) throws(SyntaxError) -> JSON {
            var clauses = [try parseValueAnd(field: field)]
            while consumeKeyword("or") { clauses.append(try parseValueAnd(field: field)) }
            return clauses.count == 1 ? clauses[0] : KQL.either(clauses)
        }

        mutating func parseValueAnd(field: String) throws(SyntaxError) -> JSON {
            var clauses = [try parseValueNot(field: field)]
            while consumeKeyword("and") { clauses.append(try parseValueNot(field: field)) }
            return clauses.count == 1 ? clauses[0] : ["bool": ["filter": .array(clauses)]]
        }

        mutating func parseValueNot(field: String) throws(SyntaxError) -> JSON {
            skipSpace()
            if consumeNot() { return ["bool": ["must_not": try parseValueNot(field: field)]] }
            return try parseValues(field: field)
        }

        // MARK: Literals

        /// A quoted string, or unquoted text up to a special character or a surrounded `and`/`or`.
        mutating func parseLiteral(allowWildcard: Bool) throws(SyntaxError) -> Literal {
            skipSpace()
            guard position < text.count else { throw error("a value is missing") }
            if text[position] == "\"" {
                position += 1
                var value = ""
                while position < text.count, text[position] != "\"" {
                    if text[position] == "\\", position + 1 < text.count { position += 1 }
                    value.append(text[position])
                    position += 1
                }
                guard position < text.count else { throw error("a quoted value is not closed") }
                position += 1
                return Literal(text: value, quoted: true, wildcard: false)
            }
            var value = ""
            var wildcard = false
            while position < text.count {
                let character = text[position]
                if character == "\\" {
                    guard position + 1 < text.count else { throw error("a backslash escapes nothing") }
                    // An escaped `*` is a star, not a wildcard: kept escaped for query_string.
                    if text[position + 1] == "*" { value.append("\\") }
                    value.append(text[position + 1])
                    position += 2
                    continue
                }
                if KQL.special.contains(character) { break }
                if character.isWhitespace, keywordFollows() { break }
                if character == "*" {
                    guard allowWildcard else { throw error("a wildcard is not allowed in a range") }
                    wildcard = true
                }
                value.append(character)
                position += 1
            }
            let trimmed = value.trimmingWhitespace()
            guard !trimmed.isEmpty else {
                throw error(position < text.count ? "unexpected '\(text[position])'" : "a value is missing")
            }
            return Literal(text: trimmed, quoted: false, wildcard: wildcard)
        }

        /// Whether whitespace at the position starts ` or `, ` and ` or ` not `.
        func keywordFollows() -> Bool {
            var index = position
            while index < text.count, text[index].isWhitespace { index += 1 }
            for keyword in ["or", "and", "not"] {
                let end = index + keyword.count
                guard end < text.count, String(text[index..<end]).lowercased() == keyword,
                    text[end].isWhitespace || text[end] == "("
                else { continue }
                return true
            }
            return false
        }

        func qualified(_ field: String) -> String {
            nestedPath.map { "\($0).\(field)" } ?? field
        }

        // MARK: Tokens

        var peek: Character? { position < text.count ? text[position] : nil }

        mutating func skipSpace() {
            while position < text.count, text[position].isWhitespace { position += 1 }
        }

        /// Reads ` KEYWORD ` (whitespace before it, whitespace or a parenthesis after it).
        mutating func consumeKeyword(_ keyword: String) -> Bool {
            var index = position
            guard index < text.count, text[index].isWhitespace else { return false }
            while index < text.count, text[index].isWhitespace { index += 1 }
            let end = index + keyword.count
            guard end < text.count, String(text[index..<end]).lowercased() == keyword,
                text[end].isWhitespace || text[end] == "("
            else { return false }
            position = end
            return true
        }

        mutating func consumeNot() -> Bool {
            let end = position + 3
            guard end < text.count, String(text[position..<end]).lowercased() == "not",
                text[end].isWhitespace || text[end] == "("
            else { return false }
            position = end
            return true
        }

        func rangeOperator() -> String? {
            guard let first = peek, first == "<" || first == ">" else { return nil }
            let equal = position + 1 < text.count && text[position + 1] == "="
            return (first == "<" ? "lt" : "gt") + (equal ? "e" : "")
        }

        mutating func expect(_ character: Character) throws(SyntaxError) {
            guard peek == character else {
                throw error("expected '\(character)'" + (peek.map { ", found '\($0)'" } ?? " at the end"))
            }
            position += 1
        }

        func error(_ message: String) -> SyntaxError { SyntaxError(message: message, offset: position) }
    }

    /// A value as written: quoted (a phrase), or with wildcards.
    struct Literal {
        var text: String
        var quoted: Bool
        var wildcard: Bool
    }

    // MARK: Query DSL

    static func either(_ clauses: [JSON]) -> JSON {
        ["bool": ["should": .array(clauses), "minimum_should_match": 1]]
    }

    /// `field: value`, wrapped as Kibana wraps it (one `should` per matching field).
    static func field(_ field: String, is value: Literal) -> JSON {
        if !value.quoted, value.text == "*" { return either([["exists": ["field": .string(field)]]]) }
        let query: JSON
        if value.wildcard || field.contains("*") {
            let text = value.quoted ? "\"\(escapeForQueryString(value.text))\"" : escapeForQueryString(value.text)
            query = ["query_string": ["fields": [.string(field)], "query": .string(text)]]
        } else if value.quoted {
            query = ["match_phrase": [field: .string(value.text)]]
        } else {
            query = ["match": [field: .string(value.text)]]
        }
        return either([query])
    }

    /// A value without a field: every field, leniently (a word is not a number or a date).
    static func anyField(_ value: Literal) -> JSON {
        if !value.quoted, value.text == "*" { return ["match_all": [:]] }
        if value.wildcard { return ["query_string": ["query": .string(escapeForQueryString(value.text))]] }
        return [
            "multi_match": [
                "type": .string(value.quoted ? "phrase" : "best_fields"), "query": .string(value.text), "lenient": true,
            ]
        ]
    }

    /// A range bound: a number stays a number, anything else (a date) is text.
    static func typed(_ value: Literal) -> JSON {
        if !value.quoted, let integer = Int64(value.text) { return .int(integer) }
        if !value.quoted, let double = Double(value.text), double.isFinite { return .double(double) }
        return .string(value.text)
    }

    /// Lucene's special characters escaped, the `*` wildcards (and those already escaped) kept.
    static func escapeForQueryString(_ text: String) -> String {
        let special = Set("+-=&|><!(){}[]^\"~?:/ ")
        var escaped = ""
        var previous: Character?
        for character in text {
            if special.contains(character), previous != "\\" { escaped.append("\\") }
            escaped.append(character)
            previous = character
        }
        return escaped
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
