public import QuarryCore

/// A search request: the body of `_search` with its URL parameters applied.
public struct SearchRequest: Sendable {
    public var query: Query = .matchAll(boost: 1)
    public var postFilter: Query?
    public var from = 0
    public var size = 10
    public var sort: [SortField] = []
    public var searchAfter: [JSON]?
    public var source = SourceFilter()
    /// The body or URL named `_source`: with `stored_fields`, hits carry their source only then.
    public var sourceRequested = false
    /// `fields`: values read from the source through the mapping, in each hit's `fields`.
    public var fields: [FieldAndFormat] = []
    /// `docvalue_fields`: values as the index keeps them for sorting and aggregations, in each hit's `fields`.
    public var docvalueFields: [FieldAndFormat] = []
    /// `stored_fields`: nil when the request does not say; `.none` (`_none_`) leaves out `_id` and `_source`.
    public var storedFields: StoredFieldsRequest?
    /// `rescore`: query rescorers applied in turn to each index's best hits.
    public var rescorers: [Rescorer] = []
    /// How many `script_fields` the body asks for: Quarry runs no scripts, so any is refused.
    var scriptFieldCount = 0
    /// `explain`: each hit says how its score came about, and which shard and node it came from.
    public var explain = false
    public var trackTotalHits: TotalHitsTracking = .upTo(10_000)
    public var trackScores = false
    public var version = false
    public var seqNoPrimaryTerm = false
    public var minScore: Double?
    public var terminateAfter: Int?
    /// Where the previous page of a scroll ended: only hits after it in sort order are taken.
    var cursor: SearchCursor?
    /// How many document numbers each index had when the scroll was opened: documents written since are not seen.
    var snapshot: [String: Int]?
    /// `aggs`: what to compute over every matching document (before `post_filter`).
    public var aggregations: [AggregationRequest] = []
    /// `pit`: the point in time to search, and how long to keep it alive after this search (milliseconds).
    public var pointInTime: (id: String, keepAlive: Int64?)?

    public init() {}

    /// How `hits.total` is counted.
    public enum TotalHitsTracking: Sendable, Hashable {
        case exact
        case disabled
        case upTo(Int)
    }

    /// Reads a `_search` body.
    /// - Throws: ``StoreError`` as ES reports malformed search bodies.
    public init(body: JSON) throws(StoreError) {
        guard case .object(let object) = body else {
            throw .parsing("request body is required")
        }
        for (key, value) in object {
            switch key {
            case "query": query = try Query.parse(value)
            case "post_filter": postFilter = try Query.parse(value)
            case "from": from = try Self.integer(key, value)
            case "size": size = try Self.integer(key, value)
            case "sort": sort = try SortField.parseList(value)
            case "search_after":
                guard case .array(let values) = value else {
                    throw .parsing("[search_after] must be an array")
                }
                searchAfter = values
            case "_source":
                source = try SourceFilter(json: value)
                sourceRequested = source.enabled
            case "fields": fields = try FieldAndFormat.parseList(value, key: key)
            case "docvalue_fields": docvalueFields = try FieldAndFormat.parseList(value, key: key)
            case "stored_fields": storedFields = try StoredFieldsRequest.parse(value)
            case "explain": explain = value.boolValue ?? false
            case "track_total_hits":
                switch value {
                case .bool(let flag): trackTotalHits = flag ? .exact : .disabled
                case .int(-1): trackTotalHits = .disabled
                case .int(let limit) where limit >= 0:
                    trackTotalHits = limit == Int64(Int32.max) ? .exact : .upTo(Int(limit))
                default:
                    throw .illegalArgument(
                        "[track_total_hits] parameter must be positive or equals to -1, got \(value)"
                    )
                }
            case "track_scores": trackScores = value.boolValue ?? false
            case "version": version = value.boolValue ?? false
            case "seq_no_primary_term": seqNoPrimaryTerm = value.boolValue ?? false
            case "min_score":
                guard let score = value.doubleValue ?? value.stringValue.flatMap(Double.init) else {
                    throw .xContentParse("[min_score] failed to parse field [min_score]: not a number [\(value)]")
                }
                minScore = score
            case "terminate_after":
                terminateAfter = try Self.integer(key, value)
                if let limit = terminateAfter, limit <= 0 { throw .illegalArgument("terminateAfter must be > 0") }
            case "timeout":
                guard let text = value.stringValue else {
                    throw .xContentParse("[timeout] failed to parse field [timeout]")
                }
                try Self.validateTimeValue(text, setting: "timeout")
            case "pit":
                guard case .object(let pit) = value, let id = pit["id"]?.stringValue else {
                    throw .parsing("[pit] failed to parse field [id]")
                }
                for key in pit.map(\.key) where key != "id" && key != "keep_alive" {
                    throw .parsing("[pit] unknown field [\(key)]")
                }
                pointInTime = (
                    id,
                    try pit["keep_alive"].map { value throws(StoreError) in
                        guard let text = value.stringValue else {
                            throw .parsing("[pit] failed to parse field [keep_alive]")
                        }
                        return try Self.timeValueMilliseconds(text, setting: "keep_alive")
                    }
                )
            case "highlight", "profile", "_name", "indices_boost", "stats", "allow_partial_search_results",
                "batched_reduce_size", "ext":
                continue
            case "runtime_mappings":
                // Every runtime field runs a script (or reads one from the source in a scripting runtime); Quarry has
                // no scripting, and says so as Elasticsearch does with scripts disabled.
                if value.objectValue?.isEmpty == false { throw Self.scriptsDisabled }
            case "aggs", "aggregations":
                aggregations = try AggregationRequest.parseAll(value)
                for aggregation in aggregations {
                    guard case .bucketSort = aggregation.kind else { continue }
                    throw StoreError(
                        type: "action_request_validation_exception",
                        reason: "Validation Failed: 1: bucket_sort aggregation [\(aggregation.name)] must be declared "
                            + "inside of another aggregation;",
                        status: 400
                    )
                }
            case "script_fields":
                // Refused per index, after Elasticsearch's `index.max_script_fields` check.
                scriptFieldCount = value.objectValue?.count ?? 0
            case "rescore": rescorers = try Rescorer.parseList(value)
            case "collapse", "suggest", "knn", "retriever", "slice":
                throw .illegalArgument("[\(key)] is not supported by this store")
            default:
                throw .parsing("Unknown key for a \(value.tokenName) in [\(key)].")
            }
        }
    }

    /// Elasticsearch's answer to a script when `script.allowed_types` is `none`: Quarry runs no scripts.
    static let scriptsDisabled = StoreError.illegalArgument("cannot execute [inline] scripts")

    static func integer(_ key: String, _ value: JSON) throws(StoreError) -> Int {
        if let number = value.intValue, number >= Int64(Int32.min), number <= Int64(Int32.max) { return Int(number) }
        if case .string(let text) = value, let number = Int32(text) { return Int(number) }
        throw StoreError(
            type: "x_content_parse_exception",
            reason: "[\(key)] failed to parse field [\(key)]",
            status: 400,
            causedBy: .illegalArgument(
                value.stringValue.map { "For input string: \"\($0)\"" }
                    ?? "Numeric value (\(value)) out of range of int"
            )
        )
    }

    /// Checks a time value (`30s`, `1m`, `-1`) as Elasticsearch reads `timeout` settings.
    public static func validateTimeValue(_ text: String, setting: String) throws(StoreError) {
        _ = try timeValueMilliseconds(text, setting: setting)
    }

    /// A time value (`30s`, `14d`, `-1`) in milliseconds, as Elasticsearch reads them (`-1` stays `-1`).
    public static func timeValueMilliseconds(_ text: String, setting: String) throws(StoreError) -> Int64 {
        let units: [(String, Double)] = [
            ("nanos", 1e-6), ("micros", 1e-3), ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000),
            ("d", 86_400_000),
        ]
        if text == "-1" { return -1 }
        if text == "0" { return 0 }
        if let (unit, factor) = units.first(where: { text.hasSuffix($0.0) }),
            let number = Double(text.dropLast(unit.count)), number.isFinite, number >= 0,
            number * factor < 9.2e18
        {
            return Int64(number * factor)
        }
        throw StoreError(
            type: "parse_exception",
            reason: "failed to parse setting [\(setting)] with value [\(text)] as a time value: unit is missing or "
                + "unrecognized",
            status: 400
        )
    }

    /// Checks what the request asks of one index against that index's limits, as Elasticsearch's shards do.
    func validate(against metadata: IndexMetadata) throws(StoreError) {
        try validateWindow(maxResultWindow: metadata.maxResultWindow)
        let rescoreLimit = metadata.limit(.maxRescoreWindow)
        for rescorer in rescorers where rescorer.windowSize > rescoreLimit {
            throw .illegalArgument(
                "Rescore window [\(rescorer.windowSize)] is too large. It must be less than [\(rescoreLimit)]. This "
                    + "prevents allocating massive heaps for storing the results to be rescored. This limit can be set "
                    + "by changing the [index.max_rescore_window] index level setting."
            )
        }
        if scriptFieldCount > 0, size != 0 {
            let limit = metadata.limit(.maxScriptFields)
            if scriptFieldCount > limit {
                throw .illegalArgument(
                    "Trying to retrieve too many script_fields. Must be less than or equal to: [\(limit)] but was "
                        + "[\(scriptFieldCount)]. This limit can be set by changing the [index.max_script_fields] index "
                        + "level setting."
                )
            }
            throw Self.scriptsDisabled
        }
    }

    /// Checks `from` and `size` as ES does before running the query.
    func validateWindow(maxResultWindow: Int) throws(StoreError) {
        if from < 0 { throw .illegalArgument("[from] parameter cannot be negative, found [\(from)]") }
        if size < 0 { throw .illegalArgument("[size] parameter cannot be negative, found [\(size)]") }
        if searchAfter != nil, from > 0 {
            throw .illegalArgument("`from` parameter must be set to 0 when `search_after` is used.")
        }
        if from + size > maxResultWindow {
            throw .illegalArgument(
                "Result window is too large, from + size must be less than or equal to: [\(maxResultWindow)] but was "
                    + "[\(from + size)]. See the scroll api for a more efficient way to request large data sets. This "
                    + "limit can be set by changing the [index.max_result_window] index level setting."
            )
        }
    }
}

/// One sort key of a search.
public struct SortField: Sendable, Hashable {
    public enum Target: Sendable, Hashable {
        case score, doc
        /// `_shard_doc`: the index's position in the point in time, then the document number; the tiebreaker of
        /// point-in-time searches.
        case shardDoc
        case field(String)
    }

    public var target: Target
    public var descending: Bool
    /// `_last` (default), `_first`, or a value to use for documents without the field.
    public var missing: JSON?
    public var mode: String?
    public var unmappedType: String?

    static func parseList(_ json: JSON) throws(StoreError) -> [SortField] {
        switch json {
        case .array(let items):
            var result: [SortField] = []
            for item in items { result.append(try parse(item)) }
            return result
        default: return [try parse(json)]
        }
    }

    /// Reads one sort key (`"field"`, `{"field": "desc"}`, `{"field": {"order": …}}`).
    public static func parse(_ json: JSON) throws(StoreError) -> SortField {
        switch json {
        case .string(let name): return try SortField(name: name, order: nil)
        case .object(let object):
            guard object.count == 1, let (name, spec) = object.first else {
                throw .parsing("[sort] must have exactly one field per sort object")
            }
            switch spec {
            case .string(let order): return try SortField(name: name, order: order)
            case .object(let params):
                var field = try SortField(name: name, order: params["order"]?.stringValue)
                for (key, value) in params {
                    switch key {
                    case "order": continue
                    case "missing": field.missing = value
                    case "mode": field.mode = value.stringValue
                    case "unmapped_type": field.unmappedType = value.stringValue
                    case "format", "numeric_type", "nested": continue
                    default: throw .parsing("[field_sort] unknown field [\(key)]")
                    }
                }
                return field
            default: throw .parsing("[sort] unsupported sort specification for [\(name)]")
            }
        default: throw .parsing("[sort] unsupported sort specification")
        }
    }

    /// `_shard_doc` ascending: the tiebreaker added to a point-in-time search's sort.
    static let shardDocAscending = SortField(target: .shardDoc, descending: false)

    private init(target: Target, descending: Bool) {
        self.target = target
        self.descending = descending
    }

    init(name: String, order: String?) throws(StoreError) {
        switch name {
        case "_score": target = .score
        case "_doc": target = .doc
        case "_shard_doc": target = .shardDoc
        default: target = .field(name)
        }
        switch order?.lowercased() {
        case nil: descending = target == .score
        case "asc": descending = false
        case "desc": descending = true
        case let other?:
            throw .illegalArgument("No enum constant org.elasticsearch.search.sort.SortOrder.\(other.uppercased())")
        }
    }
}

/// `_source` filtering: on or off, and include/exclude patterns with wildcards.
public struct SourceFilter: Sendable, Hashable {
    public var enabled = true
    public var includes: [String] = []
    public var excludes: [String] = []

    public init(enabled: Bool = true, includes: [String] = [], excludes: [String] = []) {
        self.enabled = enabled
        self.includes = includes
        self.excludes = excludes
    }

    init(json: JSON) throws(StoreError) {
        switch json {
        case .bool(let flag): enabled = flag
        case .string(let pattern): includes = [pattern]
        case .array(let patterns): includes = patterns.compactMap(\.stringValue)
        case .object(let object):
            for (key, value) in object {
                let list: [String]
                switch value {
                case .string(let pattern): list = [pattern]
                case .array(let patterns) where patterns.allSatisfy({ $0.stringValue != nil }):
                    list = patterns.compactMap(\.stringValue)
                default:
                    throw .parsing("Unknown key for a \(value.tokenName) in [\(key)].")
                }
                switch key {
                case "includes", "include": includes = list
                case "excludes", "exclude": excludes = list
                default: throw .parsing("Unknown key for a \(value.tokenName) in [\(key)].")
                }
            }
        default: throw .parsing("Unknown key for a \(json.tokenName) in [_source].")
        }
    }

    public var isFiltering: Bool { !includes.isEmpty || !excludes.isEmpty }

    /// The filter prepared for many documents: exact paths in sets, wildcard patterns apart.
    public func compiled() -> CompiledSourceFilter { CompiledSourceFilter(self) }

    /// The filtered source.
    public func apply(_ source: JSON) -> JSON { compiled().apply(source) }
}

/// A ``SourceFilter`` ready to apply to every hit of a search: what would otherwise be wildcard matching of each
/// pattern against each path becomes set lookups for the (usual) patterns without wildcards.
public struct CompiledSourceFilter: Sendable {
    let includeExact: Set<String>
    let includeWildcards: [String]
    /// Every object path that leads to an exact include (`client` for `client.ip`).
    let includeAncestors: Set<String>
    let excludeExact: Set<String>
    let excludeWildcards: [String]
    let hasIncludes: Bool

    init(_ filter: SourceFilter) {
        func isWildcard(_ pattern: String) -> Bool {
            pattern.utf8.contains(UInt8(ascii: "*")) || pattern.utf8.contains(UInt8(ascii: "?"))
        }
        includeExact = Set(filter.includes.filter { !isWildcard($0) })
        includeWildcards = filter.includes.filter(isWildcard)
        var ancestors = Set<String>()
        for pattern in includeExact {
            var path = Substring(pattern)
            while let dot = path.lastIndex(of: ".") {
                path = path[..<dot]
                ancestors.insert(String(path))
            }
        }
        includeAncestors = ancestors
        excludeExact = Set(filter.excludes.filter { !isWildcard($0) })
        excludeWildcards = filter.excludes.filter(isWildcard)
        hasIncludes = !filter.includes.isEmpty
    }

    private func included(_ path: String) -> Bool {
        !hasIncludes || includeExact.contains(path) || includeWildcards.contains { Wildcard.matches($0, path) }
    }

    private func excluded(_ path: String) -> Bool {
        excludeExact.contains(path) || excludeWildcards.contains { Wildcard.matches($0, path) }
    }

    private func couldMatchBelow(_ path: String) -> Bool {
        !hasIncludes || !includeWildcards.isEmpty || includeAncestors.contains(path)
    }

    private var hasExcludes: Bool { !excludeExact.isEmpty || !excludeWildcards.isEmpty }

    /// What of the member at `path` this filter could return, for parsing a stored source pruned
    /// (``JSON/parse(_:choosing:)``): the filter applied to the pruned tree answers as on the whole one.
    public func choice(_ path: String) -> JSONMemberChoice {
        if hasExcludes, excluded(path) { return .drop }
        if included(path) { return .keep }
        return couldMatchBelow(path) ? .descend : .drop
    }

    /// The filtered source.
    public func apply(_ source: JSON) -> JSON {
        filter(source, prefix: "", includeAll: false) ?? .object([:])
    }

    /// The filtered source of a stored source's bytes, parsed pruned (an unreadable source reads as `{}`).
    public func apply(stored bytes: some Collection<UInt8>) -> JSON {
        apply((try? JSON.parse(bytes, choosing: choice)) ?? .object([:]))
    }

    private func filter(_ value: JSON, prefix: String, includeAll: Bool) -> JSON? {
        switch value {
        case .object(let object):
            var result = JSONObject()
            for (key, child) in object {
                let path = prefix.isEmpty ? key : prefix + "." + key
                if hasExcludes, excluded(path) { continue }
                if includeAll || included(path) {
                    if !hasExcludes || !child.isContainer {
                        result[key] = child
                    } else if let filtered = filter(child, prefix: path, includeAll: true) {
                        result[key] = filtered
                    }
                    continue
                }
                guard child.isContainer, couldMatchBelow(path) else { continue }
                if let filtered = filter(child, prefix: path, includeAll: false) {
                    if case .object(let inner) = filtered, inner.isEmpty { continue }
                    if case .array(let inner) = filtered, inner.isEmpty { continue }
                    result[key] = filtered
                }
            }
            return .object(result)
        case .array(let elements):
            let filtered = elements.compactMap { element -> JSON? in
                if includeAll {
                    return element.isContainer ? filter(element, prefix: prefix, includeAll: true) : element
                }
                return element.isContainer ? filter(element, prefix: prefix, includeAll: false) : nil
            }.filter {
                if case .object(let o) = $0 { return !o.isEmpty }
                return true
            }
            return .array(filtered)
        default:
            return includeAll ? value : nil
        }
    }
}

extension JSON {
    var isContainer: Bool {
        switch self {
        case .object, .array: true
        default: false
        }
    }
}

/// A query rescorer (`rescore.query`): the best `window_size` hits of each index scored again, their first score
/// weighed with the rescore query's.
public struct Rescorer: Sendable {
    public enum ScoreMode: String, Sendable {
        case total, multiply, avg, max, min
    }

    public var windowSize = 10
    public var query: Query
    public var queryWeight = 1.0
    public var rescoreQueryWeight = 1.0
    public var scoreMode = ScoreMode.total

    /// Reads `rescore`: one rescorer or a list of them.
    static func parseList(_ json: JSON) throws(StoreError) -> [Rescorer] {
        switch json {
        case .array(let items):
            var result: [Rescorer] = []
            for item in items { result.append(try parse(item)) }
            return result
        default: return [try parse(json)]
        }
    }

    static func parse(_ json: JSON) throws(StoreError) -> Rescorer {
        guard case .object(let object) = json else { throw .parsing("[rescore] must be an object") }
        var windowSize = 10
        var body: JSONObject?
        for (key, value) in object {
            switch key {
            case "window_size":
                guard let size = value.intValue, size >= 0 else {
                    throw .illegalArgument("[window_size] must be greater than or equal to 0")
                }
                windowSize = Int(size)
            case "query": body = value.objectValue
            default: throw .parsing("rescore doesn't support rescorer with name [\(key)]")
            }
        }
        guard let body, let rescoreQuery = body["rescore_query"] else {
            throw .parsing("missing rescore type")
        }
        var rescorer = Rescorer(windowSize: windowSize, query: try Query.parse(rescoreQuery))
        for (key, value) in body {
            switch key {
            case "rescore_query": continue
            case "query_weight": rescorer.queryWeight = value.doubleValue ?? 1
            case "rescore_query_weight": rescorer.rescoreQueryWeight = value.doubleValue ?? 1
            case "score_mode":
                guard let mode = value.stringValue.flatMap({ ScoreMode(rawValue: $0.lowercased()) }) else {
                    throw .illegalArgument("illegal score_mode [\(value.stringValue ?? value.serialized())]")
                }
                rescorer.scoreMode = mode
            default: throw .parsing("[query] unknown field [\(key)]")
            }
        }
        return rescorer
    }

    /// The score of a hit in the window: its first score weighed with the rescore query's, when that matched.
    func combine(_ first: Double, _ rescore: Double?) -> Double {
        let primary = first * queryWeight
        guard let rescore else { return primary }
        let secondary = rescore * rescoreQueryWeight
        switch scoreMode {
        case .total: return primary + secondary
        case .multiply: return primary * secondary
        case .avg: return (primary + secondary) / 2
        case .max: return Swift.max(primary, secondary)
        case .min: return Swift.min(primary, secondary)
        }
    }
}
