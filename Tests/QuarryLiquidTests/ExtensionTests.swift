import QuarryCore
import QuarryLiquid
import Testing

#if canImport(Glibc)
import Glibc
import QuarryTesting
#endif

/// A story context for tests: agents' events, credentials and resources from dictionaries.
struct TestStory: LiquidStoryContext {
    var events: [String: JSON] = [:]
    var credentials: [String: String] = [:]
    var resources: [String: JSON] = [:]
    var stories: [String: JSON] = [:]
    var storyRunGUID = "5b2f0e8c-0000-4000-8000-000000000001"
    var storyRunLink = "https://quarry.example/runs/5b2f0e8c-0000-4000-8000-000000000001"

    func event(ofAgentNamed name: String) throws(LiquidError) -> JSON? { events[name] }

    func credential(named name: String) throws(LiquidError) -> String {
        guard let value = credentials[name] else { throw LiquidError(.render, "no credential '\(name)'") }
        return value
    }

    func globalResource(named name: String) throws(LiquidError) -> JSON {
        guard let value = resources[name] else { throw LiquidError(.render, "no resource '\(name)'") }
        return value
    }

    func story(named name: String) throws(LiquidError) -> JSON {
        guard let value = stories[name] else { throw LiquidError(.render, "no story '\(name)'") }
        return value
    }
}

@Suite("Tines and Huginn extensions", .mayBlock)
struct ExtensionTests {
    let environment = LiquidEnvironment()

    func render(_ source: String, _ variables: JSONObject = [:], story: TestStory? = nil) throws -> String {
        try environment.parse(source).render(variables, story: story)
    }

    @Test func agentReferencesResolveThroughTheStory() throws {
        let story = TestStory(events: ["dns_lookup": ["Answer": [["data": "203.0.113.66"], ["data": "203.0.113.67"]]]])
        #expect(try render("{{ .dns_lookup.Answer[1].data }}", story: story) == "203.0.113.67")
        #expect(
            try render("{{ .dns_lookup.Answer | map: 'data' | join: ',' }}", story: story)
                == "203.0.113.66,203.0.113.67"
        )
        #expect(try render("[{{ .nobody.body }}]", story: story) == "[]")
        let strict = LiquidEnvironment(mode: .strict)
        #expect(throws: LiquidError.self) { try strict.parse("{{ .nobody.body }}").render(story: story) }
        // Outside a story a reference is an error, not an empty string.
        #expect(throws: LiquidError.self) { try render("{{ .dns_lookup.Answer }}") }
    }

    @Test func tinesTags() throws {
        let story = TestStory(
            credentials: ["elasticsearch": "ApiKey c2VjcmV0"],
            resources: ["es": ["url": "http://127.0.0.1:9200"], "tld": "example"],
            stories: ["enrich": "https://quarry.example/webhook/enrich"]
        )
        #expect(try render("{% credential elasticsearch %}", story: story) == "ApiKey c2VjcmV0")
        #expect(try render("{{ .CREDENTIAL.elasticsearch }}", story: story) == "ApiKey c2VjcmV0")
        #expect(try render("{% global_resource es %}", story: story) == #"{"url":"http://127.0.0.1:9200"}"#)
        #expect(try render("{{ .RESOURCE.es.url }}/_search", story: story) == "http://127.0.0.1:9200/_search")
        #expect(try render("{% global_resource tld %}", story: story) == "example")
        #expect(try render("{% story enrich %}", story: story) == "https://quarry.example/webhook/enrich")
        #expect(try render("{% story_run_guid %}", story: story) == story.storyRunGUID)
        #expect(try render("{% story_run_link %}", story: story) == story.storyRunLink)
        #expect(try render("a{% line_break %}b") == "a\nb")
        #expect(throws: LiquidError.self) { try render("{% credential missing %}", story: story) }
        #expect(throws: LiquidError.self) { try render("{% credential elasticsearch %}") }
        #expect(throws: LiquidError.self) { try environment.parse("{% credential %}") }
    }

    @Test func jsonFilters() throws {
        let hit: JSONObject = ["host": ["ip": "10.1.0.2", "ports": [53, 443]]]
        #expect(try render("{{ host | json }}", hit) == #"{"ip":"10.1.0.2","ports":[53,443]}"#)
        #expect(try render("{{ host | to_json }}", hit) == #"{"ip":"10.1.0.2","ports":[53,443]}"#)
        #expect(try render(#"{% assign h = s | json_parse %}{{ h.ports[1] }}"#, ["s": #"{"ports":[53,443]}"#]) == "443")
        #expect(try render(#"{{ s | from_json | size }}"#, ["s": "[1,2,3]"]) == "3")
        #expect(throws: LiquidError.self) { try render("{{ s | json_parse }}", ["s": "{not json"]) }
    }

    @Test func digestsAndEncodings() throws {
        #expect(
            try render("{{ 'abc' | sha256 }}") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        #expect(try render("{{ 'abc' | md5 }}") == "900150983cd24fb0d6963f7d28e17f72")
        let fox = "The quick brown fox jumps over the lazy dog"
        #expect(
            try render("{{ s | hmac_sha256: 'key' }}", ["s": .string(fox)])
                == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        )
        #expect(
            try render("{{ s | hmac_sha1: 'key' }}", ["s": .string(fox)]) == "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        )
        #expect(try render("{{ 'user:pass' | base64_encode }}") == "dXNlcjpwYXNz")
        #expect(try render("{{ 'dXNlcjpwYXNz' | base64_decode }}") == "user:pass")
        #expect(try render("{{ 'a b&c=d/é' | url_encode }}") == "a+b%26c%3Dd%2F%C3%A9")
        #expect(try render("{{ 'a+b%26c%3Dd%2F%C3%A9' | url_decode }}") == "a b&c=d/é")
    }

    @Test func regularExpressions() throws {
        #expect(try render(#"{{ 'c2.badactor.example' | regex_replace: '\.', '[.]' }}"#) == "c2[.]badactor[.]example")
        #expect(try render(#"{{ 'user=alice id=7' | regex_replace: 'user=(\w+)', 'who=\1' }}"#) == "who=alice id=7")
        #expect(try render(#"{{ 'a1b22c333' | regex_extract: '\d+' }}"#) == "1")
        #expect(try render(#"{{ 'ip 203.0.113.66 seen' | regex_extract: '(\d+)\.(\d+)', 2 }}"#) == "0")
        #expect(try render(#"[{{ 'none' | regex_extract: '\d' }}]"#) == "[]")
        #expect(throws: LiquidError.self) { try render("{{ 'x' | regex_replace: '(', '' }}") }
    }

    @Test func jsonPathAndGet() throws {
        let response: JSONObject = [
            "body": [
                "hits": [
                    "hits": [["_source": ["client": ["ip": "10.1.0.2"]]], ["_source": ["client": ["ip": "10.1.0.9"]]]]
                ]
            ]
        ]
        #expect(try render("{{ body | jsonpath: '$.hits.hits[0]._source.client.ip' }}", response) == "10.1.0.2")
        #expect(
            try render("{{ body | jsonpath: '$.hits.hits[*]._source.client.ip' | join: ' ' }}", response)
                == "10.1.0.2 10.1.0.9"
        )
        #expect(try render("{{ body | jsonpath: '$..ip' | size }}", response) == "2")
        #expect(try render("{{ body | get: 'hits' | get: 'hits' | size }}", response) == "2")
    }

    @Test func everydayFiltersTheIssueNames() throws {
        #expect(try render("{{ a | uniq | join: ',' }}", ["a": ["x", "y", "x"]]) == "x,y")
        #expect(try render("{{ missing | default: 'none' }}") == "none")
        #expect(try render("{{ a | size }}", ["a": [1, 2]]) == "2")
        #expect(try render("{{ 'a\nb' | newline_to_br }}") == "a<br />\nb")
        #expect(try render("{{ '<b>&' | escape }}") == "&lt;b&gt;&amp;")
        #expect(try render("{{ 'a\nb\r\n' | strip_newlines }}") == "ab")
        #expect(try render("{{ 0 | date: '%Y-%m-%dT%H:%M:%SZ' }}") == "1970-01-01T00:00:00Z")
        #expect(try render("{{ '2026-11-29T07:57:30Z' | date: '%s %b %-d' }}") == "1795939050 Nov 29")
        let now = try render("{{ 'now' | date: '%Y' }}")
        #expect(Int(now).map { $0 >= 2026 } == true)
    }

    /// The date filter's own strftime agrees with the C library's for the directives both have.
    @Test(arguments: [0, 1_795_939_050, 951_782_400, -34_560_000, 4_102_444_799, 1_234_567_890])
    func dateDirectivesAgreeWithTheCLibrary(timestamp: Int) throws {
        let format = "%Y-%m-%d %H:%M:%S %a %A %b %B %j %e %I %l %p %y %C %u %w %D %F %T %R %h %k %%"
        var time = time_t(timestamp)
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 512)
        let count = format.withCString { strftime(&buffer, buffer.count, $0, &parts) }
        let expected = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(try render("{{ t | date: f }}", ["t": .int(Int64(timestamp)), "f": .string(format)]) == expected)
        #expect(
            try render("{{ t | date: '%s %-d %-m %_H %^a' }}", ["t": .int(Int64(timestamp))]).hasPrefix("\(timestamp) ")
        )
    }
}
