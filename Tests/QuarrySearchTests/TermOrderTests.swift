import GRDB
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Segments are written with their terms in SQLite's `TEXT` order, the order of their UTF-8 bytes; merges and
/// readers rely on it. `bytewise` must sort exactly as SQLite does, whatever the characters.
@Suite(.mayBlock)
struct TermOrderTests {
    @Test func bytewiseSortsAsSQLiteOrdersText() throws {
        var random = SystemRandomNumberGenerator()
        // ASCII, a control character, Latin-1, a character of three bytes, an emoji, and a combining accent (one
        // "character" with the letter before it, so Swift's `<` would order it differently from its bytes). No NUL:
        // SQLite's text functions stop at one.
        let alphabet: [String] = ["a", "b", "z", "A", "0", ".", "-", "\u{1}", "é", "ÿ", "€", "😀", "e\u{301}", "~"]
        var terms: Set<String> = ["", "a", "aa", "ab", "b"]
        while terms.count < 3_000 {
            let length = Int.random(in: 0...12, using: &random)
            terms.insert((0..<length).map { _ in alphabet.randomElement(using: &random)! }.joined())
        }
        let database = try DatabaseQueue()
        let ordered = try database.write { db in
            try db.execute(sql: "CREATE TABLE t(term TEXT)")
            for term in terms { try db.execute(sql: "INSERT INTO t(term) VALUES (?)", arguments: [term]) }
            return try String.fetchAll(db, sql: "SELECT term FROM t ORDER BY term")
        }
        let sorted = terms.sorted(by: bytewise)
        #expect(sorted.count == ordered.count)
        let difference = zip(sorted, ordered).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(difference == nil, "first difference at \(difference.map { "\($0.offset): \($0.element)" } ?? "")")
        for term in terms.prefix(200) {
            #expect(!bytewise(term, term))
        }
    }
}
