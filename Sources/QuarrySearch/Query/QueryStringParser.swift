import QuarryCore

/// The Lucene query syntax of `query_string` and the `q=` URL parameter: `field:value`, `"phrases"`,
/// `wild*cards`, `[a TO b]` and `{a TO b}` ranges, `>=value`, `_exists_:field`, `AND` / `OR` / `NOT` / `&&` /
/// `||` / `!`, `+` and `-` prefixes and parentheses. It compiles to ordinary ``Query`` trees.
struct QueryStringParser {
    private let scalars: [Character]
    private var index = 0
    private let defaultFields: [String]
    private let requireAll: Bool
    /// Groups (parentheses) open at the current position, bounded by ``Query/maximumNestedDepth``.
    private var depth = 0

    init(_ text: String, defaultFields: [String], requireAll: Bool) {
        self.init(scalars: Array(text), defaultFields: defaultFields, requireAll: requireAll)
    }

    mutating func parse() throws(StoreError) -> Query {
        let query = try parseSequence(closing: nil)
        return query
    }

    private enum Occur { case must, should, mustNot }

    private mutating func parseSequence(closing: Character?) throws(StoreError) -> Query {
        var clauses: [(Occur, Query)] = []
        var pendingConjunction: String?
        while true {
            skipSpaces()
            guard index < scalars.count else {
                if closing != nil { throw failure("Cannot parse query: expected ')'") }
                break
            }
            if let closing, scalars[index] == closing {
                index += 1
                break
            }
            if let word = peekOperator() {
                index += word.count
                if word == "AND" || word == "&&" { pendingConjunction = "AND" }
                if word == "OR" || word == "||" { pendingConjunction = "OR" }
                if word == "NOT" || word == "!" {
                    let clause = try parseClause()
                    clauses.append((.mustNot, clause))
                }
                continue
            }
            var occur: Occur = requireAll ? .must : .should
            if scalars[index] == "+" {
                occur = .must
                index += 1
            } else if scalars[index] == "-" {
                occur = .mustNot
                index += 1
            }
            let clause = try parseClause()
            if pendingConjunction == "AND" {
                if let last = clauses.last, last.0 == .should { clauses[clauses.count - 1].0 = .must }
                if occur == .should { occur = .must }
            } else if pendingConjunction == "OR", occur == .must, !requireAll {
                occur = .should
            }
            pendingConjunction = nil
            clauses.append((occur, clause))
        }
        if clauses.count == 1, clauses[0].0 != .mustNot { return clauses[0].1 }
        var bool = BoolQuery()
        for (occur, query) in clauses {
            switch occur {
            case .must: bool.must.append(query)
            case .should: bool.should.append(query)
            case .mustNot: bool.mustNot.append(query)
            }
        }
        if bool.must.isEmpty, bool.should.isEmpty, !bool.mustNot.isEmpty { bool.must = [.matchAll(boost: 1)] }
        return .bool(bool)
    }

    private func peekOperator() -> String? {
        for word in ["AND", "OR", "NOT", "&&", "||"] {
            let chars = Array(word)
            guard index + chars.count <= scalars.count, Array(scalars[index..<index + chars.count]) == chars else {
                continue
            }
            let after = index + chars.count
            if word.first!.isLetter, after < scalars.count, !scalars[after].isWhitespace, scalars[after] != "(" {
                continue
            }
            return word
        }
        if index < scalars.count, scalars[index] == "!" { return "!" }
        return nil
    }

    private mutating func skipSpaces() {
        while index < scalars.count, scalars[index].isWhitespace { index += 1 }
    }

    private func failure(_ reason: String) -> StoreError {
        StoreError(
            type: "query_shard_exception",
            reason: "Failed to parse query [\(String(scalars))]",
            status: 400,
            causedBy: StoreError(type: "parse_exception", reason: reason, status: 400)
        )
    }

    private mutating func parseClause() throws(StoreError) -> Query {
        skipSpaces()
        guard index < scalars.count else { throw failure("Cannot parse query: unexpected end of input") }
        if scalars[index] == "(" {
            index += 1
            return try parseGroup(fields: nil)
        }
        // field:value?
        let start = index
        var field: String?
        var probe = index
        var name = ""
        while probe < scalars.count, !scalars[probe].isWhitespace, scalars[probe] != ":", scalars[probe] != "(",
            scalars[probe] != "\""
        {
            if scalars[probe] == "\\", probe + 1 < scalars.count {
                name.append(scalars[probe + 1])
                probe += 2
                continue
            }
            name.append(scalars[probe])
            probe += 1
        }
        if probe < scalars.count, scalars[probe] == ":", !name.isEmpty {
            field = name
            index = probe + 1
        } else {
            index = start
        }
        if field == "_exists_" {
            let value = try readTerm()
            return .exists(field: value)
        }
        let fields = field.map { [$0] } ?? defaultFields
        guard index < scalars.count else { throw failure("Cannot parse query: missing value") }
        if scalars[index] == "(" {
            index += 1
            return try parseGroup(fields: fields)
        }
        if scalars[index] == "/" {
            index += 1
            var pattern = ""
            while index < scalars.count, scalars[index] != "/" {
                // `\/` is a slash inside the expression; other escapes are the expression's own.
                if scalars[index] == "\\", index + 1 < scalars.count {
                    if scalars[index + 1] != "/" { pattern.append("\\") }
                    pattern.append(scalars[index + 1])
                    index += 2
                    continue
                }
                pattern.append(scalars[index])
                index += 1
            }
            guard index < scalars.count else {
                throw failure("Cannot parse query: unterminated regular expression")
            }
            index += 1
            do {
                _ = try LuceneRegex(pattern, caseInsensitive: false)
            } catch {
                throw failure(error.reason)
            }
            return combine(fields) { .regexp(field: $0, pattern: pattern, caseInsensitive: false, boost: 1) }
        }
        if scalars[index] == "\"" {
            index += 1
            var phrase = ""
            while index < scalars.count, scalars[index] != "\"" {
                if scalars[index] == "\\", index + 1 < scalars.count { index += 1 }
                phrase.append(scalars[index])
                index += 1
            }
            guard index < scalars.count else { throw failure("Cannot parse query: unterminated phrase") }
            index += 1
            return combine(fields) { .matchPhrase(field: $0, text: phrase, slop: 0, boost: 1) }
        }
        if scalars[index] == "[" || scalars[index] == "{" {
            let includeLower = scalars[index] == "["
            index += 1
            skipSpaces()
            let lower = try readTerm(stopAt: " ")
            skipSpaces()
            guard try readTerm(stopAt: " ") == "TO" else { throw failure("Cannot parse query: expected TO in range") }
            skipSpaces()
            var upper = ""
            while index < scalars.count, scalars[index] != "]", scalars[index] != "}" {
                upper.append(scalars[index])
                index += 1
            }
            guard index < scalars.count else { throw failure("Cannot parse query: unterminated range") }
            let includeUpper = scalars[index] == "]"
            index += 1
            upper = upper.trimmingSpaces
            return combine(fields) { field in
                var range = RangeQuery(field: field)
                if lower != "*" { if includeLower { range.gte = .string(lower) } else { range.gt = .string(lower) } }
                if upper != "*" { if includeUpper { range.lte = .string(upper) } else { range.lt = .string(upper) } }
                return .range(range)
            }
        }
        for op in [">=", "<=", ">", "<"] where String(scalars[index...]).hasPrefix(op) {
            index += op.count
            let value = try readTerm()
            return combine(fields) { field in
                var range = RangeQuery(field: field)
                switch op {
                case ">=": range.gte = .string(value)
                case "<=": range.lte = .string(value)
                case ">": range.gt = .string(value)
                default: range.lt = .string(value)
                }
                return .range(range)
            }
        }
        // Escapes of `*`, `?` and `\` stay in the pattern a wildcard query reads; every other escape is resolved.
        let pattern = try readTerm(keepingWildcardEscapes: true)
        guard !pattern.isEmpty else { throw failure("Cannot parse query: unexpected character") }
        if pattern == "*", field != nil { return combine(fields) { .exists(field: $0) } }
        if pattern == "*" { return .matchAll(boost: 1) }
        if Self.hasWildcard(pattern) {
            return combine(fields) { .wildcard(field: $0, pattern: pattern, caseInsensitive: false, boost: 1) }
        }
        let term = Self.unescaped(pattern)
        if fields.count == 1, !fields[0].contains("*") {
            return .match(MatchQuery(field: fields[0], text: .string(term), lenient: true))
        }
        return .multiMatch(fields: fields, text: term, phrase: false, boost: 1)
    }

    private func combine(_ fields: [String], _ make: (String) -> Query) -> Query {
        if fields.count == 1 { return make(fields[0]) }
        var bool = BoolQuery()
        bool.should = fields.map(make)
        return .bool(bool)
    }

    /// A group's clauses, read with `fields` as the default fields when the group follows `field:`.
    private mutating func parseGroup(fields: [String]?) throws(StoreError) -> Query {
        guard depth < Query.maximumNestedDepth else {
            throw failure("Cannot parse query: groups nest deeper than \(Query.maximumNestedDepth)")
        }
        depth += 1
        defer { depth -= 1 }
        guard let fields else { return try parseSequence(closing: ")") }
        var inner = QueryStringParser(scalars: scalars, defaultFields: fields, requireAll: requireAll)
        inner.index = index
        inner.depth = depth
        let query = try inner.parseSequence(closing: ")")
        index = inner.index
        return query
    }

    private init(scalars: [Character], defaultFields: [String], requireAll: Bool) {
        self.scalars = scalars
        self.defaultFields = defaultFields
        self.requireAll = requireAll
    }

    /// Whether `pattern` has a `*` or `?` that no backslash escapes.
    static func hasWildcard(_ pattern: String) -> Bool {
        var escaped = false
        for character in pattern {
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "*" || character == "?" {
                return true
            }
        }
        return false
    }

    /// `pattern` with its remaining escapes (`\*`, `\?`, `\\`) resolved.
    static func unescaped(_ pattern: String) -> String {
        var result = ""
        var escaped = false
        for character in pattern {
            if !escaped, character == "\\" {
                escaped = true
                continue
            }
            escaped = false
            result.append(character)
        }
        return result
    }

    private mutating func readTerm(
        stopAt extra: Character? = nil,
        keepingWildcardEscapes: Bool = false
    ) throws(StoreError) -> String {
        var term = ""
        while index < scalars.count {
            let c = scalars[index]
            if c.isWhitespace || c == ")" || c == extra { break }
            if c == "\\" {
                guard index + 1 < scalars.count else {
                    throw failure("Lexical error at end of input: a '\\' escapes nothing")
                }
                let next = scalars[index + 1]
                if keepingWildcardEscapes, next == "*" || next == "?" || next == "\\" { term.append("\\") }
                term.append(next)
                index += 2
                continue
            }
            term.append(c)
            index += 1
        }
        return term
    }
}
