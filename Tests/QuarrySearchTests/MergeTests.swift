import Foundation
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Segment merging against a brute-force oracle: random interleavings of index, update, delete, flush, merge and
/// reopen, then every query type compared with a scan of what the documents should be.
@Suite(.mayBlock)
struct MergeTests {
    static let hosts = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    static let words = ["dns", "query", "answer", "beacon", "exfil", "tunnel", "mail", "web", "login", "update"]
    static let mappings: JSON = [
        "properties": [
            "host": ["type": "keyword"], "tags": ["type": "keyword"], "n": ["type": "long"],
            "ratio": ["type": "double"], "ts": ["type": "date"], "ip": ["type": "ip"], "msg": ["type": "text"],
            "ok": ["type": "boolean"],
        ]
    ]

    static func document(_ random: inout SplitMix64) -> JSON {
        var object: JSONObject = [
            "host": .string(hosts.randomElement(using: &random)!),
            "n": .int(Int64.random(in: 0..<100, using: &random)),
            "ts": .int(1_760_000_000_000 + Int64.random(in: 0..<86_400_000, using: &random)),
            "ip": .string("10.0.\(Int.random(in: 0..<4, using: &random)).\(Int.random(in: 1..<255, using: &random))"),
            "msg": .string(
                (0..<Int.random(in: 1..<6, using: &random)).map { _ in words.randomElement(using: &random)! }
                    .joined(separator: " ")
            ),
            "ok": .bool(Bool.random(using: &random)),
        ]
        if Bool.random(using: &random) {
            object["ratio"] = .double(Double(Int.random(in: 0..<1000, using: &random)) / 8)
        }
        let tags = (0..<Int.random(in: 0..<3, using: &random)).map { _ in
            JSON.string(words.randomElement(using: &random)!)
        }
        if !tags.isEmpty { object["tags"] = .array(tags) }
        return .object(object)
    }

    /// The queries compared, each with the scan that answers it.
    static func checks() -> [(query: JSON, matches: (JSON) -> Bool)] {
        var checks: [(JSON, (JSON) -> Bool)] = [(["match_all": [:]], { _ in true })]
        for host in hosts {
            checks.append((["term": ["host": .string(host)]], { $0["host"]?.stringValue == host }))
            checks.append(
                (
                    ["prefix": ["host": .string(String(host.prefix(2)))]],
                    { $0["host"]?.stringValue?.hasPrefix(host.prefix(2)) == true }
                )
            )
        }
        for word in words {
            checks.append(
                (
                    ["match": ["msg": .string(word)]],
                    { $0["msg"]?.stringValue?.split(separator: " ").contains(Substring(word)) == true }
                )
            )
            checks.append(
                (["term": ["tags": .string(word)]], { $0["tags"]?.arrayValue?.contains(.string(word)) == true })
            )
        }
        for (low, high) in [(0, 10), (25, 75), (90, 100)] {
            checks.append(
                (
                    ["range": ["n": ["gte": .int(Int64(low)), "lt": .int(Int64(high))]]],
                    {
                        guard let n = $0["n"]?.intValue else { return false }
                        return n >= low && n < high
                    }
                )
            )
        }
        checks.append((["range": ["ratio": ["gt": 60.5]]], { ($0["ratio"]?.doubleValue ?? -1) > 60.5 }))
        checks.append(
            (["range": ["ts": ["gte": 1_760_043_200_000]]], { ($0["ts"]?.intValue ?? 0) >= 1_760_043_200_000 })
        )
        checks.append((["term": ["ip": "10.0.1.0/24"]], { $0["ip"]?.stringValue?.hasPrefix("10.0.1.") == true }))
        checks.append((["exists": ["field": "tags"]], { $0["tags"] != nil }))
        checks.append((["exists": ["field": "ratio"]], { $0["ratio"] != nil }))
        checks.append((["term": ["ok": true]], { $0["ok"] == true }))
        checks.append(
            (
                [
                    "bool": [
                        "must": [["match": ["msg": "dns"]]], "must_not": [["term": ["host": "alpha"]]],
                        "filter": [["range": ["n": ["lt": 50]]]],
                    ]
                ],
                {
                    $0["msg"]?.stringValue?.split(separator: " ").contains("dns") == true
                        && $0["host"]?.stringValue != "alpha"
                        && ($0["n"]?.intValue ?? 100) < 50
                }
            )
        )
        checks.append((["wildcard": ["host": "*ta"]], { $0["host"]?.stringValue?.hasSuffix("ta") == true }))
        return checks
    }

    /// Compares every check, the aggregations, the sort order and every stored document with `model`.
    static func compare(_ store: EmbeddedStore, _ model: [String: JSON], context: String) throws {
        #expect(try store.count("merged", query: .matchAll(boost: 1)) == model.count, "\(context): count")
        for (query, matches) in checks() {
            let found = Set(try store.ids("merged", ["query": query, "size": 10_000]))
            let expected = Set(model.filter { matches($0.value) }.keys)
            #expect(found == expected, "\(context): \(query.serialized())")
        }
        let response = try store.search(
            "merged",
            [
                "size": 0,
                "aggs": [
                    "hosts": ["terms": ["field": "host", "size": 20]], "total": ["sum": ["field": "n"]],
                    "tags": ["terms": ["field": "tags", "size": 20]],
                ],
            ]
        )
        var hosts: [String: Int] = [:]
        var tags: [String: Int] = [:]
        for document in model.values {
            hosts[document["host"]!.stringValue!, default: 0] += 1
            for tag in Set(document["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []) { tags[tag, default: 0] += 1 }
        }
        func buckets(_ name: String) -> [String: Int] {
            var result: [String: Int] = [:]
            for bucket in response["aggregations"]?[name]?["buckets"]?.arrayValue ?? [] {
                result[bucket["key"]!.stringValue!] = Int(bucket["doc_count"]!.intValue!)
            }
            return result
        }
        #expect(buckets("hosts") == hosts, "\(context): terms aggregation")
        #expect(buckets("tags") == tags, "\(context): terms aggregation of an array")
        let sum = model.values.reduce(0) { $0 + Int($1["n"]!.intValue!) }
        #expect(response["aggregations"]?["total"]?["value"]?.doubleValue == Double(sum), "\(context): sum")
        let sorted = try store.search("merged", ["size": 10_000, "sort": [["n": "desc"]], "_source": false])
        let order = sorted["hits"]?["hits"]?.arrayValue?.compactMap { $0["sort"]?[0]?.intValue } ?? []
        #expect(order == model.values.compactMap { $0["n"]?.intValue }.sorted(by: >), "\(context): sort")
        for (id, document) in model {
            let stored = try store.get(index: "merged", id: id)
            #expect(stored.map { try? JSON.parse($0.source) } == document, "\(context): document \(id)")
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomInterleavingsAgreeWithAScan(seed: UInt64) async throws {
        try await withTemporaryDirectory { directory in
            var random = SplitMix64(seed: seed)
            let configuration = EmbeddedStore.Configuration(dataDirectory: directory, segmentDocuments: 12)
            var store = try EmbeddedStore(configuration: configuration)
            defer { try? store.close() }
            try store.createIndex("merged", body: ["mappings": Self.mappings])
            var model: [String: JSON] = [:]
            var merges = 0
            for step in 0..<700 {
                let id = "d\(Int.random(in: 0..<160, using: &random))"
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<55:
                    let document = Self.document(&random)
                    _ = try store.write(
                        index: "merged",
                        .index(IndexRequest(id: id, source: document.serializedBytes(), document: document))
                    )
                    model[id] = document
                case 55..<70:
                    let patch: JSON = ["n": .int(Int64.random(in: 0..<100, using: &random))]
                    if let current = model[id] {
                        _ = try store.write(index: "merged", .update(UpdateRequest(id: id, doc: patch)))
                        model[id] = current.merging(patch)
                    }
                case 70..<85:
                    _ = try store.write(index: "merged", .delete(id: id, conditions: .init()))
                    model[id] = nil
                case 85..<93:
                    try store.flush("merged")
                case 93..<98:
                    let maxSegments: Int? = Bool.random(using: &random) ? Int.random(in: 1..<4, using: &random) : nil
                    _ = try store.forceMerge(
                        "merged",
                        maxSegments: maxSegments,
                        onlyExpungeDeletes: maxSegments == nil && Bool.random(using: &random)
                    )
                    merges += 1
                default:
                    try store.close()
                    store = try EmbeddedStore(configuration: configuration)
                }
                if step % 175 == 174 { try Self.compare(store, model, context: "seed \(seed) step \(step)") }
            }
            #expect(merges > 0)
            _ = try store.forceMerge("merged", maxSegments: 1)
            try Self.compare(store, model, context: "seed \(seed) after merging to one segment")
            let summary = try #require(try store.summaries("merged").first)
            #expect(summary.deletedCount == 0, "a merge to one segment leaves no deleted documents")
            #expect(summary.documentCount == model.count)
            let segments = try store.segments("merged")[0].segments
            #expect(segments.count == 1)
            #expect(segments.first?.deletedDocuments == 0)

            // Scores: the merged segment's statistics are those of the live documents only, as if freshly loaded.
            try await withTemporaryDirectory { fresh in
                let reference = try EmbeddedStore(configuration: .init(dataDirectory: fresh))
                defer { try? reference.close() }
                try reference.createIndex("merged", body: ["mappings": Self.mappings])
                let ids = model.keys.sorted()
                try reference.index("merged", ids.map { model[$0]! }, ids: ids)
                for word in Self.words {
                    let body: JSON = ["query": ["match": ["msg": .string(word)]], "size": 1_000]
                    func scores(_ store: EmbeddedStore) throws -> [String: Double] {
                        var result: [String: Double] = [:]
                        for hit in try store.search("merged", body)["hits"]?["hits"]?.arrayValue ?? [] {
                            result[hit["_id"]!.stringValue!] = hit["_score"]?.doubleValue
                        }
                        return result
                    }
                    let merged = try scores(store)
                    let expected = try scores(reference)
                    #expect(merged.keys.sorted() == expected.keys.sorted())
                    for (id, score) in expected {
                        #expect(abs((merged[id] ?? 0) - score) < 1e-5, "score of \(id) for \(word)")
                    }
                }
            }
        }
    }

    /// A large request is indexed in chunks on all cores, each chunk joining the segment whole; a request where an
    /// item fails or updates falls back to adding documents one by one. Both read as the scan says.
    @Test func largeRequestsJoinTheSegmentInChunksAndReadTheSame() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory, segmentDocuments: 5_000))
            defer { try? store.close() }
            try store.createIndex("merged", body: ["mappings": Self.mappings])
            var random = SplitMix64(seed: 41)
            var model: [String: JSON] = [:]
            func request(_ ids: [String], createOnly: Bool = false) throws {
                let documents = ids.map { _ in Self.document(&random) }
                let results = store.bulk(
                    zip(ids, documents).map { id, document in
                        .init(
                            index: "merged",
                            operation: .index(
                                IndexRequest(
                                    id: id,
                                    source: document.serializedBytes(),
                                    document: document,
                                    createOnly: createOnly
                                )
                            )
                        )
                    }
                )
                for (id, (document, result)) in zip(ids, zip(documents, results)) where result.error == nil {
                    model[id] = document
                }
            }
            try request((0..<700).map { "d\($0)" })
            try Self.compare(store, model, context: "one request in chunks")
            // Half of these exist already: those items fail, so the request's documents are added one by one.
            try request((350..<1_050).map { "d\($0)" }, createOnly: true)
            try Self.compare(store, model, context: "a request with failed items")
            try request((0..<400).map { "d\($0)" })
            try Self.compare(store, model, context: "a request replacing documents")
            try store.flush("merged")
            try Self.compare(store, model, context: "flushed")
        }
    }

    /// Background merges keep the number of segments bounded however small the flushes, and give back the space of
    /// replaced documents.
    @Test func backgroundMergesBoundTheSegmentsAndDropReplacedDocuments() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory, segmentDocuments: 20))
            defer { try? store.close() }
            var random = SplitMix64(seed: 99)
            for round in 0..<120 {
                let documents = (0..<20).map { _ in Self.document(&random) }
                try store.index("bounded", documents, ids: (0..<20).map { "r\(round % 40)-\($0)" })
                try store.flush("bounded")
            }
            // Merges run in the background; a forced merge with no limit waits for the policy's work to be done.
            _ = try store.forceMerge("bounded")
            let segments = try store.segments("bounded")[0].segments
            let policy = MergePolicy(floorDocuments: 20)
            #expect(segments.count < 120)
            #expect(segments.count <= 2 * policy.segmentsPerTier, "\(segments.count) segments")
            #expect(try store.count("bounded", query: .matchAll(boost: 1)) == 800)
            #expect(try store.summaries("bounded")[0].documentCount == 800)
            #expect(try store.summaries("bounded")[0].deletedCount < 1_600, "merges dropped replaced documents")
        }
    }

    @Test func thePolicyMergesNeighboursOfOneTierAndRewritesSegmentsWithManyDeletions() {
        let policy = MergePolicy(floorDocuments: 100)
        let small = MergePolicy.Segment(live: 100, total: 100)
        let large = MergePolicy.Segment(live: 1_000, total: 1_000)
        #expect(policy.nextMerge(Array(repeating: small, count: 9)) == nil)
        #expect(policy.nextMerge([large] + Array(repeating: small, count: 10)) == 1..<11)
        #expect(policy.nextMerge(Array(repeating: large, count: 10) + [small]) == 0..<10)
        #expect(policy.nextMerge([large, MergePolicy.Segment(live: 700, total: 1_000), small]) == 1..<2)
        #expect(policy.tier(100) == 0 && policy.tier(1_000) == 1 && policy.tier(10_000) == 2)
        var limited = policy
        limited.maxMergedDocuments = 350
        #expect(limited.nextMerge(Array(repeating: small, count: 10)) == 0..<3)
        // However sizes fall, the number of segments stays bounded.
        var segments: [MergePolicy.Segment] = []
        var random = SplitMix64(seed: 5)
        for _ in 0..<2_000 {
            segments.append(.init(live: Int.random(in: 1..<300, using: &random), total: 300))
            while let window = policy.nextMerge(segments) {
                let merged = segments[window].reduce(MergePolicy.Segment(live: 0, total: 0)) {
                    .init(live: $0.live + $1.live, total: $0.live + $1.live)
                }
                segments.replaceSubrange(window, with: [merged])
            }
            #expect(segments.count <= policy.maxSegments)
        }
    }

    @Test func postingListsRoundTripInTheirSmallerForm() {
        var random = SplitMix64(seed: 17)
        for density in [0.001, 0.05, 0.3, 0.9, 1.0] {
            let documents = (0..<5_000).filter { _ in Double.random(in: 0..<1, using: &random) < density }.map(
                UInt32.init
            )
            let frequencies = documents.map { _ in UInt16.random(in: 1..<300, using: &random) }
            let plain = PostingsCodec.encode(documents)
            #expect(PostingsCodec.decode(plain, layout: 2).documents == documents)
            #expect(PostingsCodec.decode(plain, layout: 2).frequencies == nil)
            let text = PostingsCodec.decode(PostingsCodec.encode(documents, frequencies: frequencies), layout: 2)
            #expect(text.documents == documents && text.frequencies == (documents.isEmpty ? nil : frequencies))
            // Never more than the 4 bytes a document of the first layout, and a bit a document when dense.
            #expect(plain.count <= 8 + documents.count * 4)
            if density >= 0.3 { #expect(plain.count <= 5_000 / 8 + 8) }
        }
        #expect(PostingsCodec.forEachDocument([9, 1], { _ in }) == nil, "an unknown mode is refused, not misread")
        #expect(PostingsCodec.forEachDocument([1, 3, 1], { _ in }) == nil, "a truncated list is refused")
    }
}
