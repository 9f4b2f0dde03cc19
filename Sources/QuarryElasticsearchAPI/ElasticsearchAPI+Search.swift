import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    func search(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var search =
            try request.json().map { json throws(StoreError) in try SearchRequest(body: json) } ?? SearchRequest()
        if request.parameters["scroll"] != nil {
            throw .illegalArgument("scroll searches are not supported by this store; use search_after")
        }
        if let q = request.parameters["q"] {
            var body: JSONObject = ["query": .string(q)]
            if let field = request.parameters["df"] { body["default_field"] = .string(field) }
            if let op = request.parameters["default_operator"] { body["default_operator"] = .string(op) }
            search.query = try Query.parse(["query_string": .object(body)])
        }
        if let size = try request.integer("size") { search.size = size }
        if let from = try request.integer("from") { search.from = from }
        if let sort = request.parameters["sort"] {
            var fields: [SortField] = []
            for part in sort.split(separator: ",") {
                let pieces = part.split(separator: ":", maxSplits: 1).map(String.init)
                fields.append(
                    try SortField.parse(pieces.count == 2 ? [pieces[0]: .string(pieces[1])] : .string(pieces[0]))
                )
            }
            search.sort = fields
        }
        let filter = try sourceFilter(request)
        if request.parameters["_source"] != nil || request.parameters["_source_includes"] != nil
            || request.parameters["_source_excludes"] != nil
        {
            search.source = filter
        }
        if let track = request.parameters["track_total_hits"] {
            switch track {
            case "true", "": search.trackTotalHits = .exact
            case "false": search.trackTotalHits = .disabled
            default:
                guard let limit = Int(track), limit >= 0 else {
                    throw .illegalArgument("Failed to parse value [\(track)] for track_total_hits")
                }
                search.trackTotalHits = .upTo(limit)
            }
        }
        if try request.flag("version") { search.version = true }
        if try request.flag("seq_no_primary_term") { search.seqNoPrimaryTerm = true }
        if try request.flag("track_scores") { search.trackScores = true }
        if let limit = try request.integer("terminate_after") {
            guard limit > 0 else { throw .illegalArgument("terminateAfter must be > 0") }
            search.terminateAfter = limit
        }
        let totalAsInt = try request.flag("rest_total_hits_as_int")
        if totalAsInt, case .upTo = search.trackTotalHits { search.trackTotalHits = .exact }
        let results = try store.search(expression ?? "_all", search, options: try request.indicesOptions(.search))
        return ESResponse(json: results.responseBody(totalHitsAsInt: totalAsInt))
    }

    func count(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var query = Query.matchAll(boost: 1)
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            for (key, value) in object {
                guard key == "query" else { throw .parsing("request does not support [\(key)]") }
                query = try Query.parse(value)
            }
        }
        if let q = request.parameters["q"] {
            var body: JSONObject = ["query": .string(q)]
            if let field = request.parameters["df"] { body["default_field"] = .string(field) }
            query = try Query.parse(["query_string": .object(body)])
        }
        let options = try request.indicesOptions(.search)
        let names = try store.resolve(expression ?? "_all", options: options)
        let count = try store.count(expression ?? "_all", query: query, options: options)
        return ESResponse(json: [
            "count": .int(Int64(count)),
            "_shards": [
                "total": .int(Int64(names.count)), "successful": .int(Int64(names.count)), "skipped": 0, "failed": 0,
            ],
        ])
    }
}
