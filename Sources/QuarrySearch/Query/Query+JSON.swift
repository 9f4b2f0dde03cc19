public import QuarryCore

extension Query {
    /// The query as Query DSL, which ``Query/parse(_:)`` reads back to the same query: what a query compiled here
    /// (from `query_string`, KQL or a transform such as ``ignoringCase(onKeywords:)``) looks like to another store.
    public var json: JSON {
        func withBoost(_ object: JSONObject, _ boost: Double) -> JSON {
            var object = object
            if boost != 1 { object["boost"] = .double(boost) }
            return .object(object)
        }
        func leaf(_ name: String, _ field: String, _ value: JSON, _ insensitive: Bool, _ boost: Double) -> JSON {
            var parameters: JSONObject = ["value": value]
            if insensitive { parameters["case_insensitive"] = true }
            return [name: .object([field: withBoost(parameters, boost)])]
        }
        switch self {
        case .matchAll(let boost): return ["match_all": withBoost([:], boost)]
        case .matchNone: return ["match_none": [:]]
        case .bool(let bool):
            var object = JSONObject()
            for (key, clauses) in [
                ("must", bool.must), ("filter", bool.filter), ("should", bool.should), ("must_not", bool.mustNot),
            ] where !clauses.isEmpty {
                object[key] = .array(clauses.map(\.json))
            }
            if let minimum = bool.minimumShouldMatch { object["minimum_should_match"] = .string(minimum) }
            return ["bool": withBoost(object, bool.boost)]
        case .term(let field, let value, let insensitive, let boost):
            return leaf("term", field, value, insensitive, boost)
        case .terms(let field, let values, let boost):
            return ["terms": withBoost([field: .array(values)], boost)]
        case .range(let range):
            var parameters = JSONObject()
            for (key, value) in [("gt", range.gt), ("gte", range.gte), ("lt", range.lt), ("lte", range.lte)] {
                if let value { parameters[key] = value }
            }
            if let format = range.format { parameters["format"] = .string(format) }
            if let zone = range.timeZone { parameters["time_zone"] = .string(zone) }
            return ["range": .object([range.field: withBoost(parameters, range.boost)])]
        case .exists(let field): return ["exists": ["field": .string(field)]]
        case .ids(let ids): return ["ids": ["values": .array(ids.map(JSON.string))]]
        case .prefix(let field, let value, let insensitive, let boost):
            return leaf("prefix", field, .string(value), insensitive, boost)
        case .wildcard(let field, let pattern, let insensitive, let boost):
            return leaf("wildcard", field, .string(pattern), insensitive, boost)
        case .regexp(let field, let pattern, let insensitive, let boost):
            return leaf("regexp", field, .string(pattern), insensitive, boost)
        case .match(let match):
            var parameters: JSONObject = ["query": match.text]
            if match.requireAll { parameters["operator"] = "and" }
            if let minimum = match.minimumShouldMatch { parameters["minimum_should_match"] = .string(minimum) }
            if let analyzer = match.analyzer { parameters["analyzer"] = .string(analyzer) }
            if match.lenient { parameters["lenient"] = true }
            return ["match": .object([match.field: withBoost(parameters, match.boost)])]
        case .matchPhrase(let field, let text, let slop, let boost):
            var parameters: JSONObject = ["query": .string(text)]
            if slop != 0 { parameters["slop"] = .int(Int64(slop)) }
            return ["match_phrase": .object([field: withBoost(parameters, boost)])]
        case .constantScore(let filter, let boost):
            return ["constant_score": withBoost(["filter": filter.json], boost)]
        case .multiMatch(let fields, let text, let phrase, let boost):
            var parameters: JSONObject = ["query": .string(text), "fields": .array(fields.map(JSON.string))]
            if phrase { parameters["type"] = "phrase" }
            parameters["lenient"] = true
            return ["multi_match": withBoost(parameters, boost)]
        }
    }

    /// The query comparing values without case on `keywordFields`, as Sigma rules compare them (Elasticsearch's
    /// keyword queries compare with case): their term, prefix, wildcard and regular-expression queries become
    /// case-insensitive, and a `match` on one becomes a case-insensitive `term`. Other fields are left as they are.
    public func ignoringCase(onKeywords keywordFields: Set<String>) -> Query {
        func isKeyword(_ field: String) -> Bool {
            keywordFields.contains(field)
                || (field.contains("*") && keywordFields.contains { Wildcard.matches(field, $0) })
        }
        switch self {
        case .bool(var bool):
            bool.must = bool.must.map { $0.ignoringCase(onKeywords: keywordFields) }
            bool.filter = bool.filter.map { $0.ignoringCase(onKeywords: keywordFields) }
            bool.should = bool.should.map { $0.ignoringCase(onKeywords: keywordFields) }
            bool.mustNot = bool.mustNot.map { $0.ignoringCase(onKeywords: keywordFields) }
            return .bool(bool)
        case .constantScore(let filter, let boost):
            return .constantScore(filter: filter.ignoringCase(onKeywords: keywordFields), boost: boost)
        case .term(let field, let value, _, let boost) where isKeyword(field) && value.stringValue != nil:
            return .term(field: field, value: value, caseInsensitive: true, boost: boost)
        case .prefix(let field, let value, _, let boost) where isKeyword(field):
            return .prefix(field: field, value: value, caseInsensitive: true, boost: boost)
        case .wildcard(let field, let pattern, _, let boost) where isKeyword(field):
            return .wildcard(field: field, pattern: pattern, caseInsensitive: true, boost: boost)
        case .regexp(let field, let pattern, _, let boost) where isKeyword(field):
            return .regexp(field: field, pattern: pattern, caseInsensitive: true, boost: boost)
        case .match(let match) where keywordFields.contains(match.field) && match.text.stringValue != nil:
            return .term(field: match.field, value: match.text, caseInsensitive: true, boost: match.boost)
        default:
            return self
        }
    }
}
