import Foundation
import QuarryCore
import QuarrySearch

extension ElasticsearchAPI {
    func search(_ request: ESRequest, _ expression: String?) throws(StoreError) -> ESResponse {
        var search =
            try request.json().map { json throws(StoreError) in try SearchRequest(body: json) } ?? SearchRequest()
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
            search.sourceRequested = filter.enabled
        }
        if let names = request.parameters["stored_fields"] {
            search.storedFields = .parse(names.split(separator: ",").map(String.init))
        }
        if let names = request.parameters["docvalue_fields"] {
            search.docvalueFields = names.split(separator: ",").map { FieldAndFormat(field: String($0)) }
        }
        if try request.flag("explain") { search.explain = true }
        var tracksTotalExplicitly = try request.json()?.objectValue?["track_total_hits"] != nil
        if let track = request.parameters["track_total_hits"] {
            tracksTotalExplicitly = true
            switch track {
            case "true", "": search.trackTotalHits = .exact
            case "false", "-1": search.trackTotalHits = .disabled
            default:
                guard let limit = Int(track), limit >= 0 else {
                    throw .illegalArgument("Failed to parse value [\(track)] for track_total_hits")
                }
                search.trackTotalHits = limit == Int(Int32.max) ? .exact : .upTo(limit)
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
        if totalAsInt, case .upTo(let limit) = search.trackTotalHits {
            // A count that may stop short cannot be written as a bare number.
            guard !tracksTotalExplicitly else {
                throw .illegalArgument(
                    "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got \(limit)"
                )
            }
            search.trackTotalHits = .exact
        }
        let options = try request.indicesOptions(.search)
        var problems: [String] = []
        if search.storedFields == StoredFieldsRequest.none {
            if search.sourceRequested {
                problems.append("[stored_fields] cannot be disabled if [_source] is requested")
            }
            if !search.fields.isEmpty {
                problems.append("[stored_fields] cannot be disabled when using the [fields] option")
            }
        }
        if request.parameters["scroll"] != nil, search.trackTotalHits == .disabled {
            problems.append("disabling [track_total_hits] is not allowed in a scroll context")
        }
        if !search.rescorers.isEmpty {
            if request.parameters["scroll"] != nil {
                problems.append("using [rescore] is not allowed in a scroll context")
            }
            if search.sort.contains(where: { $0.target != .score }) {
                throw .illegalArgument("Cannot use [sort] option in conjunction with [rescore].")
            }
        }
        if let pointInTime = search.pointInTime {
            // The route fills in the indices the caller may read; whether the path named any is what counts.
            if request.path.first != "_search" {
                problems.append(
                    "[indices] cannot be used with point in time. Do not specify any index with point in time."
                )
            }
            if request.parameters["scroll"] != nil {
                problems.append("using [point in time] is not allowed in a scroll context")
            }
            if !problems.isEmpty { throw Self.validationFailed(problems) }
            let results = try store.search(pointInTime: pointInTime.id, search, owner: request.scrollOwner)
            return ESResponse(json: results.responseBody(totalHitsAsInt: totalAsInt))
        }
        if !problems.isEmpty { throw Self.validationFailed(problems) }
        if search.sort.contains(where: { $0.target == .shardDoc }) {
            throw .illegalArgument("[_shard_doc] sort field cannot be used without [point in time]")
        }
        if let scroll = request.parameters["scroll"] {
            let results = try store.openScroll(
                expression ?? "_all",
                search,
                options: options,
                keepAlive: try SearchRequest.timeValueMilliseconds(scroll, setting: "scroll"),
                owner: request.scrollOwner
            )
            return ESResponse(json: results.responseBody(totalHitsAsInt: totalAsInt))
        }
        let results = try store.search(expression ?? "_all", search, options: options)
        return ESResponse(json: results.responseBody(totalHitsAsInt: totalAsInt))
    }

    /// `POST /{index}/_pit?keep_alive=…` (Elasticsearch) or `POST /{index}/_search/point_in_time?keep_alive=…`
    /// (OpenSearch, which answers `pit_id` and `creation_time`).
    func openPointInTime(_ request: ESRequest, _ expression: String?, openSearch: Bool) throws(StoreError) -> ESResponse
    {
        guard let keepAlive = request.parameters["keep_alive"] else {
            throw Self.validationFailed(["[keep_alive] is not specified"])
        }
        let (id, indices) = try store.openPointInTime(
            expression ?? "_all",
            options: try request.indicesOptions(.search),
            keepAlive: try SearchRequest.timeValueMilliseconds(keepAlive, setting: "keep_alive"),
            owner: request.scrollOwner
        )
        let shards: JSON = [
            "total": .int(Int64(indices)), "successful": .int(Int64(indices)), "skipped": 0, "failed": 0,
        ]
        if openSearch {
            return ESResponse(json: [
                "pit_id": .string(id), "_shards": shards,
                "creation_time": .int(Int64(Date().timeIntervalSince1970 * 1000)),
            ])
        }
        return ESResponse(json: ["id": .string(id), "_shards": shards])
    }

    /// `DELETE /_pit` with `{"id": …}` (Elasticsearch: 404 when it was not open), or `DELETE
    /// /_search/point_in_time[/_all]` with `{"pit_id": [...]}` (OpenSearch: one result per id).
    func closePointInTime(_ request: ESRequest, openSearch: Bool, all: Bool = false) throws(StoreError) -> ESResponse {
        var ids: [String] = []
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            switch object[openSearch ? "pit_id" : "id"] {
            case .string(let id)?: ids.append(id)
            case .array(let list)?: ids += list.compactMap(\.stringValue)
            default: break
            }
        }
        if openSearch {
            if all { ids = store.pointsInTime(owner: request.scrollOwner).map(\.id) }
            let results: [JSON] = ids.map { id in
                [
                    "pit_id": .string(id),
                    "successful": .bool(store.closePointsInTime([id], owner: request.scrollOwner) == 1),
                ]
            }
            return ESResponse(json: ["pits": .array(results)])
        }
        guard !ids.isEmpty else { throw Self.validationFailed(["id is missing"]) }
        let freed = store.closePointsInTime(ids, owner: request.scrollOwner)
        return ESResponse(status: freed > 0 ? 200 : 404, json: ["succeeded": true, "num_freed": .int(Int64(freed))])
    }

    /// `GET /_search/point_in_time/_all` (OpenSearch): the caller's open points in time.
    func listPointsInTime(_ request: ESRequest) -> ESResponse {
        let points: [JSON] = store.pointsInTime(owner: request.scrollOwner).map { point in
            [
                "pit_id": .string(point.id), "creation_time": .int(point.creationTime),
                "keep_alive": .int(point.keepAlive),
            ]
        }
        return ESResponse(json: ["pits": .array(points)])
    }

    static func validationFailed(_ problems: [String]) -> StoreError {
        let listed = problems.enumerated().map { "\($0.offset + 1): \($0.element);" }.joined(separator: " ")
        return StoreError(
            type: "action_request_validation_exception",
            reason: "Validation Failed: \(listed)",
            status: 400
        )
    }

    /// `GET|POST /_search/scroll[/{scroll_id}]`: the next page of a scroll (the id and `scroll` in the body, the
    /// path or the parameters, as Elasticsearch takes them).
    func continueScroll(_ request: ESRequest, _ pathID: String?) throws(StoreError) -> ESResponse {
        var id = pathID ?? request.parameters["scroll_id"]
        var keepAlive = request.parameters["scroll"]
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            for (key, value) in object {
                switch key {
                case "scroll_id": id = value.stringValue
                case "scroll": keepAlive = value.stringValue
                default:
                    throw .illegalArgument(
                        "Unknown parameter [\(key)] in request body or parameter is of the wrong type"
                    )
                }
            }
        }
        guard let id, !id.isEmpty else {
            throw StoreError(
                type: "action_request_validation_exception",
                reason: "Validation Failed: 1: scrollId is missing;",
                status: 400
            )
        }
        let results = try store.scroll(
            id,
            keepAlive: try keepAlive.map { text throws(StoreError) in
                try SearchRequest.timeValueMilliseconds(text, setting: "scroll")
            },
            owner: request.scrollOwner
        )
        return ESResponse(json: results.responseBody(totalHitsAsInt: try request.flag("rest_total_hits_as_int")))
    }

    /// `DELETE /_search/scroll[/{scroll_id}]`: ids in the path (comma-separated), `scroll_id` in the body (one or a
    /// list), or `_all`. 404 when none was open, as Elasticsearch answers.
    func clearScroll(_ request: ESRequest, _ pathIDs: String?) throws(StoreError) -> ESResponse {
        var ids = pathIDs.map { $0.split(separator: ",").map(String.init) } ?? []
        if let body = try request.json() {
            guard case .object(let object) = body else { throw .parsing("request body must be an object") }
            switch object["scroll_id"] {
            case .string(let id)?: ids.append(id)
            case .array(let list)?: ids += list.compactMap(\.stringValue)
            default: break
            }
        }
        let freed = store.clearScrolls(ids.contains("_all") ? nil : ids, owner: request.scrollOwner)
        return ESResponse(status: freed > 0 ? 200 : 404, json: ["succeeded": true, "num_freed": .int(Int64(freed))])
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
