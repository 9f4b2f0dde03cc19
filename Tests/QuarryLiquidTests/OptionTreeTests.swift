import QuarryCore
import QuarryLiquid
import QuarryTesting
import Testing

@Suite("Option trees", .mayBlock)
struct OptionTreeTests {
    let environment = LiquidEnvironment()

    @Test func asObjectLeavesBecomeJSONValuesAtAnyDepth() throws {
        let options = try JSON.parse(
            #"""
            {
              "url": "{{ .RESOURCE.es.url }}/{{ index }}/_search",
              "payload": {
                "size": "{{ size | as_object }}",
                "query": {"bool": {"filter": [
                  {"terms": {"destination.ip": "{{ .dns.Answer | map: 'data' | as_object }}"}},
                  {"range": {"@timestamp": {"gte": "now-{{ hours }}h"}}}
                ]}},
                "_source": "{{ fields | as_object }}",
                "track_total_hits": true
              },
              "note": "{{ size | as_object }} hits wanted"
            }
            """#
        )
        let parsed = try environment.parseOptions(options)
        let story = TestStory(
            events: ["dns": ["Answer": [["data": "203.0.113.66"], ["data": "203.0.113.67"]]]],
            resources: ["es": ["url": "http://127.0.0.1:9200"]]
        )
        let rendered = try parsed.render(
            ["index": "packetbeat-*", "size": 1000, "hours": 4, "fields": ["client.ip", "dns.question.name"]],
            story: story
        )
        #expect(rendered["url"] == "http://127.0.0.1:9200/packetbeat-*/_search")
        #expect(rendered["payload"]?["size"] == .int(1000))
        #expect(
            rendered.value(atPath: "payload.query.bool.filter")?[0]?["terms"]?["destination.ip"]
                == ["203.0.113.66", "203.0.113.67"]
        )
        #expect(rendered["payload"]?["query"]?["bool"]?["filter"]?[1]?["range"]?["@timestamp"]?["gte"] == "now-4h")
        #expect(rendered["payload"]?["_source"] == ["client.ip", "dns.question.name"])
        #expect(rendered["payload"]?["track_total_hits"] == true)
        // Not the whole leaf: text, as everywhere else.
        #expect(rendered["note"] == "1000 hits wanted")
    }

    @Test func keysAreLiteralUnlessAsked() throws {
        let options: JSON = ["{{ key }}": "{{ value }}"]
        let literal = try environment.parseOptions(options).render(["key": "k", "value": "v"])
        #expect(literal == ["{{ key }}": "v"])
        let templated = try environment.parseOptions(options, templatingKeys: true).render(["key": "k", "value": "v"])
        #expect(templated == ["k": "v"])
    }

    @Test func errorsNameTheOption() throws {
        let options: JSON = ["payload": ["query": ["ok", "{% if %}"]]]
        do {
            _ = try environment.parseOptions(options)
            Issue.record("a bad template parsed")
        } catch {
            #expect(error.templateName == "payload.query[1]")
            #expect(error.kind == .syntax)
        }
    }
}
