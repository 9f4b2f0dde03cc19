/// "Did you mean …?" for a name that is not one of the known ones: the closest known name by edit distance
/// (Levenshtein, ignoring case), when it is close enough to be the intended one.
public enum Suggestion {
    /// The known name nearest to `name`, within 1 edit for names up to 4 characters, 2 up to 8, 3 beyond; nil when
    /// none is that near.
    public static func closest(to name: String, in known: some Sequence<String>) -> String? {
        let target = Array(name.lowercased())
        let limit = target.count <= 4 ? 1 : target.count <= 8 ? 2 : 3
        var best: (name: String, distance: Int)?
        for candidate in known {
            let distance = editDistance(target, Array(candidate.lowercased()))
            if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best?.name
    }

    /// ` (did you mean 'x'?)`, or nothing.
    public static func hint(for name: String, in known: some Sequence<String>) -> String {
        closest(to: name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
