import Foundation
import QuarryCore
import QuarryElasticsearchAPI
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Aggregations against a brute-force reading of generated Packetbeat-like documents, in two indices: what each
/// aggregation answers equals what counting the generated documents gives, in Elasticsearch's response shapes.
@Suite(.mayBlock)
struct AggregationTests {
    struct Document {
        var index: String
        var client: String
        var name: String
        var millis: Int64
        var bytes: Int64?
        var rtt: Double
    }

    /// 2026-12-05T00:00:00Z.
    static let start: Int64 = 1_796_428_800_000

    /// 3,000 documents over two days, from a fixed seed; a tenth have no `bytes`.
    static let documents: [Document] = {
        var state: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let start = Self.start
        return (0..<3_000).map { n in
            Document(
                index: n % 3 == 0 ? "packetbeat-b" : "packetbeat-a",
                client: "10.1.0.\(next(40) + 1)",
                name: ["a.example", "b.example", "evil.example", "c.example", "d.example"][next(5)] + String(next(7)),
                millis: start + Int64(next(2 * 86_400)) * 1_000,
                bytes: next(10) == 0 ? nil : Int64(next(20_000)),
                rtt: Double(next(1_000)) / 8
            )
        }
    }()

    func withLoadedAPI(_ body: (ElasticsearchAPI) throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            let mapping =
                #"{"mappings": {"properties": {"client": {"properties": {"ip": {"type": "ip"}}}, "dns": {"properties": {"question": {"properties": {"name": {"type": "keyword"}}}}}, "@timestamp": {"type": "date"}, "bytes": {"type": "long"}, "rtt": {"type": "double"}, "note": {"type": "text"}}}}"#
            for index in ["packetbeat-a", "packetbeat-b"] {
                #expect(api.handle(try request(.put, "/\(index)", mapping)).status == 200)
            }
            var bulk = ""
            for (n, document) in Self.documents.enumerated() {
                var source: JSONObject = [
                    "client": ["ip": .string(document.client)], "dns": ["question": ["name": .string(document.name)]],
                    "@timestamp": .string(ISO8601.format(document.millis)), "rtt": .double(document.rtt),
                    "note": "text",
                ]
                if let bytes = document.bytes { source["bytes"] = .int(bytes) }
                bulk += #"{"index":{"_index":"\#(document.index)","_id":"\#(n)"}}"# + "\n"
                bulk += JSON.object(source).serialized() + "\n"
            }
            #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)
            try body(api)
        }
    }

    func aggregations(_ api: ElasticsearchAPI, _ body: String) throws -> JSON {
        let response = api.handle(try request(.post, "/packetbeat-*/_search", body))
        #expect(response.status == 200, "\(response.json ?? .null)")
        #expect(response.json?["hits"]?["hits"]?.arrayValue?.isEmpty == true)
        return response.json?["aggregations"] ?? .null
    }

    @Test func termsWithASubAggregationCountAsTheDocumentsDo() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"clients": {"terms": {"field": "client.ip", "size": 5}, "aggs": {"last": {"max": {"field": "@timestamp"}}}}}}"#
            )
            var counts: [String: Int] = [:]
            var last: [String: Int64] = [:]
            for document in Self.documents {
                counts[document.client, default: 0] += 1
                last[document.client] = max(last[document.client] ?? 0, document.millis)
            }
            let expected = counts.sorted {
                $0.value != $1.value ? $0.value > $1.value : IPAddress($0.key)! < IPAddress($1.key)!
            }
            let buckets = result["clients"]?["buckets"]?.arrayValue ?? []
            #expect(buckets.map { $0["key"]?.stringValue ?? "" } == expected.prefix(5).map(\.key))
            #expect(buckets.map { Int($0["doc_count"]?.intValue ?? 0) } == expected.prefix(5).map(\.value))
            #expect(
                result["clients"]?["sum_other_doc_count"]?.intValue
                    == Int64(expected.dropFirst(5).reduce(0) { $0 + $1.value })
            )
            #expect(result["clients"]?["doc_count_error_upper_bound"] == 0)
            for bucket in buckets {
                let client = bucket["key"]?.stringValue ?? ""
                #expect(bucket["last"]?["value"]?.doubleValue == Double(last[client] ?? 0))
                #expect(bucket["last"]?["value_as_string"]?.stringValue == ISO8601.format(last[client] ?? 0))
            }
            // Ordered by key, and by a sub-aggregation.
            let byKey = try aggregations(
                api,
                #"{"size": 0, "aggs": {"names": {"terms": {"field": "dns.question.name", "size": 3, "order": {"_key": "asc"}}}}}"#
            )
            let names = Set(Self.documents.map(\.name)).sorted()
            #expect(
                byKey["names"]?["buckets"]?.arrayValue?.map { $0["key"]?.stringValue ?? "" } == Array(names.prefix(3))
            )
            let bySum = try aggregations(
                api,
                #"{"size": 0, "aggs": {"names": {"terms": {"field": "dns.question.name", "size": 1, "order": {"traffic": "desc"}}, "aggs": {"traffic": {"sum": {"field": "bytes"}}}}}}"#
            )
            var traffic: [String: Int64] = [:]
            for document in Self.documents { traffic[document.name, default: 0] += document.bytes ?? 0 }
            let top = traffic.max { $0.value < $1.value }!
            #expect(bySum["names"]?["buckets"]?[0]?["key"]?.stringValue == top.key)
            #expect(bySum["names"]?["buckets"]?[0]?["traffic"]?["value"]?.doubleValue == Double(top.value))
        }
    }

    /// Random combinations of query, aggregation, field and parameters (a fixed seed per run, printed on failure),
    /// each answer checked against counting the generated documents.
    @Test func randomCombinationsAgreeWithABruteForceReading() async throws {
        try await withLoadedAPI { api in
            let seed = UInt64(Date().timeIntervalSince1970)
            var state = seed
            func next(_ bound: Int) -> Int {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int((state >> 33) % UInt64(bound))
            }
            typealias Predicate = (Document) -> Bool
            func query() -> (JSON, Predicate) {
                switch next(5) {
                case 0: return (["match_all": [:]], { _ in true })
                case 1:
                    let limit = Double(next(125))
                    return (["range": ["rtt": ["lt": .double(limit)]]], { $0.rtt < limit })
                case 2:
                    let client = "10.1.0.\(next(40) + 1)"
                    return (["term": ["client.ip": .string(client)]], { $0.client == client })
                case 3:
                    let from = Self.start + Int64(next(48)) * 3_600_000
                    return (["range": ["@timestamp": ["gte": .int(from)]]], { $0.millis >= from })
                default:
                    let prefix = ["evil", "a.", "c.example", "d"][next(4)]
                    return (["prefix": ["dns.question.name": .string(prefix)]], { $0.name.hasPrefix(prefix) })
                }
            }
            func key(_ document: Document, _ field: String) -> SortKey? {
                switch field {
                case "client.ip": return .ip(IPAddress(document.client)!)
                case "dns.question.name": return .string(document.name)
                case "bytes": return document.bytes.map { .int($0) }
                default: return .double(document.rtt)
                }
            }
            func text(_ key: SortKey) -> String {
                switch key {
                case .ip(let address): address.description
                case .string(let name): name
                case .int(let number): String(number)
                case .double(let number): String(number)
                }
            }
            func json(_ value: JSON?) -> String {
                value?.stringValue ?? value?.intValue.map { String($0) } ?? value?.doubleValue.map { String($0) } ?? "?"
            }
            for round in 0..<600 {
                let (queryJSON, matches) = query()
                let documents = Self.documents.filter(matches)
                let aggregation: JSON
                var expected: [String] = []
                var answer: (JSON) -> [String]
                switch next(4) {
                case 0:
                    let field = ["client.ip", "dns.question.name", "bytes"][next(3)]
                    let size = 1 + next(15)
                    let minimum = [1, 5, 20][next(3)]
                    let order = next(3)
                    var counts: [SortKey: Int] = [:]
                    for document in documents { if let key = key(document, field) { counts[key, default: 0] += 1 } }
                    let sorted = counts.filter { $0.value >= minimum }.sorted { a, b in
                        switch order {
                        case 0: return a.value != b.value ? a.value > b.value : a.key < b.key
                        case 1: return a.key < b.key
                        default: return b.key < a.key
                        }
                    }
                    var terms: JSONObject = [
                        "field": .string(field), "size": .int(Int64(size)), "min_doc_count": .int(Int64(minimum)),
                    ]
                    if order > 0 { terms["order"] = ["_key": order == 1 ? "asc" : "desc"] }
                    aggregation = ["terms": .object(terms)]
                    expected = sorted.prefix(size).map { "\(text($0.key)):\($0.value)" }
                    expected.append("other:\(sorted.dropFirst(size).reduce(0) { $0 + $1.value })")
                    answer = { result in
                        (result["buckets"]?.arrayValue ?? []).map {
                            "\(json($0["key"])):\($0["doc_count"]?.intValue ?? -1)"
                        }
                            + ["other:\(result["sum_other_doc_count"]?.intValue ?? -1)"]
                    }
                case 1:
                    let metric = ["min", "max", "sum", "avg", "value_count", "cardinality"][next(6)]
                    let field =
                        metric == "cardinality"
                        ? ["client.ip", "dns.question.name", "bytes"][next(3)] : ["bytes", "rtt"][next(2)]
                    let values = documents.compactMap { key($0, field) }
                    func number(_ key: SortKey) -> Double {
                        switch key {
                        case .int(let n): Double(n)
                        case .double(let d): d
                        default: 0
                        }
                    }
                    let numbers = values.map(number)
                    let value: String
                    switch metric {
                    case "min": value = numbers.min().map { String($0) } ?? "nil"
                    case "max": value = numbers.max().map { String($0) } ?? "nil"
                    case "sum": value = String(numbers.reduce(0, +))
                    case "avg":
                        value =
                            numbers.isEmpty
                            ? "nil" : String(format: "%.6f", numbers.reduce(0, +) / Double(numbers.count))
                    case "value_count": value = String(values.count)
                    default: value = String(Set(values).count)
                    }
                    aggregation = .object([metric: ["field": .string(field)]])
                    expected = [value]
                    answer = { result in
                        guard let raw = result["value"], !raw.isNull else { return ["nil"] }
                        if metric == "avg" { return [String(format: "%.6f", raw.doubleValue ?? .nan)] }
                        if metric == "value_count" || metric == "cardinality" { return [String(raw.intValue ?? -1)] }
                        return [String(raw.doubleValue ?? .nan)]
                    }
                case 2:
                    let interval = [1000, 2500, 7000][next(3)]
                    var counts: [Int64: Int] = [:]
                    for document in documents {
                        if let bytes = document.bytes {
                            counts[bytes / Int64(interval) * Int64(interval), default: 0] += 1
                        }
                    }
                    aggregation = [
                        "histogram": ["field": "bytes", "interval": .int(Int64(interval)), "min_doc_count": 1]
                    ]
                    expected = counts.sorted { $0.key < $1.key }.map { "\(Double($0.key)):\($0.value)" }
                    answer = { result in
                        (result["buckets"]?.arrayValue ?? []).map {
                            "\($0["key"]?.doubleValue ?? -1):\($0["doc_count"]?.intValue ?? -1)"
                        }
                    }
                default:
                    let (name, size): (String, Int64) = [("30m", 1_800_000), ("3h", 10_800_000), ("1d", 86_400_000)][
                        next(3)
                    ]
                    var counts: [Int64: Int] = [:]
                    for document in documents { counts[document.millis / size * size, default: 0] += 1 }
                    aggregation = [
                        "date_histogram": ["field": "@timestamp", "fixed_interval": .string(name), "min_doc_count": 1]
                    ]
                    expected = counts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
                    answer = { result in
                        (result["buckets"]?.arrayValue ?? []).map {
                            "\($0["key"]?.intValue ?? -1):\($0["doc_count"]?.intValue ?? -1)"
                        }
                    }
                }
                let body: JSON = ["size": 0, "query": queryJSON, "aggs": ["a": aggregation]]
                let result = try aggregations(api, body.serialized())
                #expect(answer(result["a"] ?? .null) == expected, "seed \(seed), round \(round): \(body.serialized())")
            }
        }
    }

    @Test func metricsAndCardinalityEqualTheArithmetic() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "query": {"range": {"rtt": {"lt": 60}}}, "post_filter": {"term": {"client.ip": "10.1.0.1"}}, "aggs": {"bytes": {"stats": {"field": "bytes"}}, "names": {"cardinality": {"field": "dns.question.name"}}, "mean": {"avg": {"field": "rtt"}}, "counted": {"value_count": {"field": "bytes"}}, "nothing": {"min": {"field": "bytes", "meta": {"why": "empty"}}}, "unknown": {"missing": {"field": "bytes"}}}}"#
            )
            // The query narrows the aggregations; post_filter does not.
            let matching = Self.documents.filter { $0.rtt < 60 }
            let bytes = matching.compactMap(\.bytes)
            #expect(result["bytes"]?["count"]?.intValue == Int64(bytes.count))
            #expect(result["bytes"]?["min"]?.doubleValue == Double(bytes.min()!))
            #expect(result["bytes"]?["max"]?.doubleValue == Double(bytes.max()!))
            #expect(result["bytes"]?["sum"]?.doubleValue == Double(bytes.reduce(0, +)))
            #expect(result["bytes"]?["avg"]?.doubleValue == Double(bytes.reduce(0, +)) / Double(bytes.count))
            #expect(result["names"]?["value"]?.intValue == Int64(Set(matching.map(\.name)).count))
            let mean = try #require(result["mean"]?["value"]?.doubleValue)
            #expect(abs(mean - matching.map(\.rtt).reduce(0, +) / Double(matching.count)) < 1e-9)
            #expect(result["counted"]?["value"]?.intValue == Int64(bytes.count))
            #expect(result["unknown"]?["doc_count"]?.intValue == Int64(matching.count - bytes.count))
        }
    }

    @Test func histogramsAndRangesBucketEveryDocument() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"hourly": {"date_histogram": {"field": "@timestamp", "calendar_interval": "hour"}}, "sixHours": {"date_histogram": {"field": "@timestamp", "fixed_interval": "6h", "min_doc_count": 1}}, "sizes": {"histogram": {"field": "bytes", "interval": 5000}}, "bands": {"range": {"field": "bytes", "ranges": [{"to": 1000}, {"from": 1000, "to": 10000}, {"from": 10000}]}}, "kinds": {"filters": {"filters": {"evil": {"prefix": {"dns.question.name": "evil"}}, "early": {"range": {"@timestamp": {"lt": "2026-12-05T12:00:00Z"}}}}, "other_bucket_key": "rest"}}, "evil": {"filter": {"prefix": {"dns.question.name": "evil"}}, "aggs": {"hosts": {"cardinality": {"field": "client.ip"}}}}}}"#
            )
            var hourly: [Int64: Int] = [:]
            for document in Self.documents { hourly[document.millis / 3_600_000 * 3_600_000, default: 0] += 1 }
            let hours = result["hourly"]?["buckets"]?.arrayValue ?? []
            #expect(hours.count == 48)
            #expect(hours.allSatisfy { Int($0["doc_count"]?.intValue ?? -1) == hourly[$0["key"]?.intValue ?? 0] ?? 0 })
            #expect(hours.first?["key_as_string"] == "2026-12-05T00:00:00.000Z")
            let six = result["sixHours"]?["buckets"]?.arrayValue ?? []
            #expect(six.count == 8 && six.reduce(0) { $0 + ($1["doc_count"]?.intValue ?? 0) } == 3_000)
            let sized = result["sizes"]?["buckets"]?.arrayValue ?? []
            #expect(sized.map { $0["key"]?.doubleValue ?? -1 } == [0, 5000, 10000, 15000])
            for bucket in sized {
                let low = Int64(bucket["key"]?.doubleValue ?? 0)
                let expected = Self.documents.filter { ($0.bytes ?? -1) >= low && ($0.bytes ?? -1) < low + 5000 }.count
                #expect(bucket["doc_count"]?.intValue == Int64(expected))
            }
            let bands = result["bands"]?["buckets"]?.arrayValue ?? []
            #expect(bands.map { $0["key"]?.stringValue ?? "" } == ["*-1000.0", "1000.0-10000.0", "10000.0-*"])
            #expect(bands[1]["from"] == 1000.0 && bands[1]["to"] == 10000.0)
            #expect(
                bands.reduce(0) { $0 + ($1["doc_count"]?.intValue ?? 0) }
                    == Int64(Self.documents.compactMap(\.bytes).count)
            )
            let evil = Self.documents.filter { $0.name.hasPrefix("evil") }
            #expect(result["kinds"]?["buckets"]?["evil"]?["doc_count"]?.intValue == Int64(evil.count))
            let early = Self.documents.filter { $0.millis < Self.start + 12 * 3_600_000 }
            #expect(result["kinds"]?["buckets"]?["early"]?["doc_count"]?.intValue == Int64(early.count))
            let rest = Self.documents.filter {
                !$0.name.hasPrefix("evil") && $0.millis >= Self.start + 12 * 3_600_000
            }
            #expect(result["kinds"]?["buckets"]?["rest"]?["doc_count"]?.intValue == Int64(rest.count))
            #expect(result["evil"]?["doc_count"]?.intValue == Int64(evil.count))
            #expect(result["evil"]?["hosts"]?["value"]?.intValue == Int64(Set(evil.map(\.client)).count))

            // hard_bounds: no bucket outside them, even where extended_bounds reach further.
            let low = Self.start + 6 * 3_600_000
            let high = Self.start + 9 * 3_600_000
            let bounded = try aggregations(
                api,
                #"{"size": 0, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h", "extended_bounds": {"min": 0, "max": 9000000000000}, "hard_bounds": {"min": \#(low), "max": \#(high)}}}}}"#
            )
            let boundedBuckets = bounded["h"]?["buckets"]?.arrayValue ?? []
            #expect(boundedBuckets.compactMap { $0["key"]?.intValue } == [0, 1, 2, 3].map { low + $0 * 3_600_000 })
            for bucket in boundedBuckets {
                let start = bucket["key"]?.intValue ?? 0
                let count = Self.documents.filter { $0.millis >= start && $0.millis < start + 3_600_000 }.count
                #expect(bucket["doc_count"]?.intValue == Int64(count))
            }
        }
    }

    @Test func extendedStatsAndAddressRanges() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"spread": {"extended_stats": {"field": "rtt"}}, "nets": {"ip_range": {"field": "client.ip", "ranges": [{"to": "10.1.0.10"}, {"from": "10.1.0.10", "to": "10.1.0.20"}, {"mask": "10.1.0.32/29"}, {"from": "10.1.0.20"}]}}}}"#
            )
            let values = Self.documents.map(\.rtt)
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            let spread = result["spread"]
            #expect(spread?["count"] == 3_000)
            #expect(abs((spread?["variance"]?.doubleValue ?? 0) - variance) < 1e-6)
            #expect(abs((spread?["std_deviation"]?.doubleValue ?? 0) - variance.squareRoot()) < 1e-9)
            #expect(
                abs((spread?["std_deviation_bounds"]?["upper"]?.doubleValue ?? 0) - (mean + 2 * variance.squareRoot()))
                    < 1e-9
            )
            let buckets = result["nets"]?["buckets"]?.arrayValue ?? []
            #expect(
                buckets.map { $0["key"]?.stringValue ?? "" } == [
                    "*-10.1.0.10", "10.1.0.10-10.1.0.20", "10.1.0.32/29", "10.1.0.20-*",
                ]
            )
            #expect(buckets[2]["from"] == "10.1.0.32" && buckets[2]["to"] == "10.1.0.40")
            let host = { (document: Document) in Int(document.client.split(separator: ".").last ?? "") ?? 0 }
            let expected = [
                Self.documents.filter { host($0) < 10 }.count,
                Self.documents.filter { (10..<20).contains(host($0)) }.count,
                Self.documents.filter { (32..<40).contains(host($0)) }.count,
                Self.documents.filter { host($0) >= 20 }.count,
            ]
            #expect(buckets.map { Int($0["doc_count"]?.intValue ?? -1) } == expected)
        }
    }

    @Test func dateRangesAndIncludedTerms() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"days": {"date_range": {"field": "@timestamp", "ranges": [{"to": "2026-12-05T12:00:00Z"}, {"from": "2026-12-05T12:00:00Z||+6h", "to": 1796515200000}, {"key": "later", "from": "2026-12-06T00:00:00Z"}]}}, "evil": {"terms": {"field": "dns.question.name", "include": "evil.*", "exclude": ["evil.example0"], "size": 20}}, "chosen": {"terms": {"field": "dns.question.name", "include": ["a.example1", "b.example2", "none"]}}}}"#
            )
            let buckets = result["days"]?["buckets"]?.arrayValue ?? []
            let noon = Self.start + 12 * 3_600_000
            #expect(
                buckets.map { $0["key"]?.stringValue ?? "" } == [
                    "*-2026-12-05T12:00:00.000Z", "2026-12-05T18:00:00.000Z-2026-12-06T00:00:00.000Z", "later",
                ]
            )
            #expect(buckets[1]["from_as_string"] == "2026-12-05T18:00:00.000Z")
            let expected = [
                Self.documents.filter { $0.millis < noon }.count,
                Self.documents.filter { $0.millis >= noon + 6 * 3_600_000 && $0.millis < Self.start + 86_400_000 }
                    .count,
                Self.documents.filter { $0.millis >= Self.start + 86_400_000 }.count,
            ]
            #expect(buckets.map { Int($0["doc_count"]?.intValue ?? -1) } == expected)
            let evil = Set((result["evil"]?["buckets"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue })
            #expect(evil == Set(Self.documents.map(\.name).filter { $0.hasPrefix("evil") && $0 != "evil.example0" }))
            let chosen = Set((result["chosen"]?["buckets"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue })
            #expect(chosen == ["a.example1", "b.example2"])

            // Partitions: every term in exactly one of them, with its whole count, for names, addresses and numbers.
            let withBytes = Self.documents.filter { $0.bytes != nil }.count
            for (field, all, documents) in [
                ("dns.question.name", Set(Self.documents.map(\.name)), Self.documents.count),
                ("client.ip", Set(Self.documents.map(\.client)), Self.documents.count),
                ("bytes", Set(Self.documents.compactMap { $0.bytes.map { String($0) } }), withBytes),
            ] {
                var seen: [String: Int64] = [:]
                for partition in 0..<5 {
                    let page = try aggregations(
                        api,
                        #"{"size": 0, "aggs": {"p": {"terms": {"field": "\#(field)", "size": 65536, "include": {"partition": \#(partition), "num_partitions": 5}}}}}"#
                    )
                    for bucket in page["p"]?["buckets"]?.arrayValue ?? [] {
                        let key = bucket["key"]?.stringValue ?? bucket["key"]?.intValue.map { String($0) } ?? "?"
                        #expect(seen[key] == nil, "\(field) \(key) in two partitions")
                        seen[key] = bucket["doc_count"]?.intValue
                    }
                }
                #expect(Set(seen.keys) == all, "\(field)")
                #expect(seen.values.reduce(0, +) == Int64(documents), "\(field)")
                #expect(seen.count > 5)
            }
        }
    }

    @Test func topHitsAreEachBucketsLatestDocuments() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"clients": {"terms": {"field": "client.ip", "size": 3}, "aggs": {"latest": {"top_hits": {"size": 2, "sort": [{"@timestamp": {"order": "desc"}}], "_source": ["dns.question.name", "@timestamp"]}}}}}}"#
            )
            for bucket in result["clients"]?["buckets"]?.arrayValue ?? [] {
                let client = bucket["key"]?.stringValue ?? ""
                let latest = Self.documents.filter { $0.client == client }.sorted { $0.millis > $1.millis }
                let hits = bucket["latest"]?["hits"]?["hits"]?.arrayValue ?? []
                #expect(bucket["latest"]?["hits"]?["total"]?["value"] == bucket["doc_count"])
                #expect(hits.map { $0["sort"]?[0]?.intValue ?? 0 } == latest.prefix(2).map(\.millis))
                #expect(hits.first?["_source"]?["dns"]?["question"]?["name"]?.stringValue == latest.first?.name)
                #expect(hits.first?["_source"]?["client"] == nil, "the _source filter keeps only what it names")
                #expect(hits.allSatisfy { ($0["_index"]?.stringValue ?? "").hasPrefix("packetbeat-") })
            }
        }
    }

    @Test func percentilesInterpolateBetweenRanks() async throws {
        try await withLoadedAPI { api in
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"rtt": {"percentiles": {"field": "rtt", "percents": [0, 50, 99]}}, "list": {"percentiles": {"field": "bytes", "keyed": false}}}}"#
            )
            let sorted = Self.documents.map(\.rtt).sorted()
            func exact(_ percent: Double) -> Double {
                let rank = percent / 100 * Double(sorted.count - 1)
                let low = Int(rank)
                let high = min(low + 1, sorted.count - 1)
                return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
            }
            #expect(result["rtt"]?["values"]?["0.0"]?.doubleValue == sorted.first)
            #expect(result["rtt"]?["values"]?["50.0"]?.doubleValue == exact(50))
            #expect(result["rtt"]?["values"]?["99.0"]?.doubleValue == exact(99))
            let list = result["list"]?["values"]?.arrayValue ?? []
            #expect(list.map { $0["key"]?.doubleValue ?? -1 } == [1, 5, 25, 50, 75, 95, 99])
        }
    }

    /// Buckets in a zone's local time, as Kibana asks for them (the browser's zone): keys are the UTC instants of
    /// local bucket starts, `key_as_string` carries the offset; checked against Foundation's calendar, across a
    /// daylight-saving change too.
    @Test func dateHistogramsFollowTheTimeZonesLocalTime() async throws {
        try await withLoadedAPI { api in
            for (zone, interval) in [("Europe/Berlin", "day"), ("+05:30", "hour"), ("America/New_York", "week")] {
                let result = try aggregations(
                    api,
                    #"{"size": 0, "aggs": {"h": {"date_histogram": {"field": "@timestamp", "calendar_interval": "\#(interval)", "time_zone": "\#(zone)", "min_doc_count": 1}}}}"#
                )
                var calendar = Calendar(identifier: .iso8601)
                calendar.timeZone =
                    zone.hasPrefix("+") ? TimeZone(secondsFromGMT: 5 * 3600 + 1800)! : TimeZone(identifier: zone)!
                let component: Calendar.Component = interval == "day" ? .day : interval == "hour" ? .hour : .weekOfYear
                var expected: [Int64: Int] = [:]
                for document in Self.documents {
                    let date = Date(timeIntervalSince1970: Double(document.millis) / 1000)
                    let start = calendar.dateInterval(of: component, for: date)!.start
                    expected[Int64(start.timeIntervalSince1970 * 1000), default: 0] += 1
                }
                let buckets = result["h"]?["buckets"]?.arrayValue ?? []
                #expect(
                    Dictionary(
                        uniqueKeysWithValues: buckets.map {
                            ($0["key"]?.intValue ?? 0, Int($0["doc_count"]?.intValue ?? 0))
                        }
                    )
                        == expected,
                    "\(zone) \(interval)"
                )
                let suffix = zone == "Europe/Berlin" ? "+01:00" : zone == "+05:30" ? "+05:30" : "-05:00"
                #expect(buckets.allSatisfy { $0["key_as_string"]?.stringValue?.hasSuffix(suffix) == true }, "\(zone)")
            }
            // `format` writes the keys; date_range reads its bounds in the zone and format too.
            let formatted = try aggregations(
                api,
                #"{"size": 0, "aggs": {"d": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day", "time_zone": "Europe/Berlin", "format": "yyyy-MM-dd"}}, "r": {"date_range": {"field": "@timestamp", "time_zone": "+01:00", "format": "yyyy-MM-dd", "ranges": [{"from": "2026-12-05", "to": "2026-12-06"}]}}}}"#
            )
            #expect(
                formatted["d"]?["buckets"]?.arrayValue?.compactMap { $0["key_as_string"]?.stringValue }
                    == ["2026-12-05", "2026-12-06", "2026-12-07"],
                "two UTC days are three days in Berlin: the last hour is past local midnight"
            )
            let localDay = Self.start - 3_600_000
            let range = formatted["r"]?["buckets"]?[0]
            #expect(range?["from"]?.doubleValue == Double(localDay))
            #expect(range?["from_as_string"] == "2026-12-05" && range?["key"] == "2026-12-05-2026-12-06")
            #expect(
                range?["doc_count"]?.intValue
                    == Int64(Self.documents.filter { $0.millis >= localDay && $0.millis < localDay + 86_400_000 }.count)
            )
            let unknown = api.handle(
                try request(
                    .post,
                    "/packetbeat-*/_search",
                    #"{"aggs": {"h": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day", "time_zone": "Mars/Olympus"}}}}"#
                )
            )
            #expect(unknown.status == 400)
        }
        // Across New York's change to daylight time (2026-03-08): days are 23 hours long there.
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
            defer { try? store.close() }
            let api = ElasticsearchAPI(store: store)
            let start: Int64 = 1_772_841_600_000  // 2026-03-07T00:00:00Z
            var bulk = ""
            for hour in 0..<96 {
                bulk +=
                    #"{"index":{"_index":"dst"}}"# + "\n" + #"{"@timestamp":\#(start + Int64(hour) * 3_600_000)}"#
                    + "\n"
            }
            #expect(api.handle(try request(.post, "/_bulk?refresh=true", bulk)).status == 200)
            let response = api.handle(
                try request(
                    .post,
                    "/dst/_search",
                    #"{"size": 0, "aggs": {"d": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day", "time_zone": "America/New_York"}}}}"#
                )
            )
            var calendar = Calendar(identifier: .iso8601)
            calendar.timeZone = TimeZone(identifier: "America/New_York")!
            var expected: [Int64: Int] = [:]
            for hour in 0..<96 {
                let date = Date(timeIntervalSince1970: Double(start + Int64(hour) * 3_600_000) / 1000)
                expected[Int64(calendar.startOfDay(for: date).timeIntervalSince1970 * 1000), default: 0] += 1
            }
            let buckets = response.json?["aggregations"]?["d"]?["buckets"]?.arrayValue ?? []
            #expect(
                Dictionary(
                    uniqueKeysWithValues: buckets.map {
                        ($0["key"]?.intValue ?? 0, Int($0["doc_count"]?.intValue ?? 0))
                    }
                )
                    == expected
            )
            #expect(expected.values.contains(23))
            let keys = buckets.compactMap { $0["key_as_string"]?.stringValue }
            #expect(keys.contains("2026-03-09T00:00:00.000-04:00"), "\(keys)")
        }
    }

    /// Paging through every composite bucket (`after_key` fed back as `after`) visits each (client, hour, bytes
    /// present or not) combination once, in key order, with its count — against a brute-force grouping — for page
    /// sizes that split the buckets unevenly, and in descending order.
    @Test func compositePagesVisitEveryCombinationOnce() async throws {
        try await withLoadedAPI { api in
            var expected: [String: Int] = [:]
            for document in Self.documents {
                let hour = document.millis / 3_600_000 * 3_600_000
                let bytes = document.bytes.map { String($0 / 5_000 * 5_000) } ?? "null"
                expected["\(document.client)|\(hour)|\(bytes)", default: 0] += 1
            }
            for (size, order) in [(97, "asc"), (1_000, "desc"), (10_000, "asc")] {
                var seen: [(String, Int)] = []
                var after: JSON?
                var pages = 0
                while true {
                    var composite: JSONObject = [
                        "size": .int(Int64(size)),
                        "sources": [
                            ["client": ["terms": ["field": "client.ip", "order": .string(order)]]],
                            ["hour": ["date_histogram": ["field": "@timestamp", "fixed_interval": "1h"]]],
                            ["bytes": ["histogram": ["field": "bytes", "interval": 5_000, "missing_bucket": true]]],
                        ],
                    ]
                    if let after { composite["after"] = after }
                    let body: JSON = ["size": 0, "aggs": ["pages": ["composite": .object(composite)]]]
                    let result = try aggregations(api, body.serialized())
                    let buckets = result["pages"]?["buckets"]?.arrayValue ?? []
                    if buckets.isEmpty {
                        #expect(result["pages"]?["after_key"] == nil)
                        break
                    }
                    #expect(buckets.count <= size)
                    pages += 1
                    for bucket in buckets {
                        let key = try #require(bucket["key"])
                        let bytes = key["bytes"]?.doubleValue.map { String(Int64($0)) } ?? "null"
                        seen.append(
                            (
                                "\(key["client"]?.stringValue ?? "")|\(key["hour"]?.intValue ?? 0)|\(bytes)",
                                Int(bucket["doc_count"]?.intValue ?? 0)
                            )
                        )
                    }
                    after = result["pages"]?["after_key"]
                    #expect(after == buckets.last?["key"])
                }
                #expect(pages == (expected.count + size - 1) / size)
                #expect(Dictionary(seen, uniquingKeysWith: +) == expected)
                #expect(seen.count == expected.count, "every combination once")
                // Key order: the client (as an address, in the asked order), then the hour, then bytes with null first.
                let keys = seen.map { $0.0.split(separator: "|").map(String.init) }
                for (a, b) in zip(keys, keys.dropFirst()) {
                    let (left, right) = (IPAddress(a[0])!, IPAddress(b[0])!)
                    if left != right {
                        #expect(order == "asc" ? left < right : right < left)
                    } else if a[1] != b[1] {
                        #expect(Int64(a[1])! < Int64(b[1])!)
                    } else {
                        #expect(a[2] == "null" || (b[2] != "null" && Int64(a[2])! < Int64(b[2])!))
                    }
                }
            }
            // Without missing_bucket, documents without bytes have no bucket.
            let withoutMissing = try aggregations(
                api,
                #"{"size": 0, "aggs": {"b": {"composite": {"size": 10000, "sources": [{"b": {"histogram": {"field": "bytes", "interval": 100000}}}]}}}}"#
            )
            #expect(
                withoutMissing["b"]?["buckets"]?[0]?["doc_count"]?.intValue
                    == Int64(Self.documents.filter { $0.bytes != nil }.count)
            )
        }
    }

    @Test func multiTermsCountEachPairAndBucketSortReordersAndCuts() async throws {
        try await withLoadedAPI { api in
            var pairs: [String: Int] = [:]
            var traffic: [String: Int64] = [:]
            for document in Self.documents {
                pairs["\(document.client)|\(document.name)", default: 0] += 1
                traffic[document.client, default: 0] += document.bytes ?? 0
            }
            let result = try aggregations(
                api,
                #"{"size": 0, "aggs": {"pairs": {"multi_terms": {"terms": [{"field": "client.ip"}, {"field": "dns.question.name"}], "size": 20}}}}"#
            )
            let expected = pairs.sorted { a, b in
                if a.value != b.value { return a.value > b.value }
                let (x, y) = (a.key.split(separator: "|"), b.key.split(separator: "|"))
                let (ax, bx) = (IPAddress(String(x[0]))!, IPAddress(String(y[0]))!)
                return ax != bx ? ax < bx : x[1] < y[1]
            }
            let buckets = result["pairs"]?["buckets"]?.arrayValue ?? []
            #expect(buckets.map { $0["key_as_string"]?.stringValue ?? "" } == expected.prefix(20).map(\.key))
            #expect(buckets.map { Int($0["doc_count"]?.intValue ?? 0) } == expected.prefix(20).map(\.value))
            #expect(buckets.first?["key"]?.arrayValue?.count == 2)
            #expect(
                result["pairs"]?["sum_other_doc_count"]?.intValue
                    == Int64(expected.dropFirst(20).reduce(0) { $0 + $1.value })
            )

            // bucket_sort: every client by traffic, descending, the second page of five.
            let sorted = try aggregations(
                api,
                #"{"size": 0, "aggs": {"clients": {"terms": {"field": "client.ip", "size": 100}, "aggs": {"traffic": {"sum": {"field": "bytes"}}, "page": {"bucket_sort": {"sort": [{"traffic": {"order": "desc"}}], "from": 5, "size": 5}}}}}}"#
            )
            let byTraffic = traffic.sorted { $0.value > $1.value }
            let page = sorted["clients"]?["buckets"]?.arrayValue ?? []
            #expect(page.map { $0["key"]?.stringValue ?? "" } == byTraffic.dropFirst(5).prefix(5).map(\.key))
            #expect(page.allSatisfy { $0["page"] == nil })
            let topLevel = api.handle(
                try request(.post, "/packetbeat-*/_search", #"{"aggs": {"s": {"bucket_sort": {"size": 1}}}}"#)
            )
            #expect(topLevel.status == 400)
            #expect(
                topLevel.json?["error"]?["reason"]
                    == "Validation Failed: 1: bucket_sort aggregation [s] must be declared inside of another aggregation;"
            )
        }
    }

    @Test func refusedAsElasticsearchRefusesThem() async throws {
        try await withLoadedAPI { api in
            for (body, reason) in [
                (
                    #"{"aggs": {"x": {"avg": {"field": "dns.question.name"}}}}"#,
                    "Field [dns.question.name] of type [keyword] is not supported for aggregation [avg]"
                ),
                (
                    #"{"aggs": {"x": {"terms": {"field": "note"}}}}"#,
                    "Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [note] in order to load field data by uninverting the inverted index. Note that this can use significant memory."
                ),
                (
                    #"{"aggs": {"x": {"terms": {"field": "client.ip", "size": 0}}}}"#,
                    "[size] must be greater than 0. Found [0] in [x]"
                ),
                (
                    #"{"aggs": {"x": {"geohash_grid": {"field": "where"}}}}"#,
                    "aggregation [x] of type [geohash_grid] is not supported by this store yet"
                ),
                (
                    #"{"aggs": {"x": {"composite": {"sources": [{"a": {"terms": {"field": "bytes"}}}, {"a": {"terms": {"field": "rtt"}}}]}}}}"#,
                    "Composite source names must be unique, found duplicates: [a]"
                ),
                (
                    #"{"aggs": {"x": {"composite": {"sources": [{"a": {"terms": {"field": "bytes"}}}], "after": {"b": 1}}}}}"#,
                    "Missing value for [after.a]"
                ),
                (
                    #"{"aggs": {"x": {"cardinality": {"field": "bytes", "precision_threshold": -1}}}}"#,
                    "[precisionThreshold] must be greater than or equal to 0. Found [-1] in [x]"
                ),
                (
                    #"{"aggs": {"x": {"multi_terms": {"terms": [{"field": "bytes"}]}}}}"#,
                    "The [terms] parameter in the aggregation [x] must be present and have at least 2 fields or scripts."
                ),
            ] {
                let response = api.handle(try request(.post, "/packetbeat-*/_search", body))
                #expect(response.status == 400, "\(body)")
                #expect(
                    response.json?["error"]?["root_cause"]?[0]?["reason"]?.stringValue == reason,
                    "\(body): \(response.json ?? .null)"
                )
            }
        }
    }
}
