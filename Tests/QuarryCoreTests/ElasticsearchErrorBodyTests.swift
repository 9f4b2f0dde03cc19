import QuarryCore
import Testing

@Suite struct ElasticsearchErrorBodyTests {
    @Test func theRootCauseIsPreferredToTheSearchsSummary() throws {
        let body = try JSON.parse(
            #"""
            {"error": {"type": "search_phase_execution_exception", "reason": "all shards failed",
              "root_cause": [{"type": "parse_exception", "reason": "failed to parse date field [yesterday]"}]},
             "status": 400}
            """#
        )
        #expect(ElasticsearchErrorBody.reason(body) == "failed to parse date field [yesterday]")
        let plain = try JSON.parse(#"{"error": {"type": "index_not_found_exception", "reason": "no such index [x]"}}"#)
        #expect(ElasticsearchErrorBody.reason(plain) == "no such index [x]")
        #expect(
            ElasticsearchErrorBody.reason(try JSON.parse(#"{"error": "Incorrect HTTP method"}"#))
                == "Incorrect HTTP method"
        )
        #expect(ElasticsearchErrorBody.reason(try JSON.parse(#"{"ok": true}"#)) == nil)
    }
}

@Suite struct SuggestionTests {
    @Test func closeNamesAreSuggestedAndFarOnesAreNot() {
        #expect(Suggestion.closest(to: "upcse", in: ["upcase", "downcase", "append"]) == "upcase")
        #expect(Suggestion.closest(to: "Webhok", in: ["webhook", "trigger"]) == "webhook")
        #expect(Suggestion.closest(to: "xyz", in: ["webhook", "trigger"]) == nil)
        #expect(Suggestion.hint(for: "paylod", in: ["payload"]) == " (did you mean 'payload'?)")
        #expect(Suggestion.hint(for: "a", in: ["payload"]) == "")
    }
}
