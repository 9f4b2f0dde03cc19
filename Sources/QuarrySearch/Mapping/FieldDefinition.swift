import QuarryCore

/// One mapped leaf field, flattened to its dotted path (`dns.question.name`, `message.keyword`).
///
/// A class, immutable once built: indexing looks definitions up for every value of every document, and sharing one
/// reference costs a single retain where a struct would retain each of its members.
public final class FieldDefinition: Sendable {
    public let path: String
    public let type: FieldType
    /// Dense number of the field within its index, stable while the process runs; indexes per-field tables.
    let ordinal: Int
    let format: DateFormat
    let ignoreAbove: Int?
    let analyzer: Analyzer
    let searchAnalyzer: Analyzer
    let indexed: Bool
    let docValues: Bool
    /// `store: true`: the hit's `fields` carry its values when `stored_fields` names it.
    let stored: Bool
    let nullValue: JSON?
    let ignoreMalformed: Bool
    let coerce: Bool
    /// A `constant_keyword`'s value.
    let constantValue: String?
    /// A keyword field's normalizer, applied to values as they are indexed and to term-level query values.
    let normalizer: Normalizer?
    /// Sub-fields declared under `fields`.
    let multiFields: [FieldDefinition]
    /// The field whose `fields` declare this one.
    let parentPath: String?

    /// Reads a leaf definition (`{"type": "keyword", "ignore_above": 256}`).
    init(
        path: String,
        definition: JSONObject,
        ordinal: Int,
        multiFields: [FieldDefinition] = [],
        parentPath: String? = nil,
        normalizers: [String: Normalizer] = Normalizer.builtIn
    ) throws(StoreError) {
        self.path = path
        self.ordinal = ordinal
        self.multiFields = multiFields
        self.parentPath = parentPath
        var format = DateFormat.defaultFormat
        var ignoreAbove: Int?
        var analyzer = Analyzer.standard
        var searchAnalyzer = Analyzer.standard
        var indexed = true
        var docValues = true
        var stored = false
        var nullValue: JSON?
        var ignoreMalformed = false
        var coerce = true
        var constantValue: String?
        var normalizer: Normalizer?
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
                "locale", "split_queries_on_whitespace", "dynamic", "enabled", "ignore_z_value":
                if key == "doc_values" { docValues = value.boolValue ?? true }
                if key == "store" { stored = value.boolValue ?? (value.stringValue == "true") }
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
                guard let name = value.stringValue, let named = Analyzer.named(name) else {
                    throw .mapperParsing(
                        "Failed to parse mapping: analyzer [\(value.stringValue ?? value.description)] has not been "
                            + "configured in mappings"
                    )
                }
                if key == "analyzer" {
                    analyzer = named
                    if definition["search_analyzer"] == nil { searchAnalyzer = analyzer }
                } else if key == "search_analyzer" {
                    searchAnalyzer = named
                }
            case "index": indexed = value.boolValue ?? (value.stringValue != "false")
            case "null_value": nullValue = value
            case "ignore_malformed": ignoreMalformed = value.boolValue ?? false
            case "coerce": coerce = value.boolValue ?? true
            case "value": constantValue = value.stringValue
            case "normalizer":
                guard type == .keyword else {
                    throw .mapperParsing(
                        "unknown parameter [normalizer] on mapper [\(path.lastPathComponent)] of type [\(typeName)]"
                    )
                }
                guard let name = value.stringValue, let named = normalizers[name] else {
                    throw .mapperParsing(
                        "Failed to parse mapping: normalizer [\(value.stringValue ?? value.serialized())] not found "
                            + "for field [\(path.lastPathComponent)]"
                    )
                }
                normalizer = named
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
        self.format = format
        self.ignoreAbove = ignoreAbove
        self.analyzer = analyzer
        self.searchAnalyzer = searchAnalyzer
        self.indexed = indexed
        self.docValues = docValues
        self.stored = stored
        self.nullValue = nullValue
        self.ignoreMalformed = ignoreMalformed
        self.coerce = coerce
        self.constantValue = constantValue
        self.normalizer = normalizer
    }

    /// A keyword value as the field indexes it: normalized, when the field has a normalizer.
    func normalized(_ text: String) -> String {
        normalizer?.normalize(text) ?? text
    }
}

extension String {
    var lastPathComponent: String {
        guard let dot = lastIndex(of: ".") else { return self }
        return String(self[index(after: dot)...])
    }
}
