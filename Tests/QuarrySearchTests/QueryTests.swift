import Foundation
import QuarryCore
import QuarryTesting
import Testing

@testable import QuarrySearch

/// Query DSL semantics against the embedded store, case by case as Elasticsearch answers them.
@Suite(.mayBlock)
struct QueryTests {
    static let documents: [JSON] = [
        [
            "@timestamp": "2026-11-29T10:00:00Z", "client": ["ip": "10.1.0.2", "port": 5353],
            "dns": ["question": ["name": "Example.com"], "resolved_ip": ["93.184.216.34", "2001:db8::1"]],
            "message": "The quick brown fox", "bytes": 120, "ratio": 0.5, "ok": true, "tags": ["a", "b"],
        ],
        [
            "@timestamp": "2026-11-29T12:00:00Z", "client": ["ip": "10.1.0.3", "port": 40000],
            "dns": ["question": ["name": "github.com"], "resolved_ip": ["140.82.112.3"]],
            "message": "jumps over the lazy dog", "bytes": 2048, "ratio": 1.5, "ok": false, "tags": ["b"],
        ],
        [
            "@timestamp": "2026-11-28T23:59:59Z", "client": ["ip": "192.168.0.9", "port": 53],
            "dns": ["question": ["name": "evil.example"]],
            "message": "the quick dog", "bytes": 7, "tags": [],
        ],
    ]

    func withDocuments(_ body: (EmbeddedStore) throws -> Void) async throws {
        try await withStore { store in
            try store.createIndex(
                "logs",
                body: [
                    "mappings": [
                        "properties": [
                            "client": ["properties": ["ip": ["type": "ip"], "port": ["type": "integer"]]],
                            "dns": [
                                "properties": [
                                    "question": ["properties": ["name": ["type": "keyword"]]],
                                    "resolved_ip": ["type": "ip"],
                                ]
                            ],
                        ]
                    ]
                ]
            )
            try store.index("logs", Self.documents, ids: ["1", "2", "3"])
            try body(store)
        }
    }

    @Test func termOnKeywordIsExactAndCaseSensitiveUnlessAsked() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["term": ["dns.question.name": "Example.com"]]]) == ["1"])
            #expect(try store.ids("logs", ["query": ["term": ["dns.question.name": "example.com"]]]) == [])
            let insensitive: JSON = [
                "query": ["term": ["dns.question.name": ["value": "EXAMPLE.COM", "case_insensitive": true]]]
            ]
            #expect(try store.ids("logs", insensitive) == ["1"])
        }
    }

    /// `case_insensitive` on `term`, `prefix` and `wildcard` (Elasticsearch 7.10+): ASCII letters match in any
    /// case, other characters exactly; on a keyword field with a normalizer the query value is normalized too, and
    /// `_source` keeps the value as sent. A brute-force oracle over names in random case decides every answer.
    @Test func caseInsensitiveTermPrefixAndWildcardWithAndWithoutANormalizer() async throws {
        try await withStore { store in
            try store.createIndex(
                "names",
                body: [
                    "settings": [
                        "analysis": [
                            "normalizer": ["folded": ["type": "custom", "filter": ["lowercase", "asciifolding"]]]
                        ]
                    ],
                    "mappings": [
                        "properties": [
                            "name": ["type": "keyword"],
                            "lowered": ["type": "keyword", "normalizer": "lowercase"],
                            "folded": ["type": "keyword", "normalizer": "folded"],
                        ]
                    ],
                ]
            )
            var random = SystemRandomNumberGenerator()
            let base = ["update.evil-cdn.example", "evil-cdn.example", "cdn.example", "Ünïcode.example", "other.test"]
            var names: [String] = []
            for word in base {
                for _ in 0..<4 {
                    names.append(String(word.map { Bool.random(using: &random) ? Character($0.uppercased()) : $0 }))
                }
            }
            try store.index(
                "names",
                names.map { ["name": .string($0), "lowered": .string($0), "folded": .string($0)] },
                ids: names.indices.map(String.init)
            )
            _ = try store.refresh("names")
            func ids(_ query: JSON) throws -> Set<String> {
                Set(try store.ids("names", ["size": 100, "query": query]))
            }
            func expected(_ accept: (String) -> Bool) -> Set<String> {
                Set(names.indices.filter { accept(names[$0]) }.map(String.init))
            }
            func ascii(_ text: String) -> String {
                String(text.map { $0.isASCII ? Character($0.lowercased()) : $0 })
            }
            for probe in ["UPDATE.Evil-CDN.example", "evil-cdn.example", "ünïcode.example", "ÜNÏCODE.EXAMPLE"] {
                let term: JSON = ["term": ["name": ["value": .string(probe), "case_insensitive": true]]]
                #expect(try ids(term) == expected { ascii($0) == ascii(probe) }, "\(probe)")
                let exact: JSON = ["term": ["name": .string(probe)]]
                #expect(try ids(exact) == expected { $0 == probe }, "\(probe)")
                // The lowercase normalizer: indexed and queried lower case, with or without case_insensitive.
                #expect(
                    try ids(["term": ["lowered": .string(probe)]]) == expected { $0.lowercased() == probe.lowercased() }
                )
                let folded: JSON = ["term": ["folded": .string(probe)]]
                #expect(try ids(folded) == expected { fold($0) == fold(probe) }, "\(probe)")
            }
            let prefix: JSON = ["prefix": ["name": ["value": "EVIL-", "case_insensitive": true]]]
            #expect(try ids(prefix) == expected { ascii($0).hasPrefix("evil-") })
            #expect(try ids(["prefix": ["name": "EVIL-"]]) == expected { $0.hasPrefix("EVIL-") })
            #expect(try ids(["prefix": ["lowered": "EVIL-"]]) == expected { $0.lowercased().hasPrefix("evil-") })
            let wildcard: JSON = ["wildcard": ["name": ["value": "*.EVIL-cdn.example", "case_insensitive": true]]]
            #expect(try ids(wildcard) == expected { ascii($0).hasSuffix(".evil-cdn.example") })
            #expect(
                try ids(["wildcard": ["lowered": "*.EVIL-CDN.EXAMPLE"]])
                    == expected {
                        $0.lowercased().hasSuffix(".evil-cdn.example")
                    }
            )
            // `_source` keeps what was sent; the normalized form is what is indexed.
            let first = try store.search("names", ["query": ["ids": ["values": ["0"]]]])
            #expect(first["hits"]?["hits"]?[0]?["_source"]?["lowered"] == .string(names[0]))
        }
        func fold(_ text: String) -> String {
            text.lowercased().folding(options: .diacriticInsensitive, locale: nil)
        }
    }

    @Test func anUnknownNormalizerOrOneOnATextFieldIsRefused() async throws {
        try await withStore { store in
            #expect(throws: StoreError.self) {
                try store.createIndex(
                    "a",
                    body: ["mappings": ["properties": ["n": ["type": "keyword", "normalizer": "nope"]]]]
                )
            }
            #expect(throws: StoreError.self) {
                try store.createIndex(
                    "b",
                    body: ["mappings": ["properties": ["n": ["type": "text", "normalizer": "lowercase"]]]]
                )
            }
        }
    }

    @Test func dynamicStringsAreTextWithAKeywordSubField() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["match": ["message": "QUICK"]]]).sorted() == ["1", "3"])
            #expect(try store.ids("logs", ["query": ["term": ["message.keyword": "the quick dog"]]]) == ["3"])
            #expect(try store.ids("logs", ["query": ["term": ["tags.keyword": "b"]]]).sorted() == ["1", "2"])
            let mapping = try store.metadata("logs")[0].mappings.json
            #expect(
                mapping["properties"]?["message"]
                    == ["type": "text", "fields": ["keyword": ["type": "keyword", "ignore_above": 256]]]
            )
            #expect(mapping["properties"]?["@timestamp"] == ["type": "date"])
            #expect(mapping["properties"]?["bytes"] == ["type": "long"])
            #expect(mapping["properties"]?["ratio"] == ["type": "float"])
            #expect(mapping["properties"]?["ok"] == ["type": "boolean"])
        }
    }

    @Test func matchOperatorAndPhrase() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            let and: JSON = ["query": ["match": ["message": ["query": "quick dog", "operator": "and"]]]]
            #expect(try store.ids("logs", and) == ["3"])
            let or: JSON = ["query": ["match": ["message": "quick dog"]]]
            #expect(try store.ids("logs", or).sorted() == ["1", "2", "3"])
            #expect(try store.ids("logs", ["query": ["match_phrase": ["message": "quick brown"]]]) == ["1"])
            #expect(try store.ids("logs", ["query": ["match_phrase": ["message": "brown quick"]]]) == [])
            #expect(try store.ids("logs", or).first == "3", "the document with both terms in a short field ranks first")
        }
    }

    @Test func rangesOnNumbersDatesAndAddresses() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["range": ["bytes": ["gte": 100, "lt": 2048]]]]) == ["1"])
            #expect(try store.ids("logs", ["query": ["range": ["ratio": ["gt": 0.5]]]]) == ["2"])
            let day: JSON = ["query": ["range": ["@timestamp": ["gte": "2026-11-29", "lt": "2026-11-29||+1d"]]]]
            #expect(try store.ids("logs", day).sorted() == ["1", "2"])
            let rounded: JSON = ["query": ["range": ["@timestamp": ["lte": "2026-11-28||/d"]]]]
            #expect(try store.ids("logs", rounded) == ["3"])
            let zoned: JSON = [
                "query": ["range": ["@timestamp": ["gte": "2026-11-29T00:00:00", "time_zone": "+01:00"]]]
            ]
            #expect(try store.ids("logs", zoned).sorted() == ["1", "2", "3"])
            let formatted: JSON = [
                "query": ["range": ["@timestamp": ["gt": "29/11/2026 11", "format": "dd/MM/yyyy HH"]]]
            ]
            #expect(try store.ids("logs", formatted) == ["2"])
            let addresses: JSON = ["query": ["range": ["client.ip": ["gte": "10.1.0.0", "lte": "10.1.0.2"]]]]
            #expect(try store.ids("logs", addresses) == ["1"])
        }
    }

    @Test func cidrTermsOnIPFieldsAndMultiValuedMatching() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["term": ["client.ip": "10.1.0.0/16"]]]).sorted() == ["1", "2"])
            #expect(try store.ids("logs", ["query": ["term": ["dns.resolved_ip": "2001:db8::/32"]]]) == ["1"])
            let terms: JSON = ["query": ["terms": ["dns.resolved_ip": ["140.82.112.3", "93.184.216.34"]]]]
            #expect(try store.ids("logs", terms).sorted() == ["1", "2"])
        }
    }

    @Test func boolClausesAndMinimumShouldMatch() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            let query: JSON = [
                "query": [
                    "bool": [
                        "filter": [["range": ["bytes": ["gte": 1]]]],
                        "must_not": [["term": ["ok": false]]],
                        "should": [["match": ["message": "fox"]], ["match": ["message": "dog"]]],
                        "minimum_should_match": 1,
                    ]
                ]
            ]
            #expect(try store.ids("logs", query).sorted() == ["1", "3"])
            let two: JSON = [
                "query": [
                    "bool": [
                        "should": [
                            ["match": ["message": "quick"]], ["match": ["message": "dog"]],
                            ["match": ["message": "fox"]],
                        ],
                        "minimum_should_match": "2",
                    ]
                ]
            ]
            #expect(try store.ids("logs", two).sorted() == ["1", "3"])
        }
    }

    @Test func existsIdsPrefixWildcardAndQueryString() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["exists": ["field": "ratio"]]]).sorted() == ["1", "2"])
            #expect(try store.ids("logs", ["query": ["exists": ["field": "dns"]]]).sorted() == ["1", "2", "3"])
            #expect(try store.ids("logs", ["query": ["ids": ["values": ["3", "9"]]]]) == ["3"])
            #expect(try store.ids("logs", ["query": ["prefix": ["dns.question.name": "git"]]]) == ["2"])
            #expect(try store.ids("logs", ["query": ["wildcard": ["dns.question.name": "*.exam?le"]]]) == ["3"])
            let lucene: JSON = ["query": ["query_string": ["query": "dns.question.name:github.com OR message:fox"]]]
            #expect(try store.ids("logs", lucene).sorted() == ["1", "2"])
            let negated: JSON = ["query": ["query_string": ["query": "quick AND NOT brown"]]]
            #expect(try store.ids("logs", negated) == ["3"])
        }
    }

    /// Lucene's regular expressions match whole terms (no anchors: `^` is a character), in the `regexp` query and as
    /// `/…/` in `query_string`, where escapes and leading wildcards read as pySigma's Elasticsearch backend writes them.
    @Test func regularExpressionsAndEscapedWildcardsAsLuceneReadsThem() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            func ids(_ query: JSON) throws -> [String] { try store.ids("logs", ["query": query]).sorted() }
            #expect(try ids(["regexp": ["dns.question.name": "[a-z]+\\.com"]]) == ["2"])
            #expect(try ids(["regexp": ["dns.question.name": "git"]]) == [])
            #expect(
                try ids(["regexp": ["dns.question.name": ["value": "example\\.COM", "case_insensitive": true]]]) == [
                    "1"
                ]
            )
            #expect(
                try ids(["regexp": ["dns.question.name": ["value": ".*\\.COM", "case_insensitive": true]]]) == [
                    "1", "2",
                ]
            )
            #expect(try ids(["regexp": ["dns.question.name": "^github.com$"]]) == [])
            #expect(try ids(["regexp": ["dns.question.name": "\"evil.\"ex@"]]) == ["3"])
            #expect(try ids(["regexp": ["dns.question.name": "(git|evil)[.a-z]{6,}"]]) == ["2", "3"])
            #expect(try ids(["query_string": ["query": "dns.question.name:/[a-z]+\\.(com|example)/"]]) == ["2", "3"])
            #expect(
                try ids([
                    "query_string": [
                        "query": "(dns.question.name:(*.example OR *hub.c\\om)) AND NOT client.ip:10.1.0.9"
                    ]
                ])
                    == ["2", "3"]
            )
            // An escaped star is a star, not a wildcard.
            #expect(try ids(["query_string": ["query": "dns.question.name:evil\\*"]]) == [])
            #expect(try ids(["wildcard": ["dns.question.name": "evil\\.exam*"]]) == ["3"])
            for (pattern, reason) in [
                (
                    "a&b",
                    "invalid regular expression [a&b]: '&' (intersection, complement, intervals) is not supported by this store"
                ),
                ("[a-z", "invalid regular expression [[a-z]: a '[' is not closed"),
                ("(ab", "invalid regular expression [(ab]: a '(' is not closed"),
            ] {
                #expect(throws: StoreError.self) { try ids(["regexp": ["dns.question.name": .string(pattern)]]) }
                do {
                    _ = try ids(["regexp": ["dns.question.name": .string(pattern)]])
                } catch {
                    #expect((error as? StoreError)?.reason == reason)
                }
            }
            try store.putSettings("logs", body: ["index": ["max_regex_length": 5]])
            #expect(throws: StoreError.self) { try ids(["regexp": ["dns.question.name": "github.*"]]) }
        }
    }

    /// A compiled query written back as Query DSL reads back to the same query, for the Lucene pySigma writes and
    /// for DSL of every kind; comparing without case turns keyword queries case-insensitive and nothing else.
    @Test func compiledQueriesRoundTripThroughTheirDSL() async throws {
        let lucene = [
            #"dns.question.name:(*.evil\-cdn.example OR *.duckdns.org) AND dns.question.type:TXT"#,
            #"dns.question.name:/.*[a-z0-9]{40,}\..*/ AND (NOT (dns.question.registered_domain:(google.com OR x.net)))"#,
            #"(dns.question.name:(*xmr* OR *monero*)) AND (NOT client.ip:10.9.0.0\/16)"#,
            #"message:"quick fox" OR bytes:[10 TO 20} OR _exists_:ratio OR quick"#,
        ]
        var queries = try lucene.map { try Query.parse(["query_string": ["query": .string($0)]]) }
        queries += try [
            ["match_all": ["boost": 2]], ["match_none": [:]], ["terms": ["k": [1, "a"], "boost": 3]],
            [
                "range": [
                    "ts": ["gte": "now-1d", "lt": "now", "format": "strict_date_optional_time", "time_zone": "+01:00"]
                ]
            ],
            ["ids": ["values": ["1", "2"]]], ["prefix": ["k": ["value": "Ab", "case_insensitive": true]]],
            ["match": ["m": ["query": "a b", "operator": "and", "minimum_should_match": "1", "analyzer": "standard"]]],
            ["match_phrase": ["m": ["query": "a b", "slop": 2]]],
            ["constant_score": ["filter": ["term": ["k": "x"]], "boost": 1.5]],
            ["multi_match": ["query": "x", "fields": ["a", "b*"], "type": "phrase"]],
            ["bool": ["should": [["term": ["k": "x"]]], "minimum_should_match": "1", "boost": 2]],
        ].map { try Query.parse($0) }
        for query in queries {
            #expect(try Query.parse(query.json) == query, "\(query.json)")
        }
        try await withDocuments { (store: EmbeddedStore) throws in
            let mixed = try Query.parse(["query_string": ["query": "dns.question.name:*.COM OR message:QUICK"]])
            #expect(try store.ids("logs", ["query": mixed.json]).sorted() == ["1", "3"])
            let ignoring = mixed.ignoringCase(onKeywords: ["dns.question.name"])
            #expect(try store.ids("logs", ["query": ignoring.json]).sorted() == ["1", "2", "3"])
        }
    }

    @Test func unmappedFieldsMatchNothing() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect(try store.ids("logs", ["query": ["term": ["nope": "x"]]]) == [])
            #expect(try store.ids("logs", ["query": ["bool": ["must_not": [["term": ["nope": "x"]]]]]]).count == 3)
        }
    }

    @Test func malformedQueriesGetElasticsearchErrors() async throws {
        try await withDocuments { (store: EmbeddedStore) throws in
            #expect { try store.search("logs", ["query": ["nope": [:]]]) } throws: { error in
                (error as? StoreError)?.type == "parsing_exception"
                    && (error as? StoreError)?.reason == "unknown query [nope]"
            }
            #expect { try store.search("logs", ["query": ["term": ["a": "x", "b": "y"]]]) } throws: { error in
                (error as? StoreError)?.type == "parsing_exception"
            }
            #expect { try store.search("logs", ["size": "ten"]) } throws: { error in
                (error as? StoreError)?.type == "x_content_parse_exception" && (error as? StoreError)?.status == 400
            }
            #expect { try store.search("logs", ["query": ["range": ["bytes": ["gte": "lots"]]]]) } throws: { error in
                (error as? StoreError)?.type == "search_phase_execution_exception"
                    && (error as? StoreError)?.rootCauses.first?.type == "query_shard_exception"
            }
        }
    }
}

/// The hashes terms partitions use, against published MurmurHash3 vectors.
@Suite(.mayBlock)
struct PartitionHashTests {
    @Test func murmur3MatchesItsReferenceVectors() {
        #expect(Murmur3.hash32([], seed: 0) == 0)
        #expect(Murmur3.hash32([], seed: 1) == 0x514E_28B7)
        #expect(Murmur3.hash32(Array("hello".utf8), seed: 0) == 0x248B_FA47)
        #expect(Murmur3.hash32(Array("The quick brown fox jumps over the lazy dog".utf8), seed: 0) == 0x2E4F_F723)
        #expect(Murmur3.hash32([0x21, 0x43, 0x65, 0x87], seed: 0x5082_EDEE) == 0x2362_F9DE)
    }
}
