public import QuarryCore

/// One mapped leaf field, flattened to its dotted path (`dns.question.name`, `message.keyword`).
public struct FieldDefinition: Sendable, Hashable {
    public var path: String
    public var type: FieldType
    var format: DateFormat = .defaultFormat
    var ignoreAbove: Int?
    var analyzer: Analyzer = .standard
    var searchAnalyzer: Analyzer = .standard
    var indexed = true
    var docValues = true
    var nullValue: JSON?
    var ignoreMalformed = false
    var coerce = true
    /// A `constant_keyword`'s value.
    var constantValue: String?
    /// Sub-fields declared under `fields`, by full path.
    var multiFields: [String] = []

    /// Reads a leaf definition (`{"type": "keyword", "ignore_above": 256}`).
    init(path: String, definition: JSONObject) throws(StoreError) {
        self.path = path
        let typeName = definition["type"]?.stringValue ?? "object"
        guard let type = FieldType(rawValue: typeName) else {
            throw .mapperParsing("No handler for type [\(typeName)] declared on field [\(path.lastPathComponent)]")
        }
        self.type = type
        for (key, value) in definition {
            switch key {
            case "type", "fields", "properties", "doc_values", "store", "norms", "index_options", "boost",
                "copy_to", "scaling_factor", "eager_global_ordinals", "similarity", "term_vector", "meta",
                "position_increment_gap", "fielddata", "time_series_dimension", "time_series_metric", "path",
                "locale", "split_queries_on_whitespace", "normalizer", "dynamic", "enabled", "ignore_z_value":
                if key == "doc_values" { docValues = value.boolValue ?? true }
                if key == "enabled", value.boolValue == false { indexed = false }
            case "format":
                guard let text = value.stringValue else {
                    throw .mapperParsing("Failed to parse mapping: [format] must be a string")
                }
                do {
                    format = try DateFormat(text)
                } catch {
                    throw .mapperParsing(
                        "Failed to parse mapping: Invalid format: [\(text)]: \(error.reason)"
                    )
                }
            case "ignore_above":
                guard let limit = value.intValue, limit >= 0 else {
                    throw .mapperParsing("Failed to parse mapping: [ignore_above] must be a positive integer")
                }
                ignoreAbove = Int(limit)
            case "analyzer", "search_analyzer", "search_quote_analyzer":
                guard let name = value.stringValue, let analyzer = Analyzer.named(name) else {
                    throw .mapperParsing(
                        "Failed to parse mapping: analyzer [\(value.stringValue ?? value.description)] has not been "
                            + "configured in mappings"
                    )
                }
                if key == "analyzer" {
                    self.analyzer = analyzer
                    if definition["search_analyzer"] == nil { searchAnalyzer = analyzer }
                } else if key == "search_analyzer" {
                    searchAnalyzer = analyzer
                }
            case "index": indexed = value.boolValue ?? (value.stringValue != "false")
            case "null_value": nullValue = value
            case "ignore_malformed": ignoreMalformed = value.boolValue ?? false
            case "coerce": coerce = value.boolValue ?? true
            case "value": constantValue = value.stringValue
            default:
                throw .mapperParsing(
                    "unknown parameter [\(key)] on mapper [\(path.lastPathComponent)] of type [\(typeName)]"
                )
            }
        }
        if type == .keyword || type.family != .text {
            analyzer = .keyword
            searchAnalyzer = .keyword
        }
    }
}

extension String {
    var lastPathComponent: String {
        guard let dot = lastIndex(of: ".") else { return self }
        return String(self[index(after: dot)...])
    }
}
