import QuarryCore
import Testing

/// KQL as Kibana's documentation writes it, translated as Kibana translates it: one case per example of the
/// "Kibana Query Language" reference page, and the errors a person makes.
struct KQLTests {
    static func either(_ clauses: JSON...) -> JSON {
        ["bool": ["should": .array(clauses), "minimum_should_match": 1]]
    }

    static let examples: [(kql: String, dsl: JSON)] = [
        ("http.request.method: *", either(["exists": ["field": "http.request.method"]])),
        ("http.request.method: GET", either(["match": ["http.request.method": "GET"]])),
        ("Hello", ["multi_match": ["type": "best_fields", "query": "Hello", "lenient": true]]),
        (#""quick brown fox""#, ["multi_match": ["type": "phrase", "query": "quick brown fox", "lenient": true]]),
        (
            "http.request.body.content: null pointer",
            either(["match": ["http.request.body.content": "null pointer"]])
        ),
        (
            #"http.request.body.content: "null pointer""#,
            either(["match_phrase": ["http.request.body.content": "null pointer"]])
        ),
        (
            #"http.request.referrer: "https://example.com""#,
            either(["match_phrase": ["http.request.referrer": "https://example.com"]])
        ),
        (
            #"http.request.referrer: https\://example.com"#,
            either(["match": ["http.request.referrer": "https://example.com"]])
        ),
        (
            "http.response.status_code:400 401 404",
            either(["match": ["http.response.status_code": "400 401 404"]])
        ),
        (
            "http.response.bytes < 10000",
            either(["range": ["http.response.bytes": ["lt": 10000]]])
        ),
        (
            "http.response.bytes > 10000 and http.response.bytes <= 20000",
            [
                "bool": [
                    "filter": [
                        either(["range": ["http.response.bytes": ["gt": 10000]]]),
                        either(["range": ["http.response.bytes": ["lte": 20000]]]),
                    ]
                ]
            ]
        ),
        (
            "@timestamp < now-2w",
            either(["range": ["@timestamp": ["lt": "now-2w"]]])
        ),
        (
            #"@timestamp < "2021-01-02T21:55:59""#,
            either(["range": ["@timestamp": ["lt": "2021-01-02T21:55:59"]]])
        ),
        (
            "http.response.status_code: 4*",
            either(["query_string": ["fields": ["http.response.status_code"], "query": "4*"]])
        ),
        (
            "NOT http.request.method: GET",
            ["bool": ["must_not": either(["match": ["http.request.method": "GET"]])]]
        ),
        (
            "http.request.method: GET OR http.response.status_code: 400",
            either(
                either(["match": ["http.request.method": "GET"]]),
                either(["match": ["http.response.status_code": "400"]])
            )
        ),
        (
            "http.request.method: GET AND http.response.status_code: 400",
            [
                "bool": [
                    "filter": [
                        either(["match": ["http.request.method": "GET"]]),
                        either(["match": ["http.response.status_code": "400"]]),
                    ]
                ]
            ]
        ),
        (
            "(http.request.method: GET AND http.response.status_code: 200) OR\n(http.request.method: POST AND http.response.status_code: 400)",
            either(
                [
                    "bool": [
                        "filter": [
                            either(["match": ["http.request.method": "GET"]]),
                            either(["match": ["http.response.status_code": "200"]]),
                        ]
                    ]
                ],
                [
                    "bool": [
                        "filter": [
                            either(["match": ["http.request.method": "POST"]]),
                            either(["match": ["http.response.status_code": "400"]]),
                        ]
                    ]
                ]
            )
        ),
        (
            "http.request.method: (GET OR POST OR DELETE)",
            either(
                either(["match": ["http.request.method": "GET"]]),
                either(["match": ["http.request.method": "POST"]]),
                either(["match": ["http.request.method": "DELETE"]])
            )
        ),
        (
            "datastream.*: logs",
            either(["query_string": ["fields": ["datastream.*"], "query": "logs"]])
        ),
        (
            #"user.names:{ first: "Alice" and last: "White" }"#,
            [
                "nested": [
                    "path": "user.names",
                    "query": [
                        "bool": [
                            "filter": [
                                either(["match_phrase": ["user.names.first": "Alice"]]),
                                either(["match_phrase": ["user.names.last": "White"]]),
                            ]
                        ]
                    ],
                    "score_mode": "none",
                ]
            ]
        ),
        ("", ["match_all": [:]]),
        ("*", ["match_all": [:]]),
        (
            "dns.question.name: *.Evil-CDN.example",
            either(["query_string": ["fields": ["dns.question.name"], "query": "*.Evil\\-CDN.example"]])
        ),
    ]

    @Test(arguments: examples.indices) func kibanasExamplesTranslateAsKibanaDoes(_ index: Int) throws {
        let (kql, dsl) = Self.examples[index]
        #expect(try KQL.query(kql) == dsl, "\(kql)")
    }

    @Test func mistakesAreSyntaxErrorsWithTheirPlace() {
        for (kql, message) in [
            (#"method: "GET"#, "a quoted value is not closed"), ("(method: GET", "expected ')' at the end"),
            ("method:", "a value is missing"), ("bytes > 1*", "a wildcard is not allowed in a range"),
            ("method: GET)", "unexpected ')'"), ("user:{ name: x", "expected '}' at the end"),
        ] {
            #expect(throws: KQL.SyntaxError.self, "\(kql)") { try KQL.query(kql) }
            do {
                _ = try KQL.query(kql)
            } catch {
                #expect(error.message == message, "\(kql): \(error)")
            }
        }
    }
}
