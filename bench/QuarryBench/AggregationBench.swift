import Foundation
import GRDB
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch

/// Issue 15's searches on the store in `directory` (bench/run.sh aggs): three aggregations run `runs` times each,
/// then one point in time read in pages of `pageSize` up to `limit` hits, with the resident memory after each page.
func runAggregationBenchmark(directory: URL, runs: Int, pageSize: Int, limit: Int) throws {
    let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
    defer { try? store.close() }
    let api = ElasticsearchAPI(store: store)
    print("store holds \(try store.count("packetbeat-*", query: .matchAll(boost: 1))) documents")
    let searches: [(String, JSON)] = [
        (
            "terms client.ip (100) + max @timestamp, last 24 h",
            [
                "size": 0, "query": ["range": ["@timestamp": ["gte": "now-24h"]]],
                "aggs": [
                    "clients": [
                        "terms": ["field": "client.ip", "size": 100],
                        "aggs": ["last": ["max": ["field": "@timestamp"]]],
                    ]
                ],
            ]
        ),
        (
            "date_histogram 1h over a week",
            [
                "size": 0, "query": ["range": ["@timestamp": ["gte": "now-7d"]]],
                "aggs": ["hourly": ["date_histogram": ["field": "@timestamp", "fixed_interval": "1h"]]],
            ]
        ),
        (
            "cardinality dns.question.registered_domain",
            ["size": 0, "aggs": ["domains": ["cardinality": ["field": "dns.question.registered_domain"]]]]
        ),
    ]
    for (name, body) in searches {
        var latencies: [Double] = []
        var answer: JSON = .null
        for _ in 0..<runs {
            let start = DispatchTime.now()
            let response = api.handle(
                ESRequest(method: .post, path: ["packetbeat-*", "_search"], body: body.serializedBytes())
            )
            precondition(response.status == 200, "\(response.json ?? .null)")
            answer = response.json?["aggregations"] ?? .null
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }
        latencies.sort()
        let summary: String
        if let buckets = answer.objectValue?.first?.value["buckets"]?.arrayValue {
            summary = "\(buckets.count) buckets"
        } else {
            summary = "value \(answer.objectValue?.first?.value["value"]?.serialized() ?? "?")"
        }
        print(
            String(
                format: "%-48@ median %8.1f ms  p95 %8.1f ms  (%@)",
                name as NSString,
                latencies[latencies.count / 2],
                latencies[min(latencies.count - 1, latencies.count * 95 / 100)],
                summary as NSString
            )
        )
    }

    // Every hit, a page at a time, through a point in time (the implicit `_shard_doc` tiebreak).
    let opened = api.handle(try ESRequest(method: .post, target: "/packetbeat-*/_pit?keep_alive=5m"))
    guard let pit = opened.json?["id"]?.stringValue else { fatalError("no point in time: \(opened.json ?? .null)") }
    var after: JSON?
    var read = 0
    var firstPageRSS = 0
    var peakRSS = 0
    let start = DispatchTime.now()
    while read < limit {
        var body: JSONObject = [
            "size": .int(Int64(min(pageSize, limit - read))), "pit": ["id": .string(pit), "keep_alive": "5m"],
            "sort": [["_shard_doc": "asc"]],
        ]
        if let after { body["search_after"] = after }
        let response = api.handle(
            ESRequest(method: .post, path: ["_search"], body: JSON.object(body).serializedBytes())
        )
        let hits = response.json?["hits"]?["hits"]?.arrayValue ?? []
        if hits.isEmpty { break }
        read += hits.count
        after = hits.last?["sort"]
        let rss = residentKilobytes()
        if firstPageRSS == 0 { firstPageRSS = rss }
        peakRSS = max(peakRSS, rss)
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    print(
        String(
            format:
                "point in time, pages of %d: %d hits in %.2f s, %.0f hits/s; RSS %d MB after the first page, %d MB at most",
            pageSize,
            read,
            seconds,
            Double(read) / seconds,
            firstPageRSS / 1024,
            peakRSS / 1024
        )
    )
}

/// The floor for the aggregations: the same values (time, client address, registered domain) of the bulk file's
/// documents in a plain SQLite table without indexes, and the same three questions as `GROUP BY` queries.
func runSQLiteAggregationBenchmark(bulkFile: String, database: URL, runs: Int) throws {
    try? FileManager.default.removeItem(at: database)
    let queue = try DatabaseQueue(path: database.path)
    try queue.write { db in
        try db.execute(sql: "CREATE TABLE dns (ts INTEGER, client_ip TEXT, domain TEXT)")
    }
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: bulkFile))
    var pending = Data()
    var rows: [(Int64, String?, String?)] = []
    var loaded = 0
    func flush() throws {
        try queue.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO dns VALUES (?, ?, ?)")
            for row in rows { try statement.execute(arguments: [row.0, row.1, row.2]) }
        }
        loaded += rows.count
        rows.removeAll(keepingCapacity: true)
    }
    while let chunk = try handle.read(upToCount: 1 << 22), !chunk.isEmpty {
        pending.append(chunk)
        var lineStart = pending.startIndex
        while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[lineStart..<newline]
            lineStart = pending.index(after: newline)
            guard line.first == UInt8(ascii: "{"), !line.starts(with: Array(#"{"index""#.utf8)),
                let document = try? JSON.parse(Array(line)), let time = document["@timestamp"]?.stringValue
            else { continue }
            rows.append(
                (
                    ISO8601.parse(time) ?? 0, document["client"]?["ip"]?.stringValue,
                    document["dns"]?["question"]?["registered_domain"]?.stringValue
                )
            )
            if rows.count == 50_000 { try flush() }
        }
        pending = Data(pending[lineStart...])
    }
    try flush()
    print("sqlite holds \(loaded) rows")
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let queries: [(String, String, StatementArguments)] = [
        (
            "GROUP BY client_ip, MAX(ts), last 24 h",
            "SELECT client_ip, COUNT(*) AS n, MAX(ts) FROM dns WHERE ts >= ? GROUP BY client_ip ORDER BY n DESC LIMIT 100",
            [now - 86_400_000]
        ),
        (
            "GROUP BY hour over a week", "SELECT ts / 3600000, COUNT(*) FROM dns WHERE ts >= ? GROUP BY 1",
            [now - 604_800_000]
        ),
        ("COUNT(DISTINCT domain)", "SELECT COUNT(DISTINCT domain) FROM dns", []),
    ]
    for (name, sql, arguments) in queries {
        var latencies: [Double] = []
        var rowsReturned = 0
        for _ in 0..<runs {
            let start = DispatchTime.now()
            rowsReturned = try queue.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments).count }
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
        }
        latencies.sort()
        print(
            String(
                format: "sqlite %-41@ median %8.1f ms  (%d rows)",
                name as NSString,
                latencies[latencies.count / 2],
                rowsReturned
            )
        )
    }
}

/// This process's resident memory in kilobytes (VmRSS).
func residentKilobytes() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS") } ?? ""
    return Int(
        line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map {
            String($0).trimmingCharacters(in: .whitespaces)
        } ?? ""
    ) ?? 0
}
