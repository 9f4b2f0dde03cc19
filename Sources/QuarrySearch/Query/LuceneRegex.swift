import Foundation

/// A Lucene regular expression (the `regexp` query and `/…/` in `query_string`), run with Foundation's engine.
///
/// Lucene's dialect differs from ICU's, so the pattern is translated rather than passed on: it must match the whole
/// term (there are no anchors: `^` and `$` are ordinary characters), `"…"` quotes a literal string, `@` (Elasticsearch's
/// default `ALL` flags) is any string and `#` the empty language, `.` matches any character, and inside a class `[`
/// and `&` are ordinary. Intersection (`&`), complement (`~`) and numeric intervals (`<1-99>`) have no counterpart
/// here and are refused with a clear error. No listed package parses Lucene's dialect, hence this hand-written
/// translation. Compiled once; `NSRegularExpression` is immutable, so one value may match on any thread.
struct LuceneRegex: @unchecked Sendable {
    private let expression: NSRegularExpression

    init(_ pattern: String, caseInsensitive: Bool) throws(StoreError) {
        let translated = try Self.translate(pattern)
        var options: NSRegularExpression.Options = [.dotMatchesLineSeparators]
        if caseInsensitive { options.insert(.caseInsensitive) }
        do {
            expression = try NSRegularExpression(pattern: "^(?:" + translated + ")$", options: options)
        } catch {
            throw Self.invalid(pattern, "it is not a regular expression this store can read")
        }
    }

    /// Whether the whole of `term` matches.
    func matches(_ term: String) -> Bool {
        let range = NSRange(term.startIndex..., in: term)
        return expression.firstMatch(in: term, options: [.anchored], range: range) != nil
    }

    private static func invalid(_ pattern: String, _ why: String) -> StoreError {
        .illegalArgument("invalid regular expression [\(pattern)]: \(why)")
    }

    /// ICU's pattern for a Lucene one.
    static func translate(_ pattern: String) throws(StoreError) -> String {
        let characters = Array(pattern)
        var result = ""
        var index = 0
        var inClass = false
        var depth = 0
        func escaped(_ character: Character) -> String {
            NSRegularExpression.escapedPattern(for: String(character))
        }
        while index < characters.count {
            let character = characters[index]
            index += 1
            if character == "\\" {
                guard index < characters.count else { throw invalid(pattern, "it ends with a lone '\\'") }
                let next = characters[index]
                index += 1
                // Lucene's shorthand classes mean what ICU's do; any other escaped character is itself.
                result += "dDsSwW".contains(next) ? "\\" + String(next) : escaped(next)
                continue
            }
            if inClass {
                switch character {
                case "]":
                    inClass = false
                    result.append("]")
                case "[", "&": result += escaped(character)
                default: result.append(character)
                }
                continue
            }
            switch character {
            case "[":
                inClass = true
                result.append("[")
                if index < characters.count, characters[index] == "^" {
                    result.append("^")
                    index += 1
                }
            case "\"":
                guard let end = characters[index...].firstIndex(of: "\"") else {
                    throw invalid(pattern, "a '\"' is not closed")
                }
                result += NSRegularExpression.escapedPattern(for: String(characters[index..<end]))
                index = end + 1
            case "@": result += ".*"
            case "#": result += "(?!)"
            case "^", "$": result += escaped(character)
            case "(":
                depth += 1
                result.append("(?:")
            case ")":
                depth -= 1
                guard depth >= 0 else { throw invalid(pattern, "a ')' closes nothing") }
                result.append(")")
            case "&", "~", "<":
                throw invalid(
                    pattern,
                    "'\(character)' (intersection, complement, intervals) is not supported by this store"
                )
            default: result.append(character)
            }
        }
        guard !inClass else { throw invalid(pattern, "a '[' is not closed") }
        guard depth == 0 else { throw invalid(pattern, "a '(' is not closed") }
        return result
    }
}
