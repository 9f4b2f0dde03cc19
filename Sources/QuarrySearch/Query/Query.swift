public import QuarryCore

/// A parsed Query DSL query. Parsing checks the shape of the JSON (ES's `parsing_exception`s); resolving fields
/// against mappings happens per index at execution, as on a shard.
public indirect enum Query: Sendable, Hashable {
    case matchAll(boost: Double)
    case matchNone
    case bool(BoolQuery)
    case term(field: String, value: JSON, caseInsensitive: Bool, boost: Double)
    case terms(field: String, values: [JSON], boost: Double)
    case range(RangeQuery)
    case exists(field: String)
    case ids([String])
    case prefix(field: String, value: String, caseInsensitive: Bool, boost: Double)
    case wildcard(field: String, pattern: String, caseInsensitive: Bool, boost: Double)
    /// Terms the whole of which a Lucene regular expression matches (``LuceneRegex``).
    case regexp(field: String, pattern: String, caseInsensitive: Bool, boost: Double)
    case match(MatchQuery)
    case matchPhrase(field: String, text: String, slop: Int, boost: Double)
    case constantScore(filter: Query, boost: Double)
    /// A `match` over several fields (`query_string` without a field, `multi_match`): best field wins.
    case multiMatch(fields: [String], text: String, phrase: Bool, boost: Double)
}

public struct BoolQuery: Sendable, Hashable {
    public var must: [Query] = []
    public var filter: [Query] = []
    public var should: [Query] = []
    public var mustNot: [Query] = []
    public var minimumShouldMatch: String?
    public var boost = 1.0
}

public struct RangeQuery: Sendable, Hashable {
    public var field: String
    public var gt: JSON?
    public var gte: JSON?
    public var lt: JSON?
    public var lte: JSON?
    public var format: String?
    public var timeZone: String?
    public var boost = 1.0
}

public struct MatchQuery: Sendable, Hashable {
    public var field: String
    public var text: JSON
    public var requireAll = false
    public var minimumShouldMatch: String?
    public var boost = 1.0
    public var analyzer: String?
    public var lenient = false
}

extension Query {
    /// Parses a query object such as `{"term": {"dns.question.name": "example.com"}}`.
    /// - Throws: ``StoreError`` `parsing_exception` (or `x_content_parse_exception`) as ES reports it.
    public static func parse(_ json: JSON) throws(StoreError) -> Query {
        try parse(json, depth: 1)
    }

    /// Elasticsearch's `indices.query.bool.max_nested_depth`: compound queries nest at most this deep, so that
    /// parsing and evaluating (both recursive) cannot exhaust the stack.
    public static let maximumNestedDepth = 30

    static func parse(_ json: JSON, depth: Int) throws(StoreError) -> Query {
        guard depth <= maximumNestedDepth else {
            throw .parsing(
                "The nested depth of the query exceeds the maximum nested depth for queries set in "
                    + "[indices.query.bool.max_nested_depth]"
            )
        }
        guard case .object(let object) = json else {
            throw .parsing("[_na] query malformed, must start with start_object")
        }
        guard let (name, body) = object.first else {
            throw .parsing("query malformed, empty clause found")
        }
        if object.count > 1 {
            let second = object.keys[1]
            throw .parsing("[\(name)] malformed query, expected [END_OBJECT] but found [FIELD_NAME] [\(second)]")
        }
        switch name {
        case "match_all":
            let params = try objectBody(name, body)
            try allowOnly(name, params, ["boost", "_name"])
            return .matchAll(boost: params["boost"]?.doubleValue ?? 1)
        case "match_none": return .matchNone
        case "bool": return .bool(try parseBool(body, depth: depth))
        case "term":
            let (field, value, params) = try singleField(name, body, valueKey: "value")
            try allowOnly(name, params, ["value", "boost", "case_insensitive", "_name"])
            guard let value else { throw .parsing("[term] query does not support [\(field)]") }
            if case .object = value { throw .parsing("[term] query does not support [\(field)]") }
            if case .array = value { throw .parsing("[term] query does not support array of values") }
            return .term(
                field: field,
                value: value,
                caseInsensitive: params["case_insensitive"]?.boolValue ?? false,
                boost: params["boost"]?.doubleValue ?? 1
            )
        case "terms":
            let params = try objectBody(name, body)
            var field: String?
            var values: [JSON] = []
            for (key, value) in params where key != "boost" && key != "_name" {
                guard field == nil else {
                    throw .parsing("[terms] query does not support multiple fields")
                }
                guard case .array(let list) = value else {
                    throw .parsing("[terms] query does not support [\(key)]")
                }
                field = key
                values = list
            }
            guard let field else { throw .parsing("[terms] query requires a field with values") }
            return .terms(field: field, values: values, boost: params["boost"]?.doubleValue ?? 1)
        case "range": return .range(try parseRange(body))
        case "exists":
            let params = try objectBody(name, body)
            try allowOnly(name, params, ["field", "boost", "_name"])
            guard let field = params["field"]?.stringValue else {
                throw .parsing("[exists] must be provided with a [field]")
            }
            return .exists(field: field)
        case "ids":
            let params = try objectBody(name, body)
            try allowOnly(name, params, ["values", "boost", "_name", "type"])
            guard let values = params["values"]?.arrayValue else {
                throw .parsing("[ids] query requires [values] as an array")
            }
            return .ids(values.compactMap { $0.stringValue ?? $0.intValue.map { String($0) } })
        case "prefix", "wildcard":
            let (field, value, params) = try singleField(name, body, valueKey: "value")
            let allowed = ["value", "wildcard", "boost", "case_insensitive", "rewrite", "_name"]
            try allowOnly(name, params, allowed)
            guard let given = value ?? params["wildcard"], !given.isContainer, given != .null else {
                throw .parsing("[\(name)] query does not support [\(field)]")
            }
            let text = given.stringValue ?? given.serialized()
            let insensitive = params["case_insensitive"]?.boolValue ?? false
            let boost = params["boost"]?.doubleValue ?? 1
            return name == "prefix"
                ? .prefix(field: field, value: text, caseInsensitive: insensitive, boost: boost)
                : .wildcard(field: field, pattern: text, caseInsensitive: insensitive, boost: boost)
        case "regexp":
            let (field, value, params) = try singleField(name, body, valueKey: "value")
            try allowOnly(
                name,
                params,
                [
                    "value", "flags", "flags_value", "case_insensitive", "max_determinized_states", "rewrite", "boost",
                    "_name",
                ]
            )
            guard let pattern = value?.stringValue else { throw .parsing("[regexp] query does not support [\(field)]") }
            // Refused here, as Elasticsearch refuses a pattern Lucene cannot read, before any shard runs it.
            _ = try LuceneRegex(pattern, caseInsensitive: false)
            return .regexp(
                field: field,
                pattern: pattern,
                caseInsensitive: params["case_insensitive"]?.boolValue ?? false,
                boost: params["boost"]?.doubleValue ?? 1
            )
        case "match", "match_phrase", "match_bool_prefix", "match_phrase_prefix":
            let (field, value, params) = try singleField(name, body, valueKey: "query")
            try allowOnly(
                name,
                params,
                [
                    "query", "operator", "minimum_should_match", "boost", "analyzer", "lenient", "fuzziness",
                    "zero_terms_query", "slop", "_name", "auto_generate_synonyms_phrase_query", "prefix_length",
                    "max_expansions", "fuzzy_transpositions", "cutoff_frequency",
                ]
            )
            guard let value else { throw .parsing("No text specified for text query") }
            if case .object = value { throw .parsing("[\(name)] unknown token [START_OBJECT] after [query]") }
            if name == "match_phrase" || name == "match_phrase_prefix" {
                return .matchPhrase(
                    field: field,
                    text: value.stringValue ?? value.serialized(),
                    slop: Int(params["slop"]?.intValue ?? 0),
                    boost: params["boost"]?.doubleValue ?? 1
                )
            }
            let op = params["operator"]?.stringValue?.lowercased() ?? "or"
            guard op == "or" || op == "and" else {
                throw .illegalArgument("No enum constant org.elasticsearch.index.query.Operator.\(op.uppercased())")
            }
            return .match(
                MatchQuery(
                    field: field,
                    text: value,
                    requireAll: op == "and",
                    minimumShouldMatch: params["minimum_should_match"].map { $0.stringValue ?? $0.serialized() },
                    boost: params["boost"]?.doubleValue ?? 1,
                    analyzer: params["analyzer"]?.stringValue,
                    lenient: params["lenient"]?.boolValue ?? false
                )
            )
        case "multi_match":
            let params = try objectBody(name, body)
            guard let text = params["query"] else { throw .parsing("No text specified for multi_match query") }
            let fields = params["fields"]?.arrayValue?.compactMap(\.stringValue) ?? ["*"]
            let phrase = params["type"]?.stringValue == "phrase"
            return .multiMatch(
                fields: fields,
                text: text.stringValue ?? text.serialized(),
                phrase: phrase,
                boost: params["boost"]?.doubleValue ?? 1
            )
        case "constant_score":
            let params = try objectBody(name, body)
            try allowOnly(name, params, ["filter", "boost", "_name"])
            guard let filter = params["filter"] else {
                throw .parsing("[constant_score] requires a 'filter' element")
            }
            return .constantScore(filter: try parse(filter, depth: depth + 1), boost: params["boost"]?.doubleValue ?? 1)
        case "query_string", "simple_query_string":
            let params = try objectBody(name, body)
            guard let text = params["query"]?.stringValue else {
                throw .parsing("[\(name)] must be provided with a [query]")
            }
            var fields = params["fields"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if let field = params["default_field"]?.stringValue { fields = [field] }
            let op = params["default_operator"]?.stringValue?.lowercased() ?? "or"
            var parser = QueryStringParser(
                text,
                defaultFields: fields.isEmpty ? ["*"] : fields,
                requireAll: op == "and"
            )
            return try parser.parse()
        default:
            throw StoreError(
                type: "parsing_exception",
                reason: "unknown query [\(name)]",
                status: 400,
                causedBy: StoreError(
                    type: "named_object_not_found_exception",
                    reason: "[1:1] unknown field [\(name)]",
                    status: 400
                )
            )
        }
    }

    private static func objectBody(_ name: String, _ body: JSON) throws(StoreError) -> JSONObject {
        guard case .object(let object) = body else {
            throw .parsing("[\(name)] query malformed, no start_object after query name")
        }
        return object
    }

    private static func allowOnly(_ name: String, _ params: JSONObject, _ allowed: [String]) throws(StoreError) {
        for key in params.keys where !allowed.contains(key) {
            throw .parsing("[\(name)] query does not support [\(key)]")
        }
    }

    /// `{"field": value}` or `{"field": {"value": ..., params}}`; returns the field, its value and the params.
    private static func singleField(
        _ name: String,
        _ body: JSON,
        valueKey: String
    ) throws(StoreError)
        -> (String, JSON?, JSONObject)
    {
        let object = try objectBody(name, body)
        var found: (String, JSON?, JSONObject)?
        var boost: JSON?
        for (key, value) in object {
            if key == "boost" || key == "_name" {
                boost = key == "boost" ? value : boost
                continue
            }
            if let found {
                throw .parsing(
                    "[\(name)] query doesn't support multiple fields, found [\(found.0)] and [\(key)]"
                )
            }
            if case .object(let params) = value {
                found = (key, params[valueKey], params)
            } else {
                found = (key, value, [:])
            }
        }
        guard var result = found else { throw .illegalArgument("[\(name)] query requires a field") }
        if let boost, result.2["boost"] == nil { result.2["boost"] = boost }
        return result
    }

    private static func parseBool(_ body: JSON, depth: Int) throws(StoreError) -> BoolQuery {
        let object = try objectBody("bool", body)
        var query = BoolQuery()
        for (key, value) in object {
            switch key {
            case "must", "filter", "should", "must_not", "mustNot":
                var clauses: [Query] = []
                switch value {
                case .array(let items):
                    for item in items { clauses.append(try parse(item, depth: depth + 1)) }
                case .object: clauses = [try parse(value, depth: depth + 1)]
                default: throw .parsing("[bool] query does not support [\(key)]")
                }
                switch key {
                case "must": query.must += clauses
                case "filter": query.filter += clauses
                case "should": query.should += clauses
                default: query.mustNot += clauses
                }
            case "minimum_should_match":
                query.minimumShouldMatch = value.stringValue ?? value.intValue.map { String($0) }
            case "boost": query.boost = value.doubleValue ?? 1
            case "_name", "adjust_pure_negative", "disable_coord": break
            default: throw .parsing("[bool] query does not support [\(key)]")
            }
        }
        return query
    }

    private static func parseRange(_ body: JSON) throws(StoreError) -> RangeQuery {
        let object = try objectBody("range", body)
        var fieldEntry: (String, JSONObject)?
        for (key, value) in object {
            if key == "boost" || key == "_name" { continue }
            guard fieldEntry == nil else {
                throw .parsing("[range] query doesn't support multiple fields, found [\(fieldEntry!.0)] and [\(key)]")
            }
            guard case .object(let params) = value else {
                throw .parsing("[range] query does not support [\(key)]")
            }
            fieldEntry = (key, params)
        }
        guard let (field, params) = fieldEntry else { throw .illegalArgument("[range] query requires a field") }
        var range = RangeQuery(field: field)
        var includeLower = true
        var includeUpper = true
        var from: JSON?
        var to: JSON?
        for (key, value) in params {
            switch key {
            case "gt": range.gt = value.nonNull
            case "gte": range.gte = value.nonNull
            case "lt": range.lt = value.nonNull
            case "lte": range.lte = value.nonNull
            case "from": from = value.nonNull
            case "to": to = value.nonNull
            case "include_lower": includeLower = value.boolValue ?? true
            case "include_upper": includeUpper = value.boolValue ?? true
            case "format": range.format = value.stringValue
            case "time_zone": range.timeZone = value.stringValue
            case "boost": range.boost = value.doubleValue ?? 1
            case "relation", "_name": break
            default: throw .parsing("[range] query does not support [\(key)]")
            }
        }
        if let from { if includeLower { range.gte = from } else { range.gt = from } }
        if let to { if includeUpper { range.lte = to } else { range.lt = to } }
        return range
    }
}

extension JSON {
    var nonNull: JSON? { isNull ? nil : self }
}
