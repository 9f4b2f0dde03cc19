public import QuarryCore
public import QuarrySearch

extension SearchResults {
    /// Elasticsearch's `_search` response body for these results. `totalHitsAsInt` is the REST flag
    /// `rest_total_hits_as_int` (7.x clients): `hits.total` as a bare number.
    public func responseBody(totalHitsAsInt: Bool = false) -> JSON {
        var hitsObject: JSONObject = [:]
        switch totalTracking {
        case .disabled:
            // Elasticsearch writes an untracked total as -1 when totals are bare numbers.
            if totalHitsAsInt { hitsObject["total"] = -1 }
        case .exact:
            hitsObject["total"] =
                totalHitsAsInt ? .int(Int64(total)) : ["value": .int(Int64(total)), "relation": "eq"]
        case .upTo(let limit):
            hitsObject["total"] =
                totalHitsAsInt
                ? .int(Int64(total))
                : ["value": .int(Int64(min(total, limit))), "relation": total > limit ? "gte" : "eq"]
        }
        hitsObject["max_score"] = Self.score(maxScore)
        hitsObject["hits"] = .array(hits.map(Self.body))
        var response: JSONObject = [:]
        if let scrollID { response["_scroll_id"] = .string(scrollID) }
        if let pointInTimeID { response["pit_id"] = .string(pointInTimeID) }
        response["took"] = .int(took)
        response["timed_out"] = false
        if terminatedEarly { response["terminated_early"] = true }
        response["_shards"] = [
            "total": .int(Int64(shards)), "successful": .int(Int64(shards)), "skipped": 0, "failed": 0,
        ]
        response["hits"] = .object(hitsObject)
        if let aggregations { response["aggregations"] = aggregations }
        return .object(response)
    }

    private static func body(_ hit: Hit) -> JSON {
        var object: JSONObject = [:]
        if hit.explanation != nil {
            object["_shard"] = .string("[\(hit.index)][0]")
            object["_node"] = .string(ElasticsearchAPI.nodeID)
        }
        object["_index"] = .string(hit.index)
        if let id = hit.id { object["_id"] = .string(id) }
        if let version = hit.version { object["_version"] = .int(version) }
        if let seqNo = hit.seqNo {
            object["_seq_no"] = .int(seqNo)
            object["_primary_term"] = 1
        }
        object["_score"] = score(hit.score)
        if let source = hit.source { object["_source"] = source }
        if let fields = hit.fields { object["fields"] = .object(fields) }
        if let sort = hit.sort { object["sort"] = .array(sort) }
        if let explanation = hit.explanation { object["_explanation"] = explanation }
        return .object(object)
    }

    /// Scores as Elasticsearch prints them: single precision.
    private static func score(_ value: Double?) -> JSON {
        value.map { .double(Double(Float($0))) } ?? .null
    }
}
