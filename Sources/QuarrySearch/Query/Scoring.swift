import Foundation
import QuarryCore

/// The documents a query matches in one index, and how to score each of them.
final class Matches {
    var documents: Bitmap
    let scorer: Scorer

    init(_ documents: Bitmap, _ scorer: Scorer) {
        self.documents = documents
        self.scorer = scorer
    }

    /// The score of a matching document.
    func score(_ doc: Int, _ context: ScoringContext) throws -> Double {
        try scorer.score(doc, context)
    }

    /// Every matching document scores the same, so the first ones in index order are the best.
    var isConstant: Bool { scorer.isConstant }
}

/// How matching documents score: Lucene's BM25 for text, a constant for filters and keyword terms.
indirect enum Scorer {
    case constant(Double)
    /// `bool`: the sum of the required clauses' scores and the matching optional ones'.
    case sum(required: [Matches], optional: [Matches], boost: Double)
    /// The best of several alternatives (multi-field matches).
    case best([Matches])
    case text(TextScorer)

    func score(_ doc: Int, _ context: ScoringContext) throws -> Double {
        switch self {
        case .constant(let value): return value
        case .sum(let required, let optional, let boost):
            var total = 0.0
            for clause in required { total += try clause.score(doc, context) }
            for clause in optional where clause.documents.contains(doc) { total += try clause.score(doc, context) }
            return total * boost
        case .best(let alternatives):
            var best = 0.0
            for clause in alternatives where clause.documents.contains(doc) {
                best = max(best, try clause.score(doc, context))
            }
            return best
        case .text(let scorer): return try scorer.score(doc, context)
        }
    }

    var isConstant: Bool {
        switch self {
        case .constant: true
        case .sum(let required, let optional, _): optional.isEmpty && required.allSatisfy(\.isConstant)
        case .best, .text: false
        }
    }
}

/// BM25 (k1 = 1.2, b = 0.75, as Lucene) over the query's tokens in one text field.
struct TextScorer {
    var field: String
    /// Per token: `idf × boost`, and the token's frequency in each document that has it.
    var tokens: [(weight: Double, frequencies: [Int: UInt16])]
    var averageLength: Double

    func score(_ doc: Int, _ context: ScoringContext) throws -> Double {
        let length = try context.fieldLength(field: field, doc: doc)
        let norm = 1.2 * (0.25 + 0.75 * (averageLength > 0 ? length / averageLength : 1))
        var total = 0.0
        for token in tokens {
            guard let frequency = token.frequencies[doc] else { continue }
            let tf = Double(frequency)
            total += token.weight * tf / (tf + norm)
        }
        return total
    }
}

/// What scoring needs besides the matches: field lengths from doc values, with the columns cached.
final class ScoringContext {
    let reader: IndexReader
    private var lengthColumns: [String: [Int64: Column?]] = [:]

    init(reader: IndexReader) {
        self.reader = reader
    }

    func fieldLength(field: String, doc: Int) throws -> Double {
        var cache = lengthColumns[field] ?? [:]
        defer { lengthColumns[field] = cache }
        let values = try reader.values(field: lengthColumn(field), doc: doc, columns: &cache)
        return values.first?.number ?? 1
    }
}
