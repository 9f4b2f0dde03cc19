import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarrySearch
import QuarryServer
import QuarryTesting
import Testing

@testable import QuarryStories

/// Credentials reach only where the story author sent them: a story reads only the credentials it declares, a
/// credential with allowed hosts goes nowhere else, the reference story takes only data from its input, and a
/// credential's value is redacted in the forms templates and agents turn it into.
@Suite(.mayBlock) struct CredentialSafetyTests {
    /// A listener that records every request it gets (an attacker's, as far as the story is concerned).
    static func withListener<T: Sendable>(
        _ body: @Sendable (Int, HTTPRequestAgentTests.Counter) async throws -> T
    )
        async throws -> T
    {
        let counter = HTTPRequestAgentTests.Counter()
        let responder = CallbackResponder { (request: Request, _: BasicRequestContext) in
            counter.increment()
            let echo: JSON = ["authorization": .string(request.headers[.authorization] ?? "")]
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: echo.serializedBytes()))
            )
        }
        let application = Application(
            responder: responder,
            configuration: .init(address: .hostname("127.0.0.1", port: 0))
        )
        return try await application.test(.live) { client in try await body(client.port ?? 0, counter) }
    }

    @Test func aStoryReadsOnlyTheCredentialsItDeclares() async throws {
        try await Self.withListener { port, counter in
            try await withEngine { engine, _ in
                try engine.vault.setCredential("smtp_password", value: "correct-horse-battery")
                try engine.vault.setCredential("es", value: "key-id:key-secret")
                // The credential's name comes from the input, as in the reference story before the fix.
                let (run, _, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: [
                        "cluster": .string("http://127.0.0.1:\(port)"), "credential": "{{ .start.which }}",
                        "index": "x", "query": ["query": ["match_all": [:]]],
                    ],
                    input: ["which": "smtp_password"],
                    credentials: ["es"]
                )
                #expect(run.status == .failed)
                #expect(run.error?.contains("not declared") == true, "\(run.error ?? "")")
                #expect(counter.count == 0, "nothing reached the listener")
                // A template that names an undeclared credential is refused before anything runs.
                let undeclared: JSON = [
                    "name": "undeclared",
                    "agents": [
                        ["name": "Start", "type": "webhook"],
                        [
                            "name": "Post", "type": "http_request", "receives_from": "Start",
                            "options": [
                                "url": "http://127.0.0.1:1/", "headers": ["X": "{% credential smtp_password %}"],
                            ],
                        ],
                    ],
                ]
                await #expect(throws: StoryProblems.self) {
                    try await engine.register(try Story(text: undeclared.serialized()))
                }
            }
        }
    }

    @Test func aCredentialWithAllowedHostsGoesNowhereElse() async throws {
        try await Self.withListener { port, counter in
            try await withEngine { engine, _ in
                try engine.vault.setCredential("es", value: "key-id:key-secret", allowedHosts: ["es.example.com"])
                let options: JSON = [
                    "cluster": .string("http://127.0.0.1:\(port)"), "credential": "es", "index": "x",
                    "query": ["query": ["match_all": [:]]],
                ]
                let (refused, _, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: options,
                    credentials: ["es"]
                )
                #expect(refused.status == .failed)
                #expect(refused.error?.contains("may not be sent to 127.0.0.1") == true, "\(refused.error ?? "")")
                let (templated, _, _) = try await runOne(
                    engine,
                    type: "http_request",
                    options: [
                        "url": .string("http://127.0.0.1:\(port)/"),
                        "headers": ["Authorization": "ApiKey {% credential es %}"],
                    ],
                    credentials: ["es"]
                )
                #expect(templated.status == .failed)
                #expect(counter.count == 0, "the credential never left")
                try engine.vault.setCredential("es", value: "key-id:key-secret", allowedHosts: ["127.0.0.1"])
                let (allowed, _, _) = try await runOne(
                    engine,
                    type: "elasticsearch",
                    options: options,
                    credentials: ["es"]
                )
                #expect(allowed.status == .succeeded, "\(allowed.error ?? "")")
                #expect(counter.count == 1)
            }
        }
    }

    @Test func theReferenceStoryTakesOnlyDataFromItsInput() async throws {
        try await Self.withListener { port, counter in
            try await withTemporaryDirectory { directory in
                let store = try EmbeddedStore(configuration: .init(dataDirectory: directory))
                defer { try? store.close() }
                try await withEngine(defaultCluster: EmbeddedCluster(api: ElasticsearchAPI(store: store))) {
                    engine,
                    _ in
                    try engine.vault.setCredential("smtp_password", value: "correct-horse-battery")
                    try engine.vault.setResource("hunt_recipients", value: #"["@soc.example"]"#)
                    try engine.vault.setResource(
                        "smtp",
                        value: #"{"host": "127.0.0.1", "port": \#(port), "from": "hunts@soc.example"}"#
                    )
                    let path = ProjectPaths.root.appendingPathComponent("stories/dns-threat-hunt.yaml").path
                    let story = try Story(contentsOf: path)
                    #expect(
                        StoryLinter.problems(in: story, agents: .builtIn).isEmpty,
                        "\(StoryLinter.problems(in: story, agents: .builtIn))"
                    )
                    try await engine.register(story)
                    // The webhook secret was generated for this installation, and only it starts the story.
                    let secret = try #require(try engine.vault.credential("dns_hunt_webhook_secret"))
                    #expect(secret.count >= 32)
                    #expect(engine.webhook(story: "dns_threat_hunt", secret: secret) != nil)
                    #expect(engine.webhook(story: "dns_threat_hunt", secret: "0b4e3dc5ab4fe1f5c1bd7ff5") == nil)
                    let run = try await engine.startRun(
                        story: story.name,
                        payload: [
                            "domain": "evil.example", "from": "now-1h", "cluster": .string("http://127.0.0.1:\(port)"),
                            "cluster_credential": "smtp_password", "index": ".security",
                            "resolver": .string("http://127.0.0.1:\(port)/dns-query"),
                            "recipients": "thief@attacker.test",
                        ]
                    )
                    _ = try await engine.waitForRun(run)
                    #expect(counter.count == 0, "no request reached the caller's URL")
                    let failures = try await engine.timeline(run).filter { $0.outcome == .failed }.compactMap(\.message)
                    #expect(failures.contains { $0.contains("not an allowed recipient") }, "\(failures)")
                }
            }
        }
    }

    @Test func lintWarnsWhenInputDecidesWhereACredentialGoes() throws {
        let source: JSON = [
            "name": "leaky", "credentials": ["es"],
            "agents": [
                ["name": "Start", "type": "webhook"],
                [
                    "name": "Search", "type": "elasticsearch", "receives_from": "Start",
                    "options": ["cluster": "{{ .start.cluster }}", "credential": "es", "index": "x", "query": [:]],
                ],
                [
                    "name": "Post", "type": "http_request", "receives_from": "Start",
                    "options": ["url": "{{ .start.url }}", "headers": ["Authorization": "{% credential es %}"]],
                ],
                [
                    "name": "Fetch", "type": "http_request", "receives_from": "Start",
                    "options": ["url": "{{ .start.url }}"],
                ],
            ],
        ]
        let problems = StoryLinter.problems(in: try Story(text: source.serialized()), agents: .builtIn)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.allSatisfy { $0.isWarning })
        #expect(problems.map(\.option) == ["options.cluster", "options.url"])
    }

    @Test func redactionCoversTheFormsOfASecret() {
        let secret = #"Pa"ss\w0rd-correct-horse"#
        let redaction = Redaction(secrets: [secret])
        let basic = Data("hunter:\(secret)".utf8).base64EncodedString()
        let forms = [
            secret, secret.uppercased(), secret.lowercased(), Data(secret.utf8).base64EncodedString(),
            Data(secret.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_"),
            basic, Data("x\(secret)".utf8).base64EncodedString(), Data("xy\(secret)".utf8).base64EncodedString(),
            secret.utf8.map { String(format: "%02x", $0) }.joined(),
            secret.utf8.map { String(format: "%02X", $0) }.joined(),
            secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "",
            String(JSON.string(secret).serialized().dropFirst().dropLast()),
        ]
        for form in forms {
            let redacted = redaction.redact("before \(form) after")
            #expect(redacted.contains(Redaction.marker), "\(form) → \(redacted)")
            #expect(!redacted.lowercased().contains("correct-horse"), "\(form) → \(redacted)")
        }
        #expect(redaction.redact("nothing secret here") == "nothing secret here")
    }

    @Test func credentialsTurnedIntoOtherFormsAreRedactedFromEventsAndTimelines() async throws {
        try await Self.withListener { port, _ in
            try await withEngine { engine, _ in
                let secret = "s3cret-Token-for-redaction"
                try engine.vault.setCredential("token", value: secret)
                let (_, events, _) = try await runOne(
                    engine,
                    type: "transform",
                    options: [
                        "mode": "message_only",
                        "payload": [
                            "upper": "{{ .CREDENTIAL.token | upcase }}", "lower": "{{ .CREDENTIAL.token | downcase }}",
                            "base64": "{{ .CREDENTIAL.token | base64_encode }}",
                            "url_safe": "{{ .CREDENTIAL.token | base64_url_safe_encode }}",
                            "url": "{{ .CREDENTIAL.token | url_encode }}", "json": "{{ .CREDENTIAL.token | json }}",
                            "basic": "{{ 'user:' | append: .CREDENTIAL.token | base64_encode }}",
                        ],
                    ],
                    credentials: ["token"]
                )
                let payload = try #require(events.first?.payload)
                #expect(payload.objectValue?.count == 7)
                for (key, value) in payload.objectValue ?? [:] {
                    #expect(value.stringValue?.contains(Redaction.marker) == true, "\(key): \(value)")
                }
                // An error message that carries the credential (in a URL) is redacted in the timeline too.
                let (run, _, timeline) = try await runOne(
                    engine,
                    type: "http_request",
                    options: ["url": "http://127.0.0.1:1/?key={{ .CREDENTIAL.token | url_encode }}"],
                    credentials: ["token"]
                )
                #expect(run.status == .failed)
                let messages = timeline.compactMap(\.message) + [run.error ?? ""]
                #expect(!messages.joined().contains("s3cret"), "\(messages)")
                _ = port
            }
        }
    }
}
