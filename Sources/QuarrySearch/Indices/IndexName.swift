/// Elasticsearch's rules for index and alias names.
public enum IndexName {
    /// Characters ES forbids in index names, in the order its message lists them.
    static let forbidden: [Character] = [" ", "\"", "*", "\\", "<", "|", ",", ">", "/", "?"]

    /// Checks `name` and throws ES's `invalid_index_name_exception` when it breaks a rule.
    public static func validate(_ name: String) throws(StoreError) {
        if name.isEmpty { throw .invalidIndexName(name, "must not be empty") }
        if name.contains(where: { forbidden.contains($0) }) {
            throw .invalidIndexName(
                name,
                "must not contain the following characters [\(forbidden.map(String.init).joined(separator: ", "))]"
            )
        }
        if name.contains("#") { throw .invalidIndexName(name, "must not contain '#'") }
        if name.contains(":") { throw .invalidIndexName(name, "must not contain ':'") }
        if let first = name.first, first == "_" || first == "-" || first == "+" {
            throw .invalidIndexName(name, "must not start with '_', '-', or '+'")
        }
        if name != name.lowercased() { throw .invalidIndexName(name, "must be lowercase") }
        if name == "." || name == ".." { throw .invalidIndexName(name, "must not be '.' or '..'") }
        if name.utf8.count > 255 {
            throw .invalidIndexName(name, "index name is too long, (\(name.utf8.count) > 255)")
        }
    }

    /// Whether an index expression names indices by a pattern (`*`, `_all`) rather than by name, which
    /// `action.destructive_requires_name` refuses for deletes. `*,-*` names nothing and passes, as in Elasticsearch.
    public static func namesByPattern(_ expression: String) -> Bool {
        if expression == "*,-*" { return false }
        return expression.split(separator: ",").contains { $0 == "_all" || $0.contains("*") }
    }
}

/// How an index expression that names nothing is treated (`ignore_unavailable`, `allow_no_indices`,
/// `expand_wildcards`).
public struct IndicesOptions: Sendable, Hashable {
    public var ignoreUnavailable: Bool
    public var allowNoIndices: Bool
    public var expandHidden: Bool

    public init(ignoreUnavailable: Bool = false, allowNoIndices: Bool = true, expandHidden: Bool = false) {
        self.ignoreUnavailable = ignoreUnavailable
        self.allowNoIndices = allowNoIndices
        self.expandHidden = expandHidden
    }

    /// Defaults of search, count and most read APIs.
    public static let search = IndicesOptions()
    /// Defaults of APIs that act on named indices (delete, get, mapping): a missing concrete index is an error.
    public static let strict = IndicesOptions(ignoreUnavailable: false, allowNoIndices: true)
}
