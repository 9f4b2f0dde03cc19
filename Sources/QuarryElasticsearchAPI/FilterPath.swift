import QuarryCore

/// ES's `filter_path`: comma-separated dotted paths with `*` and `**` wildcards; a leading `-` excludes.
struct FilterPath {
    var includes: [[String]] = []
    var excludes: [[String]] = []

    init(_ specification: String) {
        for part in specification.split(separator: ",") {
            let text = part.trimmingSpace
            if text.hasPrefix("-") {
                excludes.append(text.dropFirst().split(separator: ".").map(String.init))
            } else {
                includes.append(text.split(separator: ".").map(String.init))
            }
        }
    }

    func apply(_ json: JSON) -> JSON {
        var result = includes.isEmpty ? json : (Self.keep(json, includes) ?? .object([:]))
        if !excludes.isEmpty { result = Self.drop(result, excludes) ?? .object([:]) }
        return result
    }

    private static func matches(_ pattern: String, _ key: String) -> Bool {
        pattern == "**" || Wildcard.matches(pattern, key)
    }

    private static func keep(_ json: JSON, _ paths: [[String]]) -> JSON? {
        if paths.contains(where: { $0.isEmpty }) { return json }
        switch json {
        case .array(let elements):
            let kept = elements.compactMap { keep($0, paths) }
            return kept.isEmpty ? nil : .array(kept)
        case .object(let object):
            var result = JSONObject()
            for (key, value) in object {
                var next: [[String]] = []
                for path in paths where matches(path[0], key) {
                    next.append(Array(path.dropFirst()))
                    if path[0] == "**" { next.append(path) }
                }
                guard !next.isEmpty, let kept = keep(value, next) else { continue }
                result[key] = kept
            }
            return result.isEmpty ? nil : .object(result)
        default:
            return nil
        }
    }

    private static func drop(_ json: JSON, _ paths: [[String]]) -> JSON? {
        if paths.contains(where: { $0.isEmpty }) { return nil }
        switch json {
        case .array(let elements): return .array(elements.compactMap { drop($0, paths) })
        case .object(let object):
            var result = JSONObject()
            for (key, value) in object {
                let next = paths.filter { matches($0[0], key) }.map { Array($0.dropFirst()) }
                if next.isEmpty {
                    result[key] = value
                } else if let kept = drop(value, next) {
                    result[key] = kept
                }
            }
            return .object(result)
        default: return json
        }
    }
}

extension Substring {
    var trimmingSpace: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
