import Foundation
import QuarryCore

extension QueryExecutor {
    // MARK: match

    func match(_ match: MatchQuery, scoring: Bool) throws -> Matches {
        // A pattern expands to mapped fields; a mapped field whose name holds a `*` is one of them, and expanding it
        // again would never end.
        if match.field.contains("*"), mappings.field(match.field) == nil {
            return try evaluate(
                .multiMatch(fields: [match.field], text: text(match.text), phrase: false, boost: match.boost),
                scoring: scoring
            )
        }
        guard let definition = mappings.field(match.field) else { return Matches(empty, .constant(0)) }
        guard definition.type.family == .text else {
            do {
                return try term(
                    field: match.field,
                    value: match.text,
                    caseInsensitive: false,
                    boost: match.boost,
                    scoring: scoring
                )
            } catch {
                if match.lenient { return Matches(empty, .constant(0)) }
                throw error
            }
        }
        var analyzer = definition.searchAnalyzer
        if let name = match.analyzer {
            guard let named = Analyzer.named(name) else {
                throw queryShardError("[match] analyzer [\(name)] not found")
            }
            analyzer = named
        }
        let tokens = Array(Set(analyzer.tokens(text(match.text))))
        guard !tokens.isEmpty else { return Matches(empty, .constant(0)) }
        var perToken: [(Int, [Int: UInt16])] = []
        var clauses: [Bitmap] = []
        for token in tokens {
            let (postings, documentFrequency) = try reader.textPostings(field: match.field, token: token)
            var bitmap = empty
            var frequencies: [Int: UInt16] = [:]
            for (doc, tf) in postings {
                bitmap.insert(doc)
                frequencies[doc] = tf
            }
            clauses.append(bitmap)
            perToken.append((documentFrequency, frequencies))
        }
        var minimum = match.requireAll ? tokens.count : 1
        if let spec = match.minimumShouldMatch, !match.requireAll {
            minimum = max(1, try Self.minimumShouldMatch(spec, clauses: tokens.count))
        }
        var documents = empty
        if minimum >= tokens.count {
            documents = clauses[0]
            for clause in clauses.dropFirst() { documents.formIntersection(clause) }
        } else {
            var union = empty
            for clause in clauses { union.formUnion(clause) }
            if minimum <= 1 {
                documents = union
            } else {
                union.visit { doc in
                    if clauses.reduce(0, { $0 + ($1.contains(doc) ? 1 : 0) }) >= minimum { documents.insert(doc) }
                    return true
                }
            }
        }
        guard scoring else { return Matches(documents, .constant(0)) }
        return Matches(documents, .text(textScorer(field: match.field, tokens: perToken, boost: match.boost)))
    }

    func phrase(field: String, text: String, slop: Int, boost: Double, scoring: Bool) throws -> Matches {
        guard let definition = mappings.field(field) else { return Matches(empty, .constant(0)) }
        guard definition.type.family == .text else {
            return try term(field: field, value: .string(text), caseInsensitive: false, boost: boost, scoring: scoring)
        }
        let tokens = definition.searchAnalyzer.tokens(text)
        guard !tokens.isEmpty else { return Matches(empty, .constant(0)) }
        let candidates = try self.match(
            MatchQuery(field: field, text: .string(text), requireAll: true, boost: boost),
            scoring: scoring
        )
        guard tokens.count > 1 else { return candidates }
        var verified = empty
        let liveCandidates = {
            var c = candidates.documents
            c.formIntersection(live)
            return c
        }()
        let hits = try reader.storedHits(liveCandidates.members)
        for (doc, hit) in hits {
            guard let source = try? JSON.parse(hit.source) else { continue }
            let sourcePath = reader.mappings.sourcePath(of: field)
            for value in source.values(atDottedPath: sourcePath) {
                guard let string = value.stringValue else { continue }
                if Self.containsPhrase(definition.analyzer.tokens(string), tokens, slop: slop) {
                    verified.insert(doc)
                    break
                }
            }
        }
        return Matches(verified, candidates.scorer)
    }

    static func containsPhrase(_ haystack: [String], _ needle: [String], slop: Int) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in haystack.indices where haystack[start] == needle[0] {
            var position = start
            var used = 0
            var matched = true
            for token in needle.dropFirst() {
                var next = position + 1
                while next < haystack.count, haystack[next] != token, next - position - 1 + used < slop { next += 1 }
                guard next < haystack.count, haystack[next] == token else {
                    matched = false
                    break
                }
                used += next - position - 1
                position = next
            }
            if matched { return true }
        }
        return false
    }
}
