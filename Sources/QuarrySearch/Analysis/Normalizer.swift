import Foundation
import QuarryCore

/// A keyword field's `normalizer`: the character-level filters Elasticsearch applies to a keyword value before
/// indexing it (so doc values and terms hold the normalized form, `_source` the original) and to the value of a
/// `term`, `terms`, `prefix` or `wildcard` query on the field.
///
/// The built-in `lowercase` normalizer is always there; custom ones come from the index settings
/// (`analysis.normalizer.NAME.filter`). Of Elasticsearch's normalizer filters Quarry implements `lowercase`,
/// `uppercase` and `asciifolding`; a mapping that names another is refused rather than silently left unnormalized.
public struct Normalizer: Sendable, Hashable {
    enum Filter: String, Sendable, Hashable {
        case lowercase, uppercase, asciifolding
    }

    let filters: [Filter]

    /// Applies the filters in order.
    func normalize(_ text: String) -> String {
        var text = text
        for filter in filters {
            switch filter {
            case .lowercase: text = text.lowercased()
            case .uppercase: text = text.uppercased()
            case .asciifolding: text = text.folding(options: .diacriticInsensitive, locale: nil)
            }
        }
        return text
    }

    /// The normalizers every index has.
    static let builtIn: [String: Normalizer] = ["lowercase": Normalizer(filters: [.lowercase])]

    /// The built-in normalizers and those declared in flattened index settings
    /// (`index.analysis.normalizer.NAME.filter`).
    /// - Throws: `illegal_argument_exception` for a filter Quarry does not implement, as Elasticsearch does for an
    ///   unknown one.
    static func declared(in settings: JSONObject) throws(StoreError) -> [String: Normalizer] {
        var normalizers = builtIn
        let prefix = "index.analysis.normalizer."
        for (key, value) in settings where key.hasPrefix(prefix) && key.hasSuffix(".filter") {
            let name = String(key.dropFirst(prefix.count).dropLast(".filter".count))
            let names: [String] =
                switch value {
                case .array(let items): items.compactMap(\.stringValue)
                case .string(let text): text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                default: []
                }
            var filters: [Filter] = []
            for filterName in names {
                guard let filter = Filter(rawValue: filterName) else {
                    throw .illegalArgument(
                        "Custom normalizer [\(name)] may not use filter [\(filterName)]: Quarry implements "
                            + "lowercase, uppercase and asciifolding"
                    )
                }
                filters.append(filter)
            }
            normalizers[name] = Normalizer(filters: filters)
        }
        for (key, _) in settings where key.hasPrefix(prefix) && key.hasSuffix(".type") {
            let name = String(key.dropFirst(prefix.count).dropLast(".type".count))
            if normalizers[name] == nil { normalizers[name] = Normalizer(filters: []) }
        }
        return normalizers
    }
}
