#if os(Linux)
import Foundation
import QuarryCore
import QuarryTesting
import Testing

/// Requests an outside probe used to crash or fool the server, and a catalogue built from their classes: every
/// malformed request gets a 4xx in Elasticsearch's error shape, the server stays up, and every document it
/// acknowledged is still there. The server runs as a child process (`quarry serve`), so a crash shows as its death
/// rather than the test runner's.
@Suite(.serialized, .mayBlock) struct HostileInputTests {
    struct Request: CustomStringConvertible {
        var method: String
        var target: String
        var body: [UInt8]?
        var headers: [String] = []

        init(_ method: String, _ target: String, _ body: String? = nil, headers: [String] = []) {
            self.method = method
            self.target = target
            self.body = body.map { Array($0.utf8) }
            self.headers = headers
        }

        init(_ method: String, _ target: String, bytes: [UInt8]) {
            self.method = method
            self.target = target
            self.body = bytes
        }

        var description: String {
            let text = body.map { String(decoding: $0.prefix(120), as: UTF8.self) } ?? ""
            return "\(method) \(target.prefix(160)) \(text)"
        }

        var bytes: [UInt8] {
            var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            if !headers.contains(where: { $0.lowercased().hasPrefix("authorization:") }) {
                head += "Authorization: \(TestElasticUser.authorization)\r\n"
            }
            for header in headers { head += header + "\r\n" }
            if let body {
                if !headers.contains(where: { $0.lowercased().hasPrefix("content-type") }) {
                    head += "Content-Type: application/json\r\n"
                }
                head += "Content-Length: \(body.count)\r\n"
            }
            return Array((head + "\r\n").utf8) + (body ?? [])
        }
    }

    static let mapping = #"""
        {"mappings":{"properties":{"n":{"type":"long"},"i":{"type":"integer"},"ts":{"type":"date"},
        "d":{"type":"double"},"ip":{"type":"ip"},"k":{"type":"keyword"},"t":{"type":"text"},"b":{"type":"boolean"}}}}
        """#

    /// Runs `quarry serve` with an index `cat` holding acknowledged documents, and calls `body` with its port.
    func withServer(_ body: (Int, inout Set<String>) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let (process, port) = try await QuarryServerProcess.start(
                ["serve", "--data", directory.path, "--es-port", "0", "--port", "0", "--log-level", "error"],
                announcement: "Elasticsearch API listening on"
            )
            defer {
                QuarryServerProcess.stop(process)
            }
            #expect(try await RawHTTP.exchange(port: port, Request("PUT", "/cat", Self.mapping).bytes).status == 200)
            var acknowledged = Set<String>()
            for n in 0..<20 {
                let document =
                    #"{"n":\#(n),"i":\#(n),"ts":"2026-11-29T10:00:\#(10 + n)Z","d":\#(n).5,"ip":"10.0.0.\#(n)","k":"k\#(n)","t":"text \#(n)","b":true}"#
                let reply = try await RawHTTP.exchange(
                    port: port,
                    Request("PUT", "/cat/_doc/\(n)?refresh=true", document).bytes
                )
                #expect(reply.status == 201)
                acknowledged.insert("\(n)")
            }
            try await body(port, &acknowledged)
            #expect(process.isRunning, "the server is alive after the catalogue")
            let root = try await RawHTTP.exchange(port: port, Request("GET", "/").bytes)
            #expect(root.status == 200)
            for id in acknowledged.sorted() {
                let reply = try await RawHTTP.exchange(port: port, Request("GET", "/cat/_doc/\(id)").bytes)
                #expect(reply.status == 200, "acknowledged document \(id) is still there")
            }
        }
    }

    /// Checks Elasticsearch's error shape: `{"error": {"type", "reason", "root_cause": [...]}, "status": N}`, or
    /// the short `{"error": "text", "status": N}` Elasticsearch uses for a wrong method.
    static func isElasticsearchError(_ reply: RawHTTP.Reply) -> Bool {
        guard let json = try? JSON.parse(reply.body), json["status"] == .int(Int64(reply.status)) else { return false }
        if json["error"]?.stringValue != nil { return true }
        guard let error = json["error"], error["type"]?.stringValue != nil, error["reason"] != nil,
            error["root_cause"]?.arrayValue?.isEmpty == false
        else { return false }
        return true
    }

    // MARK: The six crashes the probe found

    @Test(.timeLimit(.minutes(8))) func requestsThatKilledTheServerAnswer() async throws {
        try await withServer { port, _ in
            let deep = String(repeating: "(", count: 10_000) + "a" + String(repeating: ")", count: 10_000)
            let requests = [
                Request("GET", "/cat/_search?q=n:%3E1e19"),
                Request("POST", "/cat/_search", #"{"query":{"range":{"n":{"gte":1e400}}}}"#),
                Request("POST", "/cat/_search", #"{"query":{"range":{"n":{"lte":-1e19}}}}"#),
                Request("POST", "/cat/_search", #"{"query":{"range":{"ts":{"gte":1e300}}}}"#),
                Request("GET", "/_search?from=9223372036854775807"),
                Request("GET", "/_search?size=9223372036854775807&from=1"),
                Request("GET", "/cat/_search?q=ts:%3Enow-99999999999y"),
                Request("POST", "/cat/_search", #"{"query":{"range":{"ts":{"lte":"now+300000000y"}}}}"#),
                Request("PUT", "/cat/_doc/late", #"{"ts":1e300}"#),
                Request("PUT", "/cat/_doc/dot", #"{".":1}"#),
                Request("PUT", "/cat/_doc/dotdot", #"{"..":1}"#),
                Request("POST", "/cat/_search", #"{"query":{"query_string":{"query":"\#(deep)"}}}"#),
            ]
            for request in requests {
                let reply = try await RawHTTP.exchange(port: port, request.bytes)
                #expect(reply.status < 500, "\(request)")
            }
            // Ranges past any stored value find nothing rather than everything.
            let above = try await RawHTTP.exchange(port: port, Request("GET", "/cat/_count?q=n:%3E1e19").bytes)
            #expect((try JSON.parse(above.body))["count"] == 0)
            let below = try await RawHTTP.exchange(port: port, Request("GET", "/cat/_count?q=n:%3E-1e19").bytes)
            #expect((try JSON.parse(below.body))["count"] == 20)
            // A term outside a long's range is Elasticsearch's 400.
            let term = try await RawHTTP.exchange(
                port: port,
                Request("POST", "/cat/_search", #"{"query":{"term":{"n":1e19}}}"#).bytes
            )
            #expect(
                term.status == 400 && Self.isElasticsearchError(term),
                "\(String(decoding: term.body, as: UTF8.self))"
            )
        }
    }

    // MARK: The catalogue

    static func catalogue() -> [Request] {
        var requests: [Request] = []
        func search(_ body: String, _ target: String = "/cat/_search") {
            requests.append(Request("POST", target, body))
        }

        // Query DSL: wrong shapes for every query, unknown queries, depth past the limit.
        let queries = [
            #"{"term":{}}"#, #"{"term":{"k":{"value":{"a":1}}}}"#, #"{"term":{"k":[1,2]}}"#, #"{"terms":{"k":"x"}}"#,
            #"{"range":{"n":"x"}}"#, #"{"range":{"n":{"gte":"abc"}}}"#, #"{"range":{"ts":{"gte":"yesterday"}}}"#,
            #"{"range":{"ts":{"gte":"now-1x"}}}"#, #"{"range":{"ts":{"gte":"now","time_zone":"Mars/Olympus"}}}"#,
            #"{"range":{"ip":{"gte":"not-an-ip"}}}"#, #"{"range":{"ts":{"gte":"2026","format":"yyyy-QQ"}}}"#,
            #"{"bool":{"must":5}}"#, #"{"bool":{"unknown":[]}}"#, #"{"bool":[]}"#, #"{"match_all":{"x":1}}"#,
            #"{"exists":{}}"#, #"{"ids":{"values":"x"}}"#, #"{"prefix":{}}"#, #"{"wildcard":{}}"#, #"{"match":{}}"#,
            #"{"no_such_query":{}}"#, #"{}"#, #"[]"#, #""x""#, #"{"term":{"k":"a"},"match_all":{}}"#,
            #"{"constant_score":{}}"#, #"{"constant_score":{"filter":5}}"#, #"{"query_string":{}}"#,
            #"{"query_string":{"query":"a\\"}}"#, #"{"query_string":{"query":"/unterminated"}}"#,
            #"{"query_string":{"query":"\"open phrase"}}"#, #"{"query_string":{"query":"(a"}}"#,
            #"{"query_string":{"query":"n:[1 TO"}}"#, #"{"query_string":{"query":"n:[1 5]"}}"#,
            #"{"query_string":{"query":"ip:>zz"}}"#, #"{"query_string":{"query":"ts:>yesterday"}}"#,
            #"{"term":{"ip":"not-an-ip"}}"#, #"{"term":{"b":"maybe"}}"#, #"{"term":{"n":1e19}}"#,
            #"{"terms":{"n":[1e19]}}"#, #"{"term":{"i":-1e300}}"#, #"{"range":{"ts":{"gte":"now/x"}}}"#,
            #"{"range":{"ts":{"gte":"now+"}}}"#, #"{"range":{"ts":{"gte":"2026-01-01||+1q"}}}"#,
            #"{"range":{"ts":{"gte":"now-1y-"}}}"#, #"{"range":{"n":{"gte":{"a":1}}}}"#, #"{"range":{"n":[1]}}"#,
            #"{"terms":{"k":{"a":1}}}"#, #"{"match":{"t":{"query":{"a":1}}}}"#, #"{"wildcard":{"k":{"value":{}}}}"#,
            #"{"prefix":{"k":[]}}"#, #"{"exists":{"field":5}}"#, #"{"range":{"ts":{"gte":"now-99999999999y"}}}"#,
        ]
        for query in queries { search(#"{"query":\#(query)}"#) }
        var nested = #"{"match_all":{}}"#
        for _ in 0..<40 { nested = #"{"bool":{"must":[\#(nested)]}}"# }
        search(#"{"query":\#(nested)}"#)
        var scored = #"{"match_all":{}}"#
        for _ in 0..<40 { scored = #"{"constant_score":{"filter":\#(scored)}}"# }
        search(#"{"query":\#(scored)}"#)
        search(
            #"{"query":{"query_string":{"query":"\#(String(repeating: "(", count: 50))a\#(String(repeating: ")", count: 50))"}}}"#
        )

        // Search bodies and parameters.
        let bodies = [
            #"{"size":-1}"#, #"{"from":-1}"#, #"{"size":"abc"}"#, #"{"size":9223372036854775807}"#, #"{"size":1e40}"#,
            #"{"from":9000,"size":2000}"#, #"{"min_score":"x"}"#, #"{"_source":{"includes":5}}"#, #"{"_source":5}"#,
            #"{"sort":5}"#, #"{"sort":[{"n":"sideways"}]}"#, #"{"search_after":5}"#, #"{"search_after":[1],"from":5}"#,
            #"{"track_total_hits":-5}"#, #"{"track_total_hits":"x"}"#, #"{"terminate_after":-1}"#,
            #"{"timeout":"banana"}"#,
            #"{"unknown_key":1}"#, #"{"query":{"match_all":{}},"query2":{}}"#, #"{"runtime_mappings":{"x":{}}}"#,
            #"{"aggs":{"a":{"composite":{"sources":[]}}}}"#,
            #"{"aggs":{"a":{"percentiles":{"field":"n","percents":[101]}}}}"#,
            #"{"aggs":{"a":{"terms":{"field":"t"}}}}"#,
            #"{"aggs":{"a":{"avg":{"field":"k"}}}}"#, #"{"aggs":{"a":{"terms":{"field":"k","size":-3}}}}"#,
            #"{"aggs":{"a":{"date_histogram":{"field":"ts","fixed_interval":"0s"}}}}"#,
            #"{"aggs":{"a":{"date_histogram":{"field":"ts","fixed_interval":"1ms","extended_bounds":{"min":0,"max":9e12}}}}}"#,
            #"{"aggs":{"a":{"histogram":{"field":"n","interval":1e-300}}}}"#,
            #"{"aggs":{"a":{"histogram":{"field":"n","interval":0}}}}"#, #"{"aggs":5}"#, #"{"aggs":{"a":5}}"#,
            #"{"aggs":{"a":{}}}"#, #"{"aggs":{"a":{"terms":{"field":"k"},"max":{"field":"n"}}}}"#,
            #"{"aggs":{"a":{"date_histogram":{"field":"ts","calendar_interval":"fortnight"}}}}"#,
            #"{"aggs":{"a":{"range":{"field":"n","ranges":[]}}}}"#, #"{"knn":{}}"#, #"{"query":"#, #"{"query":{}"#,
            "[1,2]",
            "\"text\"",
            #"{"size":1,"size":2,"from":"-5"}"#, #"{"post_filter":5}"#, #"{"version":"maybe","size":"x"}"#,
            #"{"aggs":{"a":{"composite":{"size":100000000,"sources":[{"x":{"terms":{"field":"k"}}}]}}}}"#,
            #"{"aggs":{"a":{"composite":{"sources":[{"x":{"terms":{"field":"k"}}}],"after":{"x":{"y":1}}}}}}"#,
            #"{"aggs":{"a":{"composite":{"sources":[{"x":{"terms":{"field":"t"}}}]}}}}"#,
            #"{"aggs":{"a":{"terms":{"field":"k"},"aggs":{"s":{"bucket_sort":{"from":-1}}}}}}"#,
            #"{"aggs":{"a":{"multi_terms":{"terms":[{"field":"k"},{"script":"x"}]}}}}"#,
            #"{"aggs":{"a":{"date_histogram":{"field":"ts","fixed_interval":"1ms","hard_bounds":{"min":9,"max":5}}}}}"#,
            #"{"rescore":5}"#, #"{"rescore":{"window_size":-1,"query":{"rescore_query":{"match_all":{}}}}}"#,
            #"{"rescore":{"query":{"rescore_query":{"match_all":{}},"score_mode":"sideways"}}}"#,
            #"{"rescore":{"window_size":100000,"query":{"rescore_query":{"match_all":{}}}}}"#, #"{"rescore":{}}"#,
            #"{"docvalue_fields":5}"#, #"{"fields":[5]}"#, #"{"stored_fields":{}}"#,
            #"{"fields":[{"field":"ts","format":"yyyy-QQ"}]}"#,
            #"{"docvalue_fields":[{"field":"n","format":"0.0E0"}]}"#,
            #"{"docvalue_fields":["t"]}"#, #"{"script_fields":{"a":5}}"#, #"{"stored_fields":"_none_","_source":true}"#,
        ]
        for body in bodies { search(body) }
        let parameters = [
            "size=-1", "from=-1", "size=abc", "from=1e3", "size=9223372036854775807", "from=9223372036854775807",
            "terminate_after=-1", "timeout=banana", "track_total_hits=banana", "q=ts:%3Eyesterday", "q=(a",
            "q=a%5C", "q=%2Funterminated", "q=n:%5B1%20TO", "sort=n:sideways", "pretty=maybe",
            "ignore_unavailable=maybe",
            "size=10001", "from=10000&size=1", "rest_total_hits_as_int=maybe", "allow_no_indices=perhaps",
        ]
        for parameter in parameters { requests.append(Request("GET", "/cat/_search?\(parameter)")) }
        requests.append(Request("GET", "/cat/_count?q=(unclosed"))
        requests.append(Request("GET", "/_cat/indices?format=xml"))
        requests.append(Request("GET", "/_cat/indices?format=banana"))

        // Documents: bodies, values, field names, ids, versions.
        let documents = [
            #"{"a": tru}"#, #"[1]"#, #"5"#, #""text""#, #"{"n":"abc"}"#, #"{"n":1e19}"#, #"{"n":-1e19}"#,
            #"{"n":1.5e400}"#,
            #"{"i":3000000000}"#, #"{"ts":"yesterday"}"#, #"{"ts":1e300}"#, #"{"ts":-1e300}"#,
            #"{"ts":"99999999999999999999999"}"#,
            #"{"ip":"300.1.1.1"}"#, #"{"b":"maybe"}"#, #"{"k":{"nested":1}}"#, #"{".":1}"#, #"{"..":1}"#, #"{"a.":1}"#,
            #"{".a":1}"#, #"{"a..b":1}"#, #"{"":1}"#, #"{" .x":1}"#, #"{"n":[1,"x"]}"#, #"{"d":"1.5.5"}"#,
        ]
        for (position, document) in documents.enumerated() {
            requests.append(Request("PUT", "/cat/_doc/bad-\(position)", document))
            requests.append(Request("POST", "/cat/_doc", document))
        }
        // Every typed field with values of the wrong kind.
        let wrongValues = [
            "n": [#""abc""#, #"{"x":1}"#, "true", #"["abc"]"#, "1e19", #""1.5e400""#],
            "i": [#""abc""#, #"{"x":1}"#, "true", "3000000000", "-3000000000", #""9223372036854775808""#],
            "d": [#""abc""#, #"{"x":1}"#, "true", #"["x"]"#],
            "ts": [#""abc""#, #"{"x":1}"#, "true", #""2026-13-45""#, #""now""#, "1e20"],
            "ip": [#""abc""#, #"{"x":1}"#, "true", "5", #""10.0.0.256""#, #""::g""#],
            "b": [#""abc""#, #"{"x":1}"#, #""yes""#],
            "k": [#"{"x":1}"#],
        ]
        for (field, values) in wrongValues.sorted(by: { $0.key < $1.key }) {
            for (position, value) in values.enumerated() {
                requests.append(Request("PUT", "/cat/_doc/wrong-\(field)-\(position)", #"{"\#(field)":\#(value)}"#))
            }
        }
        requests.append(Request("PUT", "/cat/_doc/\(String(repeating: "x", count: 513))", #"{"a":1}"#))
        requests.append(Request("PUT", "/cat/_doc/1", #""#))
        let versions = [
            "version=abc", "version_type=banana", "version=-1&version_type=external", "version_type=external",
            "version=3", "version=3&version_type=force", "if_seq_no=abc", "if_seq_no=-5&if_primary_term=1",
            "if_seq_no=1&version=2&version_type=external", "op_type=bad", "refresh=maybe", "version=1e3",
        ]
        for parameter in versions { requests.append(Request("PUT", "/cat/_doc/v?\(parameter)", #"{"a":1}"#)) }
        requests.append(Request("PUT", "/cat/_create/v?version=2&version_type=external", #"{"a":1}"#))
        requests.append(Request("POST", "/cat/_update/1?version=2&version_type=external", #"{"doc":{"a":1}}"#))
        requests.append(Request("POST", "/cat/_update/1", #"{"doc":5}"#))
        requests.append(Request("POST", "/cat/_update/1", #"{"unknown":5}"#))
        requests.append(Request("DELETE", "/cat/_doc/1?version=abc"))
        requests.append(Request("DELETE", "/cat/_doc/1?version=1&version_type=external"))  // stale: 409
        requests.append(Request("PUT", "/cat/_doc/2?version=1&version_type=external", #"{"n":2}"#))  // stale: 409

        // Index names as Elasticsearch refuses them, and names that are not UTF-8.
        var names = [
            "UPPER", "_under", "-dash", "+plus", ".", "..", "a:b", "a%23b", String(repeating: "x", count: 256),
        ]
        names += ["%5C", "%2F", "%2A", "%3F", "%22", "%3C", "%3E", "%7C", "%2C", "%20"].map { "a\($0)b" }
        names += ["%FF", "a%C3", "%ED%A0%80", "%C0%AF"]
        for name in names {
            requests.append(Request("PUT", "/\(name)"))
            requests.append(Request("PUT", "/\(name)/_doc/1", #"{"a":1}"#))
        }
        requests.append(Request("GET", "/cat/_doc/%FF"))
        requests.append(Request("GET", "/cat/_search?q=%FF"))

        // Bodies that are not UTF-8.
        let invalidUTF8: [[UInt8]] = [
            Array(#"{"k":""#.utf8) + [0xFF] + Array(#""}"#.utf8), Array(#"{""#.utf8) + [0xC3] + Array(#"":1}"#.utf8),
            Array(#"{"k":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8),
        ]
        for (position, body) in invalidUTF8.enumerated() {
            requests.append(Request("PUT", "/cat/_doc/utf-\(position)", bytes: body))
            requests.append(
                Request("POST", "/cat/_search", bytes: Array(#"{"query":{"term":{"k":""#.utf8) + body.suffix(4))
            )
        }

        // Bulk: malformed lines and metadata, each refused as Elasticsearch refuses it.
        let bulks = [
            "{\"index\":{\"_index\":\"cat\"}}\n", "not json\n{}\n",
            "[1]\n{}\n", "{\"explode\":{\"_index\":\"cat\"}}\n{}\n", "{\"index\":5}\n{}\n",
            "{\"index\":{\"_index\":\"cat\",\"_id\":{\"a\":1}}}\n{}\n",
            "{\"index\":{\"_index\":\"cat\",\"_id\":[1]}}\n{}\n",
            "{\"index\":{\"_index\":\"cat\",\"bogus\":1}}\n{}\n", "{\"index\":{},\"delete\":{}}\n{}\n",
            "{\"delete\":{\"_index\":\"cat\"}}\n", "{\"update\":{\"_index\":\"cat\"}}\n{\"doc\":{}}\n", "\n\n\n",
            "{\"index\":{\"_index\":\"cat\",\"version\":\"x\"}}\n{}\n",
            "{\"index\":{\"_index\":\"cat\",\"if_seq_no\":{}}}\n{}\n",
            "{\"index\":{\"_id\":\"1\"}}\n{}\n",
        ]
        for bulk in bulks {
            requests.append(Request("POST", "/_bulk", bulk, headers: ["Content-Type: application/x-ndjson"]))
        }

        // Mappings Elasticsearch refuses, among them an explicit mapping past the field limit.
        let fields = (0..<1_500).map { #""f\#($0)":{"type":"keyword"}"# }.joined(separator: ",")
        let mappings = [
            #"{"properties":{"x":{"type":"no_such_type"}}}"#, #"{"properties":5}"#,
            #"{"properties":{"a.":{"type":"keyword"}}}"#,
            #"{"properties":{".a":{"type":"keyword"}}}"#, #"{"properties":{"n":{"type":"keyword"}}}"#,
            #"{"properties":{\#(fields)}}"#,
            #"{"properties":{"x":"keyword"}}"#, #"{"dynamic":"sometimes"}"#,
        ]
        for mapping in mappings { requests.append(Request("PUT", "/cat/_mapping", mapping)) }
        requests.append(Request("PUT", "/explicit", #"{"mappings":{"properties":{\#(fields)}}}"#))
        requests.append(Request("PUT", "/badsettings", #"{"settings":{"number_of_shards":"x"}}"#))
        requests.append(Request("PUT", "/badsettings", #"{"settings":{"number_of_shards":0}}"#))

        // HTTP: content types, methods, and what the HTTP parser itself refuses.
        requests.append(Request("POST", "/cat/_search", "{}", headers: ["Content-Type: text/html"]))
        requests.append(Request("POST", "/cat/_search", "{}", headers: ["Content-Type: application/xml"]))
        for method in ["BREW", "PATCH", "TRACE", "OPTIONS", "PROPFIND", "MKCOL", "LOCK"] {
            requests.append(Request(method, "/cat/_search"))
        }
        requests.append(Request("GET", "/cat/_doc/\u{FF}"))
        requests.append(Request("GET", "/", headers: ["X-Big: " + String(repeating: "a", count: 100_000)]))
        requests.append(Request("GET", "/", headers: ["Content-Length: abc"]))
        requests.append(Request("POST", "/_bulk", headers: ["Content-Length: 209715200"]))
        return requests
    }

    @Test(.timeLimit(.minutes(5))) func catalogueOfMalformedRequests() async throws {
        let catalogue = Self.catalogue()
        #expect(catalogue.count >= 300, "the catalogue holds \(catalogue.count) requests")
        try await withServer { port, acknowledged in
            for request in catalogue {
                let reply = try await RawHTTP.exchange(port: port, request.bytes)
                let refused = (400..<500).contains(reply.status) && Self.isElasticsearchError(reply)
                #expect(
                    refused,
                    "\(request) → \(reply.status) \(String(decoding: reply.body.prefix(300), as: UTF8.self))"
                )
                if (200..<300).contains(reply.status), request.method == "PUT", request.target.hasPrefix("/cat/_doc/") {
                    acknowledged.insert(String(request.target.dropFirst(10).prefix { $0 != "?" }))
                }
            }
        }
    }
}
#endif
