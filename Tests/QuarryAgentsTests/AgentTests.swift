import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryStories
import QuarryTesting
import Testing

@Suite(.mayBlock) struct HTTPRequestAgentTests {
    /// A real HTTP server on loopback with the endpoints the tests call.
    static func withServer<T: Sendable>(_ body: @Sendable (Int, Counter) async throws -> T) async throws -> T {
        let counter = Counter()
        let router = Router()
        router.get("/json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"ok": true, "n": 3}"#))
            )
        }
        router.post("/echo") { request, _ in
            counter.increment()
            let body = try await request.body.collect(upTo: 1 << 20)
            let echo: JSON = [
                "content_type": .string(request.headers[.contentType] ?? ""),
                "authorization": .string(request.headers[.authorization] ?? ""),
                "body": .string(String(buffer: body)),
            ]
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: echo.serializedBytes()))
            )
        }
        router.get("/flaky") { _, _ in
            counter.increment() < 3
                ? Response(status: .serviceUnavailable)
                : Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "fine")))
        }
        router.get("/teapot") { _, _ in
            Response(status: .init(code: 418), body: .init(byteBuffer: ByteBuffer(string: "short and stout")))
        }
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await application.test(.live) { client in try await body(client.port ?? 0, counter) }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        @discardableResult func increment() -> Int {
            lock.withLock {
                value += 1
                return value
            }
        }
        var count: Int { lock.withLock { value } }
    }

    @Test func emitsParsedJSONAndSendsFormsWithBasicAuth() async throws {
        try await Self.withServer { port, counter in
            try await withEngine { engine, _ in
                let (run, events, _) = try await runOne(
                    engine,
                    type: "http_request",
                    options: ["url": .string("http://127.0.0.1:\(port)/json")]
                )
                #expect(run.status == .succeeded)
                #expect(events.first?.payload["body"] == ["ok": true, "n": 3])
                #expect(events.first?.payload["status"] == 200)

                let (_, posted, _) = try await runOne(
                    engine,
                    type: "http_request",
                    options: [
                        "url": .string("http://127.0.0.1:\(port)/echo"), "method": "post", "content_type": "form",
                        "payload": ["domain": "{{ domain }}", "note": "a b&c"], "basic_auth": ["hunter", "pw"],
                    ],
                    input: ["domain": "evil.example"]
                )
                let echo = try #require(posted.first?.payload["body"])
                #expect(echo["content_type"] == "application/x-www-form-urlencoded")
                #expect(echo["body"] == "domain=evil.example&note=a%20b%26c")
                #expect(echo["authorization"] == .string("Basic " + Data("hunter:pw".utf8).base64EncodedString()))
                #expect(counter.count == 1)
            }
        }
    }

    @Test func retriesOnStatusThenSucceeds() async throws {
        try await Self.withServer { port, counter in
            try await withEngine { engine, _ in
                let (run, events, timeline) = try await runOne(
                    engine,
                    type: "http_request",
                    options: ["url": .string("http://127.0.0.1:\(port)/flaky"), "retry_on_status": [503]],
                    retry: ["max_attempts": 4, "initial_delay": 0.05]
                )
                #expect(run.status == .succeeded)
                #expect(events.first?.payload["body"] == "fine")
                #expect(timeline.filter { $0.agent == "agent" }.map(\.outcome) == [.retrying, .retrying, .emitted])
                #expect(counter.count == 3)
            }
        }
    }

    @Test func failOnStatusAndDryRun() async throws {
        try await Self.withServer { port, counter in
            try await withEngine { engine, _ in
                let (failed, _, _) = try await runOne(
                    engine,
                    type: "http_request",
                    options: ["url": .string("http://127.0.0.1:\(port)/teapot"), "fail_on_status": true]
                )
                #expect(failed.status == .failed)
                #expect(failed.error?.contains("418") == true)

                let (dry, events, timeline) = try await runOne(
                    engine,
                    type: "http_request",
                    options: ["url": .string("http://127.0.0.1:\(port)/echo"), "method": "post", "payload": ["x": 1]],
                    dryRun: true
                )
                #expect(dry.status == .succeeded)
                #expect(dry.dryRun)
                #expect(events.first?.payload["dry_run"] == true)
                #expect(timeline.last?.message?.contains("not sent") == true)
                #expect(counter.count == 0)
            }
        }
    }
}

@Suite(.mayBlock) struct ElasticsearchAgentTests {
    @Test func paginatesPastTenThousandHitsOnARemoteCluster() async throws {
        try await withElasticsearchServer { client, store in
            let items = (0..<12_500).map { n -> EmbeddedStore.BulkItem in
                let document: JSON = ["n": .int(Int64(n)), "kind": n % 2 == 0 ? "even" : "odd"]
                return .init(
                    index: "events",
                    operation: .index(IndexRequest(id: nil, source: document.serializedBytes(), document: document))
                )
            }
            #expect(store.bulk(items).allSatisfy { $0.error == nil })
            _ = try store.refresh("_all")
            let url = "http://127.0.0.1:\(client.port ?? 0)"
            // The agent authenticates with an API key minted on the cluster, given as `id:api_key`.
            let minted = try await client.execute(
                uri: "/_security/api_key",
                method: .post,
                headers: [.contentType: "application/json"],
                body: ByteBuffer(
                    string:
                        #"{"name":"agent","role_descriptors":{"r":{"indices":[{"names":["events"],"privileges":["read"]}]}}}"#
                )
            )
            let key = try JSON.parse(Array(buffer: minted.body))
            let idAndKey = "\(key["id"]?.stringValue ?? ""):\(key["api_key"]?.stringValue ?? "")"
            try await withEngine { engine, _ in
                try engine.vault.setCredential("es", value: idAndKey)
                let all = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "cluster": .string(url), "credential": "es", "index": "events", "paginate": true,
                        "page_size": 5_000,
                        "query": ["query": ["match_all": [:]], "sort": [["n": "asc"]]],
                    ],
                    credentials: ["es"]
                )
                #expect(all.0.status == .succeeded, "\(all.0.error ?? "")")
                let hits = all.1.first?.payload["hits"]?.arrayValue ?? []
                #expect(hits.count == 12_500)
                #expect(Set(hits.compactMap { $0["_source"]?["n"]?.intValue }).count == 12_500)
                #expect(all.1.first?.payload["total"] == 10_000 || all.1.first?.payload["total"] == 12_500)

                let capped = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "cluster": .string(url), "credential": "es", "index": "events", "paginate": 150,
                        "page_size": 100, "query": ["query": ["term": ["kind": "odd"]]],
                    ],
                    credentials: ["es"]
                )
                #expect(capped.1.first?.payload["hits"]?.arrayValue?.count == 150)

                let broken = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "cluster": .string(url), "credential": "es", "index": "events",
                        "query": ["query": ["no_such_query": [:]]],
                    ],
                    credentials: ["es"]
                )
                #expect(broken.0.status == .failed)
                #expect(broken.0.error?.contains("no_such_query") == true)

                // A cluster resource: nodes tried in turn (the first one is a closed port), and the credential's name.
                try engine.vault.setResource(
                    "events_cluster",
                    value: #"{"urls":["http://127.0.0.1:1","\#(url)"],"credential":"es"}"#
                )
                let viaResource = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "cluster": "events_cluster", "index": "events",
                        "query": ["query": ["term": ["kind": "odd"]], "size": 0],
                    ],
                    credentials: ["es"]
                )
                #expect(viaResource.0.status == .succeeded, "\(viaResource.0.error ?? "")")
                #expect(viaResource.1.first?.payload["total"] == 6_250)

                // Without the credential the cluster refuses, and the run says why.
                let anonymous = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: ["cluster": .string(url), "index": "events", "query": ["query": ["match_all": [:]]]]
                )
                #expect(anonymous.0.status == .failed)
                #expect(anonymous.0.error?.contains("401") == true, "\(anonymous.0.error ?? "")")
            }
        }
    }

    @Test func searchesTheEmbeddedStoreByDefault() async throws {
        try await withTemporaryDirectory { directory in
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory.appendingPathComponent("data")))
            defer { try? store.close() }
            let document: JSON = ["dns": ["question": ["name": "evil.example"]]]
            _ = store.bulk([
                .init(
                    index: "packetbeat-x",
                    operation: .index(IndexRequest(id: "1", source: document.serializedBytes(), document: document))
                )
            ])
            _ = try store.refresh("_all")
            try await withEngine(defaultCluster: EmbeddedCluster(api: ElasticsearchAPI(store: store))) { engine, _ in
                let (run, events, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "index": "packetbeat-*", "query": ["query": ["term": ["dns.question.name": "{{ domain }}"]]],
                    ],
                    input: ["domain": "evil.example"]
                )
                #expect(run.status == .succeeded)
                #expect(events.first?.payload["total"] == 1)
                #expect(events.first?.payload["hits"]?[0]?["_id"] == "1")

                // The same search in KQL, rendered from the event like any option; a mistake fails with its place.
                let (kqlRun, kqlEvents, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: ["index": "packetbeat-*", "kql": "dns.question.name: {{ domain }}", "query": ["size": 5]],
                    input: ["domain": "evil.example"]
                )
                #expect(kqlRun.status == .succeeded)
                #expect(kqlEvents.first?.payload["hits"]?[0]?["_id"] == "1")
                let (broken, _, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: ["index": "packetbeat-*", "kql": "dns.question.name: (evil.example"],
                    input: [:]
                )
                #expect(broken.status == .failed)
                #expect(broken.error?.contains("KQL syntax error at character") == true, "\(broken.error ?? "")")
            }
        }
    }
}

@Suite(.serialized, .mayBlock) struct DNSAndEmailAgentTests {
    @Test(.enabled(if: LoopbackServers.missing == nil, "\(LoopbackServers.missing ?? "")"))
    func everyTransportGivesTheSameAnswers() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = try await LoopbackServers.certificate(in: directory)
            let unbound = try await LoopbackServers.Unbound(
                directory: directory,
                certificate: certificate,
                localData: [
                    "mail.example. 300 IN MX 10 mx1.mail.example.", "mail.example. 300 IN TXT \"v=spf1 -all\"",
                    "66.113.0.203.in-addr.arpa. 300 IN PTR update.evil-cdn.example.",
                ]
            )
            try await withEngine(trusting: certificate.0) { engine, _ in
                let resolvers = [
                    ("wire GET", unbound.dohURL, "get"), ("wire POST", unbound.dohURL, "post"),
                    ("UDP", "udp://127.0.0.1:\(unbound.dnsPort)", "get"),
                    ("TCP", "tcp://127.0.0.1:\(unbound.dnsPort)", "get"),
                ]
                for (transport, resolver, method) in resolvers {
                    let (run, events, _) = try await runOne(
                        engine,
                        type: "dns",
                        options: [
                            "name": "mail.example", "type": ["MX", "TXT"], "resolver": .string(resolver),
                            "method": .string(method),
                        ]
                    )
                    #expect(run.status == .succeeded, "\(transport): \(run.error ?? "")")
                    let answers = events.first?.payload["Answer"]?.arrayValue ?? []
                    #expect(events.first?.payload["Status"] == 0, "\(transport)")
                    #expect(
                        Set(answers.compactMap { $0["data"]?.stringValue }) == [
                            "10 mx1.mail.example.", "\"v=spf1 -all\"",
                        ],
                        "\(transport)"
                    )
                    #expect(answers.allSatisfy { $0["TTL"] == 300 }, "\(transport)")
                }
                let (_, reverse, _) = try await runOne(
                    engine,
                    type: "dns",
                    options: ["name": "203.0.113.66", "type": "PTR", "resolver": .string(unbound.dohURL)]
                )
                #expect(reverse.first?.payload["Answer"]?[0]?["data"] == "update.evil-cdn.example.")
                let (_, missing, _) = try await runOne(
                    engine,
                    type: "dns",
                    options: ["name": "nothing.mail.example", "resolver": .string(unbound.dohURL)]
                )
                #expect(missing.first?.payload["Status"] == 3)  // NXDOMAIN
            }
            _ = unbound
        }
    }

    @Test(.enabled(if: LoopbackServers.smtpMissing == nil, "\(LoopbackServers.smtpMissing ?? "")"))
    func emailFailuresAreClearAndImplicitTLSWorks() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = try await LoopbackServers.certificate(in: directory)
            let startTLS = try await LoopbackServers.SMTPSink(
                directory: directory.appendingPathComponent("a"),
                arguments: ["--tls", certificate.0, certificate.1, "--auth", "hunter:right-password"]
            )
            let implicit = try await LoopbackServers.SMTPSink(
                directory: directory.appendingPathComponent("b"),
                arguments: ["--implicit-tls", certificate.0, certificate.1]
            )
            try await withEngine(trusting: certificate.0) { engine, _ in
                try engine.vault.setCredential("smtp", value: "wrong-password")
                let email: (Int, String, String?) -> JSON = { port, security, password in
                    var options: JSONObject = [
                        "recipients": "soc@quarry.test, ir@quarry.test", "from": "Zoë Hunter <hunts@quarry.test>",
                        "subject": "Grüße: résumé of the hunt", "body": "<p>Hosts: <b>3</b></p>",
                        "smtp_host": "localhost",
                        "smtp_port": .int(Int64(port)), "smtp_security": .string(security),
                    ]
                    if let password {
                        options["smtp_username"] = "hunter"
                        options["smtp_password"] = .string(password)
                    }
                    return .object(options)
                }
                let (refused, _, _) = try await runOne(
                    engine,
                    type: "email",
                    options: email(startTLS.port, "starttls", "{% credential smtp %}"),
                    credentials: ["smtp"]
                )
                #expect(refused.status == .failed)
                #expect(refused.error?.contains("AUTH PLAIN refused: 535") == true, "\(refused.error ?? "")")
                #expect(refused.error?.contains("wrong-password") == false)

                let (plain, _, _) = try await runOne(engine, type: "email", options: email(startTLS.port, "none", nil))
                #expect(plain.status == .failed)
                #expect(plain.error?.contains("530") == true, "\(plain.error ?? "")")  // the server requires STARTTLS

                let (sent, events, _) = try await runOne(
                    engine,
                    type: "email",
                    options: email(implicit.port, "tls", nil)
                )
                #expect(sent.status == .succeeded, "\(sent.error ?? "")")
                #expect(events.first?.payload["sent"] == true)
                let message = try #require(try implicit.messages().first)
                #expect(message["subject"] as? String == "Grüße: résumé of the hunt")
                #expect(message["from"] as? String == "Zoë Hunter <hunts@quarry.test>")
                #expect(message["rcpt_tos"] as? [String] == ["soc@quarry.test", "ir@quarry.test"])
                #expect((message["text"] as? String)?.contains("Hosts: 3") == true)
                #expect(message["tls"] as? Bool == true)
            }
            _ = (startTLS, implicit)
        }
    }
}

@Suite(.mayBlock) struct SendToStoryTests {
    @Test func aSubStoryReturnsItsExitEvent() async throws {
        try await withEngine { engine, _ in
            try await engine.register(
                try Story(
                    text: """
                        name: enrich
                        exit_agent: Answer
                        agents:
                          - {name: In, type: webhook}
                          - {name: Answer, type: transform, receives_from: In, options: {payload: {ip: "{{ ip }}", verdict: "{% if ip contains '203.0.113.' %}bad{% else %}unknown{% endif %}"}}}
                        """
                )
            )
            let (run, events, _) = try await runOne(
                engine,
                type: "send_to_story",
                options: ["story": "enrich", "payload": ["ip": "{{ address }}"]],
                input: ["address": "203.0.113.66"]
            )
            #expect(run.status == .succeeded)
            #expect(events.first?.payload["verdict"] == "bad")
            #expect(events.first?.payload["story_run"]?.stringValue?.isEmpty == false)

            let (dry, dryEvents, _) = try await runOne(
                engine,
                type: "send_to_story",
                options: ["story": "enrich"],
                dryRun: true
            )
            #expect(dry.status == .succeeded)
            #expect(dryEvents.first?.payload["dry_run"] == true)
        }
    }
}
