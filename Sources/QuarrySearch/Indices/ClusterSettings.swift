import GRDB
public import QuarryCore

/// The cluster-wide settings Quarry knows, as `PUT /_cluster/settings` sets them: persistent ones in the catalog
/// (they survive a restart), transient ones in memory (Elasticsearch 8 still accepts them, deprecated).
public struct ClusterSettings: Sendable, Equatable {
    /// `action.destructive_requires_name`: deleting indices by a wildcard or `_all` is refused (Elasticsearch 8's
    /// default, true).
    public static let destructiveRequiresName = "action.destructive_requires_name"
    /// The settings Quarry accepts, with their defaults.
    public static let defaults: JSONObject = [destructiveRequiresName: "true"]

    public var persistent: JSONObject = [:]
    public var transient: JSONObject = [:]

    public init() {}

    /// The value in force: transient over persistent over the default.
    public func value(_ key: String) -> JSON? {
        transient[key] ?? persistent[key] ?? Self.defaults[key]
    }

    public var destructiveRequiresName: Bool {
        value(Self.destructiveRequiresName)?.stringValue != "false"
    }

    /// `{"action": {"destructive_requires_name": false}}` as `["action.destructive_requires_name": false]`.
    public static func flattened(_ body: JSONObject, prefix: String = "") -> JSONObject {
        var flat: JSONObject = [:]
        for (key, value) in body {
            if case .object(let inner) = value {
                for (name, leaf) in flattened(inner, prefix: prefix + key + ".") { flat[name] = leaf }
            } else {
                flat[prefix + key] = value
            }
        }
        return flat
    }

    /// Settings as Elasticsearch shows them without `flat_settings`: `{"action": {"destructive_requires_name": …}}`.
    public static func nested(_ settings: JSONObject) -> JSON {
        var root = JSON.object([:])
        for (key, value) in settings { root.setNested(path: key.split(separator: ".").map(String.init), value: value) }
        return root
    }

    /// Applies a `PUT /_cluster/settings` body to `settings`: a value sets a setting, null resets it; an unknown
    /// setting or a value of the wrong type is refused as Elasticsearch refuses it, and then nothing changes.
    static func apply(_ body: JSONObject, to settings: JSONObject, scope: String) throws(StoreError) -> JSONObject {
        var result = settings
        for (key, value) in flattened(body) {
            guard defaults[key] != nil else { throw .illegalArgument("\(scope) setting [\(key)], not recognized") }
            switch value {
            case .null: result[key] = nil
            case .bool(let flag): result[key] = .string(String(flag))
            case .string(let text) where text == "true" || text == "false": result[key] = .string(text)
            default:
                throw .illegalArgument(
                    "Failed to parse value [\(value.stringValue ?? value.serialized())] as only [true] or [false] are allowed."
                )
            }
        }
        return result
    }
}
