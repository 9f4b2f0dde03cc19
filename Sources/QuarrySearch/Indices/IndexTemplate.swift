public import QuarryCore

/// A composable index template (`PUT _index_template/NAME`): settings, mappings and aliases applied to an index
/// whose name matches one of `index_patterns` when a write creates it.
public struct IndexTemplate: Sendable {
    public var name: String
    /// The body as given, returned by `GET _index_template`.
    public var body: JSONObject
    public var patterns: [String]
    public var priority: Int64

    /// Validates a template body.
    /// - Throws: ``StoreError`` for a body ES would refuse.
    public init(name: String, body: JSONObject) throws(StoreError) {
        self.name = name
        var normalized = body
        switch body["index_patterns"] {
        case .string(let pattern)?:
            patterns = [pattern]
            normalized["index_patterns"] = [.string(pattern)]
        case .array(let list)?:
            patterns = list.compactMap(\.stringValue)
        default:
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: index patterns are missing;",
                status: 400
            )
        }
        for key in body.keys {
            let known = [
                "index_patterns", "template", "priority", "version", "_meta", "composed_of", "data_stream",
                "allow_auto_create", "ignore_missing_component_templates", "deprecated",
            ]
            if !known.contains(key) {
                throw .xContentParse("[1:2] [index_template] unknown field [\(key)]")
            }
        }
        priority = body["priority"]?.intValue ?? 0
        if let template = body["template"]?.objectValue {
            let settings = try IndexMetadata.flattenSettings(template["settings"]?.objectValue ?? [:])
            if let mappings = template["mappings"]?.objectValue {
                _ = try Mappings(json: mappings, settings: settings)
            }
        }
        self.body = normalized
    }

    public var settings: JSONObject { body["template"]?["settings"]?.objectValue ?? [:] }
    public var mappings: JSONObject { body["template"]?["mappings"]?.objectValue ?? [:] }
    public var aliases: JSONObject { body["template"]?["aliases"]?.objectValue ?? [:] }

    func matches(_ index: String) -> Bool {
        patterns.contains { Wildcard.matches($0, index) }
    }
}
