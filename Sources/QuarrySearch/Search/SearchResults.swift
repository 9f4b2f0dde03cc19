public import QuarryCore

/// What a search found, typed: the store decides what matches and in what order; how it is written out (the shape
/// of Elasticsearch's response body, REST flags such as `rest_total_hits_as_int`) is QuarryElasticsearchAPI's.
public struct SearchResults: Sendable {
    public struct Hit: Sendable {
        public var index: String
        /// Nil when `stored_fields` is `_none_`.
        public var id: String?
        /// Nil when the hits are sorted by something other than score and scores were not asked for.
        public var score: Double?
        /// Present when the request asked for versions (`version`).
        public var version: Int64?
        /// Present when the request asked for them (`seq_no_primary_term`).
        public var seqNo: Int64?
        /// The document's source, filtered as the request asked; nil when `_source` is off.
        public var source: JSON?
        /// The hit's values of the request's sort keys; nil when the request has no sort.
        public var sort: [JSON]?
        /// `fields`, `docvalue_fields` and stored fields' values, by field; nil when none has a value.
        public var fields: JSONObject?
        /// `_explanation`, when the request asked for it (`explain`).
        public var explanation: JSON?
    }

    /// The page of hits asked for (`from`, `size`).
    public var hits: [Hit]
    /// The number of matching documents, counted up to what the request tracks.
    public var total: Int
    /// How the request tracks the total (``SearchRequest/trackTotalHits``).
    public var totalTracking: SearchRequest.TotalHitsTracking
    public var maxScore: Double?
    /// Milliseconds the search took.
    public var took: Int64
    /// The indices searched: Elasticsearch's shards.
    public var shards: Int
    /// The search stopped at `terminate_after` documents.
    public var terminatedEarly: Bool
    /// The scroll that continues this search (`_scroll_id`), for a scroll's pages.
    public var scrollID: String?
    /// `aggregations`, rendered as Elasticsearch writes them; nil when the request asked for none.
    public var aggregations: JSON?
    /// The point in time searched (`pit_id`).
    public var pointInTimeID: String?
}
