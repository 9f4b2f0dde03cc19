import QuarryCore

/// What `_field_caps` says of one field in one index: its type and whether Quarry can search and aggregate it.
public struct FieldCapability: Sendable, Hashable {
    public var type: String
    public var searchable: Bool
    public var aggregatable: Bool
    public var isMetadata: Bool
}

extension Mappings {
    /// Every mapped path of the index (leaf fields, multi-fields and objects) with its capability. Text is searchable
    /// and not aggregatable; keyword, numbers, dates, IPs and booleans are aggregatable when they keep doc values;
    /// a field with `index: false` is not searchable; types Quarry keeps in `_source` without indexing them
    /// (`geo_point`, `binary`, …) are neither, since no query matches them here.
    public var capabilities: [String: FieldCapability] {
        var result: [String: FieldCapability] = [:]
        for (path, definition) in fields {
            let family = definition.type.family
            let searchable = definition.indexed && family != .unindexed && family != .object
            let aggregatable =
                definition.docValues && [.keyword, .integer, .floating, .boolean, .date, .ip].contains(family)
            result[path] = FieldCapability(
                type: definition.type.rawValue,
                searchable: searchable,
                aggregatable: aggregatable,
                isMetadata: false
            )
        }
        for path in objects.keys where !path.isEmpty && result[path] == nil {
            var node: JSON? = .object(json)
            for component in path.split(separator: ".") { node = node?["properties"]?[String(component)] }
            result[path] = FieldCapability(
                type: node?["type"]?.stringValue == "nested" ? "nested" : "object",
                searchable: false,
                aggregatable: false,
                isMetadata: false
            )
        }
        return result
    }

    /// The metadata fields `_field_caps` lists for a pattern that matches them (`*`, `_*`, or the name).
    public static let metadataCapabilities: [String: FieldCapability] = [
        "_id": .init(type: "_id", searchable: true, aggregatable: false, isMetadata: true),
        "_index": .init(type: "_index", searchable: true, aggregatable: true, isMetadata: true),
        "_source": .init(type: "_source", searchable: false, aggregatable: false, isMetadata: true),
        "_seq_no": .init(type: "_seq_no", searchable: true, aggregatable: true, isMetadata: true),
        "_version": .init(type: "_version", searchable: false, aggregatable: true, isMetadata: true),
        "_routing": .init(type: "_routing", searchable: true, aggregatable: false, isMetadata: true),
        "_ignored": .init(type: "_ignored", searchable: true, aggregatable: false, isMetadata: true),
    ]
}
