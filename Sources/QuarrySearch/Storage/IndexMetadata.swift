public import QuarryCore

/// What an index is, apart from its documents: identity, settings, mappings and aliases.
public struct IndexMetadata: Sendable {
    public var name: String
    public var uuid: String
    public var creationDate: Int64
    /// Settings with their full flat names (`index.number_of_shards`), values as ES reports them (strings).
    public var settings: JSONObject
    public var mappings: Mappings
    /// Alias name → alias definition (`{}` or `{filter, routing, is_write_index}`).
    public var aliases: JSONObject

    /// `index.max_result_window`, 10,000 unless set.
    public var maxResultWindow: Int { limit(.maxResultWindow) }

    /// An index-level search limit: its setting's value, or Elasticsearch's default.
    func limit(_ limit: SearchLimit) -> Int {
        settings[limit.rawValue].flatMap { $0.intValue ?? $0.stringValue.flatMap { Int64($0) } }.map { Int($0) }
            ?? limit.defaultValue
    }

    /// The index-level settings that bound what one search may ask for, with Elasticsearch's defaults.
    enum SearchLimit: String, CaseIterable {
        case maxResultWindow = "index.max_result_window"
        case maxInnerResultWindow = "index.max_inner_result_window"
        case maxDocvalueFieldsSearch = "index.max_docvalue_fields_search"
        case maxScriptFields = "index.max_script_fields"
        case maxRescoreWindow = "index.max_rescore_window"
        case maxTermsCount = "index.max_terms_count"
        case maxRegexLength = "index.max_regex_length"

        var defaultValue: Int {
            switch self {
            case .maxResultWindow, .maxRescoreWindow: 10_000
            case .maxInnerResultWindow: 100
            case .maxDocvalueFieldsSearch: 100
            case .maxScriptFields: 32
            case .maxTermsCount: 65_536
            case .maxRegexLength: 1_000
            }
        }
    }

    /// Flattens `{"index": {"number_of_shards": 1}}`, `{"index.number_of_shards": 1}` and
    /// `{"number_of_shards": 1}` to `index.number_of_shards: "1"`.
    public static func flattenSettings(_ settings: JSONObject) throws(StoreError) -> JSONObject {
        var flat: JSONObject = [:]
        func visit(_ object: JSONObject, _ prefix: String) {
            for (key, value) in object {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if case .object(let inner) = value {
                    visit(inner, path)
                } else {
                    flat[path.hasPrefix("index.") ? path : "index." + path] = value.settingText
                }
            }
        }
        visit(settings, "")
        if let shards = flat["index.number_of_shards"],
            Int(shards.stringValue ?? "") == nil
                || Int(shards.stringValue ?? "")! < 1
        {
            throw .illegalArgument(
                "Failed to parse value [\(shards.stringValue ?? "")] for setting [index.number_of_shards] must be >= 1"
            )
        }
        for limit in SearchLimit.allCases {
            guard let value = flat[limit.rawValue] else { continue }
            let text = value.stringValue ?? value.serialized()
            guard let number = Int(text) else {
                throw .illegalArgument("Failed to parse value [\(text)] for setting [\(limit.rawValue)]")
            }
            guard number >= 0 else {
                throw .illegalArgument("Failed to parse value [\(text)] for setting [\(limit.rawValue)] must be >= 0")
            }
        }
        return flat
    }

    /// The settings as `GET /{index}/_settings` nests them.
    public var nestedSettings: JSON {
        var root = JSON.object([:])
        for (key, value) in settings {
            root.setNested(path: key.split(separator: ".").map(String.init), value: value)
        }
        return root
    }

    /// The body of `GET /{index}` for this index.
    public var json: JSON {
        [
            "aliases": .object(aliases),
            "mappings": .object(mappings.json),
            "settings": nestedSettings,
        ]
    }
}

extension JSON {
    /// ES reports every setting value as a string.
    var settingText: JSON {
        switch self {
        case .string: self
        case .int(let v): .string(String(v))
        case .double(let v): .string(JSON.format(v))
        case .bool(let v): .string(v ? "true" : "false")
        case .array(let values): .array(values.map(\.settingText))
        default: self
        }
    }

    mutating func setNested(path: [String], value: JSON) {
        guard let first = path.first else {
            self = value
            return
        }
        var object = objectValue ?? [:]
        var child = object[first] ?? .object([:])
        child.setNested(path: Array(path.dropFirst()), value: value)
        object[first] = child
        self = .object(object)
    }
}
