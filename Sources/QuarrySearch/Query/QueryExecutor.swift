import Foundation
import QuarryCore

/// Evaluates ``Query`` trees against one index, with Elasticsearch's semantics for each query type.
struct QueryExecutor {
    let reader: IndexReader
    /// Epoch milliseconds that `now` means in date math, fixed for the whole request.
    let now: Int64
    let live: Bitmap

    init(reader: IndexReader, now: Int64) {
        self.reader = reader
        self.now = now
        live = reader.liveDocuments()
    }

    var empty: Bitmap { Bitmap(capacity: reader.capacity) }
    var mappings: Mappings { reader.mappings }

    /// The live documents matching `query`.
    func execute(_ query: Query) throws -> Matches {
        let result = try evaluate(query, scoring: true)
        result.documents.formIntersection(live)
        return result
    }

    func evaluate(_ query: Query, scoring: Bool) throws -> Matches {
        switch query {
        case .matchAll(let boost):
            return Matches(live, .constant(scoring ? boost : 0))
        case .matchNone:
            return Matches(empty, .constant(0))
        case .constantScore(let filter, let boost):
            let inner = try evaluate(filter, scoring: false)
            return Matches(inner.documents, .constant(scoring ? boost : 0))
        case .bool(let bool):
            return try evaluateBool(bool, scoring: scoring)
        case .term(let field, let value, let insensitive, let boost):
            return try term(field: field, value: value, caseInsensitive: insensitive, boost: boost, scoring: scoring)
        case .terms(let field, let values, let boost):
            try check(.maxTermsCount, values.count, "The number of terms", "Terms Query")
            var union = empty
            for value in values {
                union.formUnion(
                    try term(field: field, value: value, caseInsensitive: false, boost: 1, scoring: false).documents
                )
            }
            return Matches(union, .constant(scoring ? boost : 0))
        case .range(let range):
            return Matches(try self.range(range), .constant(scoring ? range.boost : 0))
        case .exists(let field):
            return Matches(try exists(field), .constant(scoring ? 1 : 0))
        case .ids(let ids):
            var bitmap = empty
            for doc in try reader.documents(ids: ids) { bitmap.insert(doc) }
            return Matches(bitmap, .constant(scoring ? 1 : 0))
        case .prefix(let field, let value, let insensitive, let boost):
            let documents = try expandTerms(field: field) { definition in
                let value = definition.normalized(value)
                guard insensitive else { return (value, { $0.hasPrefix(value) }) }
                let lowered = value.asciiLowercased
                return ("", { $0.asciiLowercased.hasPrefix(lowered) })
            }
            return Matches(documents, .constant(scoring ? boost : 0))
        case .wildcard(let field, let pattern, let insensitive, let boost):
            let documents = try expandTerms(field: field) { definition in
                let pattern = definition.normalized(pattern)
                let literalPrefix = insensitive ? "" : String(pattern.prefix { $0 != "*" && $0 != "?" && $0 != "\\" })
                return (
                    literalPrefix, { Wildcard.matches(pattern, $0, caseInsensitive: insensitive, escapes: true) }
                )
            }
            return Matches(documents, .constant(scoring ? boost : 0))
        case .regexp(let field, let pattern, let insensitive, let boost):
            try check(.maxRegexLength, pattern.count, "The length of regex", "Regexp Query")
            let regex = try LuceneRegex(pattern, caseInsensitive: insensitive)
            let documents = try expandTerms(field: field) { _ in ("", { regex.matches($0) }) }
            return Matches(documents, .constant(scoring ? boost : 0))
        case .match(let match):
            return try self.match(match, scoring: scoring)
        case .matchPhrase(let field, let text, let slop, let boost):
            return try phrase(field: field, text: text, slop: slop, boost: boost, scoring: scoring)
        case .multiMatch(let fields, let text, let phrase, let boost):
            var alternatives: [Matches] = []
            var union = empty
            for field in expand(fields) {
                let fieldQuery: Query =
                    phrase
                    ? .matchPhrase(field: field, text: text, slop: 0, boost: boost)
                    : .match(MatchQuery(field: field, text: .string(text), boost: boost, lenient: true))
                let result = try evaluate(fieldQuery, scoring: scoring)
                union.formUnion(result.documents)
                alternatives.append(result)
            }
            return Matches(union, scoring ? .best(alternatives) : .constant(0))
        }
    }

    /// Elasticsearch's refusal of a query past an index-level limit (`index.max_terms_count`,
    /// `index.max_regex_length`).
    private func check(_ limit: IndexMetadata.SearchLimit, _ value: Int, _ measure: String, _ query: String) throws {
        let maximum = reader.metadata.limit(limit)
        guard value > maximum else { return }
        throw StoreError.illegalArgument(
            "\(measure) [\(value)] used in the \(query) request has exceeded the allowed maximum of [\(maximum)]. "
                + "This maximum can be set by changing the [\(limit.rawValue)] index level setting."
        )
    }

    // MARK: bool

    func evaluateBool(_ bool: BoolQuery, scoring: Bool) throws -> Matches {
        var required: [Matches] = []
        var documents: Bitmap?
        // Required clauses narrow each other: ranges (cheap, and selective on time) go first, and what they leave
        // restricts which segments later clauses read postings from. Documents outside the restriction are
        // dropped by the intersection anyway, so results do not change.
        let outer = reader.scope.restriction
        defer { reader.scope.restriction = outer }
        func isRange(_ query: Query) -> Bool {
            if case .range = query { return true }
            return false
        }
        let clauses =
            bool.filter.filter(isRange).map { ($0, false) } + bool.must.filter(isRange).map { ($0, true) }
            + bool.filter.filter { !isRange($0) }.map { ($0, false) }
            + bool.must.filter { !isRange($0) }.map { ($0, true) }
        for (clause, scores) in clauses {
            let result = try evaluate(clause, scoring: scoring && scores)
            if scores { required.append(result) }
            var narrowed = result.documents
            if let documents { narrowed.formIntersection(documents) }
            documents = narrowed
            var restriction = narrowed
            if let outer { restriction.formIntersection(outer) }
            reader.scope.restriction = restriction
        }
        var optional: [Matches] = []
        for clause in bool.should { optional.append(try evaluate(clause, scoring: scoring)) }
        let hasRequired = !bool.must.isEmpty || !bool.filter.isEmpty
        var minimum = hasRequired ? 0 : (optional.isEmpty ? 0 : 1)
        if let spec = bool.minimumShouldMatch {
            minimum = try Self.minimumShouldMatch(spec, clauses: optional.count)
        }
        if minimum > 0 {
            if minimum > optional.count {
                documents = empty
            } else if minimum == 1 {
                var union = empty
                for clause in optional { union.formUnion(clause.documents) }
                documents =
                    documents.map {
                        var d = $0
                        d.formIntersection(union)
                        return d
                    } ?? union
            } else {
                var union = empty
                for clause in optional { union.formUnion(clause.documents) }
                var enough = empty
                union.visit { doc in
                    var count = 0
                    for clause in optional where clause.documents.contains(doc) { count += 1 }
                    if count >= minimum { enough.insert(doc) }
                    return true
                }
                documents =
                    documents.map {
                        var d = $0
                        d.formIntersection(enough)
                        return d
                    } ?? enough
            }
        }
        var result = documents ?? live
        for clause in bool.mustNot {
            result.subtract(try evaluate(clause, scoring: false).documents)
        }
        guard scoring else { return Matches(result, .constant(0)) }
        if required.isEmpty, optional.isEmpty {
            // Only filters and exclusions: ES scores such a bool 0 in query context (match_all is implied).
            return Matches(result, .constant(bool.filter.isEmpty ? 1 * bool.boost : 0))
        }
        return Matches(result, .sum(required: required, optional: optional, boost: bool.boost))
    }

    /// `2`, `-1`, `75%`, `-25%`, as ES reads `minimum_should_match`.
    static func minimumShouldMatch(_ spec: String, clauses: Int) throws(StoreError) -> Int {
        let text = spec.trimmingSpaces
        if text.hasSuffix("%"), let percent = Int(text.dropLast()) {
            let count = Int((Double(clauses) * Double(abs(percent)) / 100).rounded(.down))
            return percent < 0 ? clauses - count : count
        }
        guard let number = Int(text) else {
            throw .illegalArgument("failed to parse minimum_should_match [\(spec)]")
        }
        return number < 0 ? max(0, clauses + number) : number
    }

    // MARK: fields

    /// Field names matching `patterns` (`*`, `dns.*`) among the mapped leaf fields.
    func expand(_ patterns: [String]) -> [String] {
        var result: [String] = []
        for pattern in patterns {
            let name = pattern.split(separator: "^").first.map(String.init) ?? pattern
            if name.contains("*") {
                for field in mappings.fields.keys.sorted() where Wildcard.matches(name, field) {
                    let type = mappings.fields[field]!.type.family
                    if type == .keyword || type == .text { result.append(field) }
                }
            } else {
                result.append(name)
            }
        }
        return result
    }

    func queryShardError(_ reason: String) -> StoreError {
        StoreError(
            type: "query_shard_exception",
            reason: "failed to create query: \(reason)",
            status: 400,
            metadata: ["index_uuid": .string(reader.metadata.uuid), "index": .string(reader.metadata.name)],
            causedBy: .illegalArgument(reason)
        )
    }

    func text(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        case .int(let number): String(number)
        case .double(let number): JSON.format(number)
        case .bool(let flag): flag ? "true" : "false"
        default: value.serialized()
        }
    }

    // MARK: term

    func term(
        field: String,
        value: JSON,
        caseInsensitive: Bool,
        boost: Double,
        scoring: Bool
    ) throws
        -> Matches
    {
        if field == "_id" {
            return try evaluate(.ids([text(value)]), scoring: scoring)
        }
        if field == "_index" {
            return Matches(Wildcard.matches(text(value), reader.metadata.name) ? live : empty, .constant(boost))
        }
        guard let definition = mappings.field(field) else { return Matches(empty, .constant(0)) }
        switch definition.type.family {
        case .keyword, .text:
            var bitmap = empty
            let term = definition.normalized(text(value))
            var frequency = 0
            if caseInsensitive {
                let lowered = term.asciiLowercased
                for candidate in try reader.terms(field: field) where candidate.asciiLowercased == lowered {
                    frequency += try reader.addPostings(field: field, term: candidate, into: &bitmap)
                }
            } else if definition.type.family == .text {
                let (postings, documentFrequency) = try reader.textPostings(field: field, token: term)
                var frequencies: [Int: UInt16] = [:]
                for (doc, tf) in postings {
                    bitmap.insert(doc)
                    frequencies[doc] = tf
                }
                guard scoring else { return Matches(bitmap, .constant(0)) }
                return Matches(
                    bitmap,
                    .text(textScorer(field: field, tokens: [(documentFrequency, frequencies)], boost: boost))
                )
            } else {
                frequency = try reader.addPostings(field: field, term: term, into: &bitmap)
            }
            return Matches(
                bitmap,
                .constant(scoring ? keywordScore(field: field, frequency: frequency, boost: boost) : 0)
            )
        case .boolean:
            let flag: String
            switch value {
            case .bool(let b): flag = b ? "true" : "false"
            case .string("true"), .string("false"): flag = value.stringValue!
            case .string(""): flag = "false"
            default: throw queryShardError("Can't parse boolean value [\(text(value))], expected [true] or [false]")
            }
            var bitmap = empty
            let frequency = try reader.addPostings(field: field, term: flag, into: &bitmap)
            return Matches(
                bitmap,
                .constant(scoring ? keywordScore(field: field, frequency: frequency, boost: boost) : 0)
            )
        case .ip:
            let textValue = text(value)
            if let range = IPAddress.cidr(textValue) {
                return Matches(try scanIP(field: field, range), .constant(scoring ? boost : 0))
            }
            guard let address = IPAddress(textValue) else {
                throw queryShardError("'\(textValue)' is not an IP string literal.")
            }
            var bitmap = empty
            try reader.addPostings(field: field, term: address.description, into: &bitmap)
            return Matches(bitmap, .constant(scoring ? boost : 0))
        case .integer, .floating, .date:
            if let limits = definition.type.integerBounds {
                let number: Double? =
                    switch value {
                    case .int(let v): Double(v)
                    case .double(let v): v
                    case .string(let v): Double(v.trimmingSpaces)
                    default: nil
                    }
                // Elasticsearch refuses a term its field's type cannot hold (a long of 1e19), as at index time.
                if let number, !(number >= Double(limits.lowerBound) && number <= Double(limits.upperBound)) {
                    let article = definition.type == .integer ? "an" : "a"
                    throw queryShardError(
                        "Value [\(text(value))] is out of range for \(article) \(definition.type.rawValue)"
                    )
                }
            }
            let bounds = try numericBounds(
                definition,
                RangeQuery(field: field, gte: value, lte: value)
            )
            guard let bounds else { return Matches(empty, .constant(0)) }
            return Matches(try scanNumeric(field: field, bounds), .constant(scoring ? boost : 0))
        case .object, .unindexed:
            return Matches(empty, .constant(0))
        }
    }

    func keywordScore(field: String, frequency: Int, boost: Double) -> Double {
        let n = Double(max(reader.statistics(field: field).documentCount, frequency))
        let df = Double(frequency)
        let idf = log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * boost * (1 / (1 + 1.2))
    }

    func textScorer(field: String, tokens: [(Int, [Int: UInt16])], boost: Double) -> TextScorer {
        let stats = reader.statistics(field: field)
        let n = Double(stats.documentCount)
        let average = stats.documentCount > 0 ? Double(stats.tokenCount) / n : 1
        return TextScorer(
            field: field,
            tokens: tokens.map { (frequency, frequencies) in
                let df = Double(frequency)
                return (log(1 + (n - df + 0.5) / (df + 0.5)) * boost, frequencies)
            },
            averageLength: average
        )
    }

    // MARK: exists, prefix, wildcard

    func exists(_ field: String) throws -> Bitmap {
        var bitmap = empty
        let fields: [String]
        if field.contains("*") {
            fields = mappings.fields.keys.filter { Wildcard.matches(field, $0) }
        } else if mappings.field(field) != nil {
            fields = [field]
        } else {
            fields = mappings.fields.keys.filter { $0.hasPrefix(field + ".") }
        }
        for name in fields {
            guard let definition = mappings.field(name) else { continue }
            let family = definition.type.family
            // Every indexed value leaves doc values (or, for text, a token count); keywords without doc values are
            // found through their terms.
            let columnName = family == .text ? lengthColumn(name) : name
            if family == .keyword, !definition.docValues {
                for term in try reader.terms(field: name) {
                    try reader.addPostings(field: name, term: term, into: &bitmap)
                }
                continue
            }
            for segment in reader.segments(field: columnName) {
                if let stored = segment.segment.stored, family != .text {
                    if stored.valueDocuments[name] == nil, stored.bounds[name] == nil { continue }
                    if stored.valueDocuments[name] == stored.count {
                        bitmap.insert(range: segment.base..<segment.base + segment.count)
                        continue
                    }
                }
                guard let column = try reader.column(field: columnName, segment: segment.segment) else { continue }
                for doc in 0..<column.documentCount where !column.range(doc).isEmpty {
                    bitmap.insert(segment.base + doc)
                }
            }
        }
        return bitmap
    }

    /// The documents holding any term of `field` (a name or pattern) that a matcher accepts; `matcher` gives, for
    /// each field, the prefix all accepted terms share (to seek the term dictionary) and the test itself.
    func expandTerms(
        field: String,
        _ matcher: (FieldDefinition) -> (prefix: String, accept: (String) -> Bool)
    ) throws -> Bitmap {
        var bitmap = empty
        let fields = field.contains("*") ? expand([field]) : [field]
        for name in fields {
            guard let definition = mappings.field(name) else { continue }
            switch definition.type.family {
            case .keyword, .text, .ip, .boolean:
                let (prefix, accept) = matcher(definition)
                for term in try reader.terms(field: name, prefix: prefix) where accept(term) {
                    try reader.addPostings(field: name, term: term, into: &bitmap)
                }
            default:
                continue
            }
        }
        return bitmap
    }

}

extension IPAddress {
    var successor: IPAddress? {
        if low == .max { return high == .max ? nil : IPAddress(high: high + 1, low: 0) }
        return IPAddress(high: high, low: low + 1)
    }

    var predecessor: IPAddress? {
        if low == 0 { return high == 0 ? nil : IPAddress(high: high - 1, low: .max) }
        return IPAddress(high: high, low: low - 1)
    }
}

extension Mappings {
    /// Where a field's values live in `_source`: a multi-field (`title.keyword`) reads its parent's values.
    func sourcePath(of field: String) -> String {
        fields[field]?.parentPath ?? field
    }
}

extension JSON {
    /// Every value at a dotted path, descending through arrays and accepting dotted keys (`{"a.b": 1}`).
    func values(atDottedPath path: String) -> [JSON] {
        var results: [JSON] = []
        collect(path[...], into: &results)
        return results
    }

    private func collect(_ path: Substring, into results: inout [JSON]) {
        switch self {
        case .array(let elements):
            for element in elements { element.collect(path, into: &results) }
        case .object(let object):
            if path.isEmpty {
                results.append(self)
                return
            }
            for (key, value) in object {
                if path == key[...] {
                    if case .array(let elements) = value {
                        results.append(contentsOf: elements.flatMap { $0.flattenedArray })
                    } else {
                        results.append(value)
                    }
                } else if path.hasPrefix(key + ".") {
                    value.collect(path.dropFirst(key.count + 1), into: &results)
                }
            }
        default:
            if path.isEmpty { results.append(self) }
        }
    }

    var flattenedArray: [JSON] {
        if case .array(let elements) = self { return elements.flatMap(\.flattenedArray) }
        return [self]
    }
}
