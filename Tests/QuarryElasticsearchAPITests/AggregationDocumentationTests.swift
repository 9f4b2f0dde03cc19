import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryTesting
import Testing

/// Elasticsearch's own aggregation examples, request and response, on the data sets its reference uses: `sales`
/// (seven sales from January to March 2015, dates in `yyyy/MM/dd HH:mm:ss`) and `exams` (two grades).
@Suite(.mayBlock)
struct AggregationDocumentationTests {
    static let sales = [
        #"{"date": "2015/01/01 00:00:00", "price": 200, "promoted": true, "rating": 1, "type": "hat"}"#,
        #"{"date": "2015/01/01 00:00:00", "price": 200, "promoted": true, "rating": 1, "type": "t-shirt"}"#,
        #"{"date": "2015/01/01 00:00:00", "price": 150, "promoted": true, "rating": 5, "type": "bag"}"#,
        #"{"date": "2015/02/01 00:00:00", "price": 50, "promoted": false, "rating": 1, "type": "hat"}"#,
        #"{"date": "2015/02/01 00:00:00", "price": 10, "promoted": true, "rating": 4, "type": "t-shirt"}"#,
        #"{"date": "2015/03/01 00:00:00", "price": 200, "promoted": true, "rating": 1, "type": "hat"}"#,
        #"{"date": "2015/03/01 00:00:00", "price": 175, "promoted": false, "rating": 2, "type": "t-shirt"}"#,
    ]

    /// (index, request body, the path to the aggregation's answer, the documented answer).
    static let examples: [(String, String, String, String)] = [
        ("sales", #"{"aggs": {"max_price": {"max": {"field": "price"}}}}"#, "max_price", #"{"value": 200.0}"#),
        ("sales", #"{"aggs": {"min_price": {"min": {"field": "price"}}}}"#, "min_price", #"{"value": 10.0}"#),
        ("sales", #"{"aggs": {"types_count": {"value_count": {"field": "type"}}}}"#, "types_count", #"{"value": 7}"#),
        (
            "sales",
            #"{"query": {"constant_score": {"filter": {"match": {"type": "hat"}}}}, "aggs": {"hat_prices": {"sum": {"field": "price"}}}}"#,
            "hat_prices", #"{"value": 450.0}"#
        ),
        ("exams", #"{"aggs": {"avg_grade": {"avg": {"field": "grade"}}}}"#, "avg_grade", #"{"value": 75.0}"#),
        (
            "exams", #"{"aggs": {"grades_stats": {"stats": {"field": "grade"}}}}"#, "grades_stats",
            #"{"count": 2, "min": 50.0, "max": 100.0, "avg": 75.0, "sum": 150.0}"#
        ),
        (
            "sales",
            #"{"aggs": {"sales_over_time": {"date_histogram": {"field": "date", "calendar_interval": "month", "format": "yyyy-MM-dd"}}}}"#,
            "sales_over_time",
            #"{"buckets": [{"key_as_string": "2015-01-01", "key": 1420070400000, "doc_count": 3}, {"key_as_string": "2015-02-01", "key": 1422748800000, "doc_count": 2}, {"key_as_string": "2015-03-01", "key": 1425168000000, "doc_count": 2}]}"#
        ),
        (
            "sales",
            #"{"aggs": {"sales_over_time": {"date_histogram": {"field": "date", "calendar_interval": "1M"}}}}"#,
            "sales_over_time",
            #"{"buckets": [{"key_as_string": "2015/01/01 00:00:00", "key": 1420070400000, "doc_count": 3}, {"key_as_string": "2015/02/01 00:00:00", "key": 1422748800000, "doc_count": 2}, {"key_as_string": "2015/03/01 00:00:00", "key": 1425168000000, "doc_count": 2}]}"#
        ),
        (
            "sales",
            #"{"aggs": {"prices": {"histogram": {"field": "price", "interval": 50}}}}"#,
            "prices",
            #"{"buckets": [{"key": 0.0, "doc_count": 1}, {"key": 50.0, "doc_count": 1}, {"key": 100.0, "doc_count": 0}, {"key": 150.0, "doc_count": 2}, {"key": 200.0, "doc_count": 3}]}"#
        ),
        (
            "sales",
            #"{"aggs": {"price_ranges": {"range": {"field": "price", "ranges": [{"to": 100.0}, {"from": 100.0, "to": 200.0}, {"from": 200.0}]}}}}"#,
            "price_ranges",
            #"{"buckets": [{"key": "*-100.0", "to": 100.0, "doc_count": 2}, {"key": "100.0-200.0", "from": 100.0, "to": 200.0, "doc_count": 2}, {"key": "200.0-*", "from": 200.0, "doc_count": 3}]}"#
        ),
        (
            "sales",
            #"{"aggs": {"t_shirts": {"filter": {"term": {"type": "t-shirt"}}, "aggs": {"avg_price": {"avg": {"field": "price"}}}}}}"#,
            "t_shirts", #"{"doc_count": 3, "avg_price": {"value": 128.33333333333334}}"#
        ),
        (
            "sales",
            #"{"aggs": {"range": {"date_range": {"field": "date", "format": "MM-yyyy", "ranges": [{"to": "now-10M/M"}, {"from": "now-10M/M"}]}}}}"#,
            "range",
            #"{"buckets": [{"key": "*-\#(Self.tenMonthsAgo)", "to": \#(Self.tenMonthsAgoMillis).0, "to_as_string": "\#(Self.tenMonthsAgo)", "doc_count": 7}, {"key": "\#(Self.tenMonthsAgo)-*", "from": \#(Self.tenMonthsAgoMillis).0, "from_as_string": "\#(Self.tenMonthsAgo)", "doc_count": 0}]}"#
        ),
    ]

    /// `now-10M/M` as the date_range example resolves it today: the start of the month ten months ago.
    static var tenMonthsAgoMillis: Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let then = calendar.date(byAdding: .month, value: -10, to: Date())!
        let start = calendar.dateInterval(of: .month, for: then)!.start
        return Int64(start.timeIntervalSince1970 * 1000)
    }

    static var tenMonthsAgo: String {
        let formatter = DateFormatter()
        formatter.timeZone = .gmt
        formatter.dateFormat = "MM-yyyy"
        return formatter.string(from: Date(timeIntervalSince1970: Double(tenMonthsAgoMillis) / 1000))
    }

    @Test func theReferenceExamplesAnswerAsDocumented() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            let salesMapping =
                #"{"mappings": {"properties": {"date": {"type": "date", "format": "yyyy/MM/dd HH:mm:ss"}, "price": {"type": "long"}, "promoted": {"type": "boolean"}, "rating": {"type": "long"}, "type": {"type": "keyword"}}}}"#
            #expect(api.handle(try request(.put, "/sales", salesMapping)).status == 200)
            #expect(
                api.handle(try request(.put, "/exams", #"{"mappings": {"properties": {"grade": {"type": "long"}}}}"#))
                    .status == 200
            )
            var bulk = ""
            for sale in Self.sales { bulk += #"{"index": {"_index": "sales"}}"# + "\n" + sale + "\n" }
            for grade in [100, 50] {
                bulk += #"{"index": {"_index": "exams"}}"# + "\n" + #"{"grade": \#(grade)}"# + "\n"
            }
            #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)
            for (index, body, name, documented) in Self.examples {
                let response = api.handle(try request(.post, "/\(index)/_search?size=0", body))
                #expect(response.status == 200, "\(body): \(response.json ?? .null)")
                let answer = response.json?["aggregations"]?[name]
                #expect(answer == (try JSON.parse(Array(documented.utf8))), "\(body)")
            }
        }
    }
}
