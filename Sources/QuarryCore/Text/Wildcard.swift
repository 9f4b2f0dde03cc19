/// Simple `*` and `?` wildcard matching, as ES's index patterns, `_source` filters and `match` templates use.
public enum Wildcard {
    /// Whether `text` matches `pattern`, where `*` is any run and `?` one character. With `escapes` (Lucene's
    /// `wildcard` query), a backslash makes the next pattern character stand for itself.
    public static func matches(
        _ pattern: String,
        _ text: String,
        caseInsensitive: Bool = false,
        escapes: Bool = false
    ) -> Bool {
        if caseInsensitive {
            return matchesBytes(
                Array(pattern.asciiLowercased.utf8),
                Array(text.asciiLowercased.utf8),
                escapes: escapes
            )
        }
        // Most patterns in hot paths (`_source` includes, field names) have no wildcard at all.
        if !pattern.utf8.contains(UInt8(ascii: "*")), !pattern.utf8.contains(UInt8(ascii: "?")),
            !escapes || !pattern.utf8.contains(UInt8(ascii: "\\"))
        {
            return pattern == text
        }
        var pattern = pattern
        var text = text
        return pattern.withUTF8 { p in text.withUTF8 { t in matchesBytes(p, t, escapes: escapes) } }
    }

    /// Matching on UTF-8 bytes; `?` matches one whole character (a lead byte and its continuation bytes).
    static func matchesBytes(
        _ p: some RandomAccessCollection<UInt8>,
        _ t: some RandomAccessCollection<UInt8>,
        escapes: Bool = false
    ) -> Bool {
        let p = Array(p)
        let t = Array(t)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        func characterLength(at index: Int) -> Int {
            var length = 1
            while index + length < t.count, t[index + length] & 0xC0 == 0x80 { length += 1 }
            return length
        }
        let backslash = UInt8(ascii: "\\")
        while ti < t.count {
            // Lucene's escape: the character after a backslash stands for itself (`\*` is a star).
            let escaped = escapes && pi + 1 < p.count && p[pi] == backslash
            if escaped, p[pi + 1] == t[ti] {
                pi += 2
                ti += 1
            } else if !escaped, pi < p.count, p[pi] == UInt8(ascii: "?") {
                pi += 1
                ti += characterLength(at: ti)
            } else if !escaped, pi < p.count, p[pi] == t[ti], p[pi] != UInt8(ascii: "*") {
                pi += 1
                ti += 1
            } else if !escaped, pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += characterLength(at: mark)
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
