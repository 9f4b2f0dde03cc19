import AsyncHTTPClient
import Foundation
import QuarryAgents
import QuarryCore
import QuarryElasticsearchAPI
import QuarryPacketbeat
import QuarrySamples
import QuarrySearch
import QuarryServer
import QuarryStories
import QuarryStoriesSQLite
import QuarryTesting
import Testing

/// The reference story from webhook to email: a generated capture in the embedded store, live resolution from
/// unbound over DNS-over-HTTPS, the report delivered to aiosmtpd over STARTTLS with AUTH.
@Suite(.serialized, .mayBlock) struct ReferenceHuntEndToEndTests {
    @Test(.enabled(if: LoopbackServers.missing == nil, "\(LoopbackServers.missing ?? "")"))
    func theEmailListsExactlyTheHostsTheCaptureContains() async throws {
        try await withTemporaryDirectory { directory in
            let certificate = try await LoopbackServers.certificate(in: directory)
            let unbound = try await LoopbackServers.Unbound(
                directory: directory,
                certificate: certificate,
                localData: [
                    "update.evil-cdn.example. 300 IN A 203.0.113.66", "update.evil-cdn.example. 300 IN A 203.0.113.67",
                    "update.evil-cdn.example. 300 IN AAAA 2001:db8::66", "nobody.quiet.example. 300 IN A 198.51.100.7",
                ]
            )
            let sink = try await LoopbackServers.SMTPSink(
                directory: directory,
                arguments: ["--tls", certificate.0, certificate.1, "--auth", "hunter:correct-horse-battery"]
            )

            // A capture of 30 hosts over 20 minutes, ingested as `quarry ingest` does.
            let capture = directory.appendingPathComponent("network.pcap").path
            let now = Int64(Date().timeIntervalSince1970)
            let configuration = CaptureGenerator.Configuration(
                hosts: 30,
                minutes: 20,
                start: (now - 1_200) * 1_000_000_000
            )
            let summary = try CaptureGenerator.write(path: capture, configuration: configuration)
            let store = try EmbeddedStore(configuration: .init(dataDirectory: directory.appendingPathComponent("data")))
            defer { try? store.close() }
            try store.putTemplate(PacketbeatTemplate.name, body: PacketbeatTemplate.body)
            var items: [EmbeddedStore.BulkItem] = []
            let ingester = CaptureIngester { document in
                items.append(
                    .init(
                        index: document.dailyIndex,
                        operation: .index(IndexRequest(id: nil, source: document.bytes, document: document.json))
                    )
                )
            }
            try ingester.ingest(path: capture)
            _ = ingester.finish()
            #expect(store.bulk(items).allSatisfy { $0.error == nil })
            _ = try store.refresh("_all")

            let client = BuiltInServices.makeHTTPClient(trustedCertificatesFile: certificate.0)
            let engine = try await StoryEngine(
                directory: directory.appendingPathComponent("stories"),
                environment: [:],
                services: AgentServices(
                    BuiltInServices(
                        httpClient: client,
                        defaultCluster: EmbeddedCluster(api: ElasticsearchAPI(store: store)),
                        trustedCertificatesFile: certificate.0,
                        defaultResolver: unbound.dohURL
                    )
                ),
                agents: .builtIn
            )
            try engine.vault.setResource(
                "smtp",
                value:
                    #"{"host": "localhost", "port": \#(sink.port), "security": "starttls", "username": "hunter", "from": "Quarry hunts <hunts@quarry.test>"}"#
            )
            try engine.vault.setCredential("smtp_password", value: "correct-horse-battery")
            try engine.vault.setResource("hunt_recipients", value: #"["@quarry.test"]"#)
            let story = try Story(
                contentsOf: ProjectPaths.root.appendingPathComponent("stories/dns-threat-hunt.yaml").path
            )
            try await engine.register(story)
            try await engine.withRunning {

                let domain = CaptureGenerator.plantedDomains[0].name
                // As a person types it: another case, and the trailing dot of an absolute name.
                let typed = "Update.EVIL-cdn.Example."
                let run = try await engine.startRun(
                    story: "DNS threat hunt",
                    payload: ["domain": .string(typed), "from": "now-1h", "to": "now", "recipients": "soc@quarry.test"]
                )
                let record = try await engine.waitForRun(run)
                #expect(record.status == .succeeded, "\(record.error ?? "")")

                let queried = summary.plantedLookups[domain] ?? []
                let generator = CaptureGenerator(configuration: configuration)
                let connected = queried.union(
                    summary.silentConnections > 0 ? [generator.silentConnector.description] : []
                )
                #expect(!queried.isEmpty && connected.count > queried.count)

                // The report event: the JSON contract.
                let report = try #require(try await engine.events(run: run, agent: "Build report").first?.payload)
                #expect(report["domain"] == .string(domain))
                #expect(
                    Set(report["resolved_ips"]?["live"]?.arrayValue ?? []) == [
                        "203.0.113.66", "203.0.113.67", "2001:db8::66",
                    ]
                )
                #expect(
                    Set(report["resolved_ips"]?["observed"]?.arrayValue ?? []) == ["203.0.113.66", "2001:db8::66"]
                )
                // The names as the wire had them: the generator sends them in mixed case (0x20 randomisation).
                let seen = report["names_seen"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(!seen.isEmpty && seen.allSatisfy { $0.lowercased() == domain && $0 != domain }, "\(seen)")
                #expect(report["include_subdomains"] == false)
                #expect(report["live_resolution_error"] == .null)
                let hosts = report["hosts"]?.arrayValue ?? []
                #expect(Set(hosts.filter { $0["queried"] == true }.compactMap { $0["ip"]?.stringValue }) == queried)
                #expect(Set(hosts.filter { $0["connected"] == true }.compactMap { $0["ip"]?.stringValue }) == connected)
                for host in hosts {
                    #expect((host["first_seen"]?.stringValue ?? "") <= (host["last_seen"]?.stringValue ?? ""))
                }

                // The email aiosmtpd received, over STARTTLS, authenticated.
                let messages = try sink.messages()
                #expect(messages.count == 1)
                let message = try #require(messages.first)
                #expect(message["rcpt_tos"] as? [String] == ["soc@quarry.test"])
                #expect(message["tls"] as? Bool == true)
                #expect(message["authenticated"] as? Bool == true)
                #expect(message["content_type"] as? String == "multipart/alternative")
                let html = message["html"] as? String ?? ""
                let rows = try Regex(#"<tr><td>([0-9a-f.:]+)</td><td>[^<]*</td><td>(yes|no)</td><td>(yes|no)</td>"#)
                var mailedQueried = Set<String>()
                var mailedConnected = Set<String>()
                for match in html.matches(of: rows) {
                    let ip = String(match.output[1].substring ?? "")
                    if match.output[2].substring == "yes" { mailedQueried.insert(ip) }
                    if match.output[3].substring == "yes" { mailedConnected.insert(ip) }
                }
                #expect(mailedQueried == queried)
                #expect(mailedConnected == connected)
                #expect((message["text"] as? String ?? "").contains(domain))

                // The registered domain finds nobody by itself, and everyone under it with include_subdomains (a form's
                // checkbox sends "on").
                let parent = "evil-cdn.example"
                for (flag, expected) in [(JSON.bool(false), Set<String>()), (.string("on"), queried)] {
                    let subdomains = try await engine.startRun(
                        story: "DNS threat hunt",
                        payload: ["domain": .string(parent), "from": "now-1h", "include_subdomains": flag]
                    )
                    #expect(try await engine.waitForRun(subdomains).status == .succeeded)
                    let found = try #require(
                        try await engine.events(run: subdomains, agent: "Build report").first?.payload
                    )
                    let askers = found["hosts"]?.arrayValue?.filter { $0["queried"] == true }.compactMap {
                        $0["ip"]?.stringValue
                    }
                    #expect(Set(askers ?? []) == expected, "include_subdomains \(flag)")
                }

                // A domain nobody asked about: the "nothing found" email.
                let quiet = try await engine.startRun(
                    story: "DNS threat hunt",
                    payload: ["domain": "nobody.quiet.example", "recipients": "soc@quarry.test"]
                )
                #expect(try await engine.waitForRun(quiet).status == .succeeded)
                let second = try sink.messages()
                #expect(second.count == 2)
                #expect(
                    (second.last?["subject"] as? String)?.hasPrefix(
                        "DNS threat hunt: nothing found for nobody.quiet.example"
                    ) == true
                )

                // An unreachable resolver (the story's setting, as `quarry hunt dns --resolver` writes it): the hunt
                // still answers from the wire, and says live resolution failed.
                var offlineStory = story
                for position in offlineStory.agents.indices where offlineStory.agents[position].type == "dns" {
                    guard case .object(var options) = offlineStory.agents[position].options else { continue }
                    options["resolver"] = "https://localhost:1/dns-query"
                    offlineStory.agents[position].options = .object(options)
                }
                try await engine.register(offlineStory)
                let offline = try await engine.startRun(
                    story: "DNS threat hunt",
                    payload: ["domain": .string(domain), "from": "now-1h"]
                )
                #expect(try await engine.waitForRun(offline).status == .succeeded)
                let offlineReport = try #require(
                    try await engine.events(run: offline, agent: "Build report").first?.payload
                )
                #expect(offlineReport["live_resolution_error"]?.stringValue?.isEmpty == false)
                #expect(
                    Set(offlineReport["hosts"]?.arrayValue?.compactMap { $0["ip"]?.stringValue } ?? []) == connected
                )

                // The password never reached an event or a timeline message.
                for event in try await engine.events(run: run) {
                    #expect(!event.payload.serialized().contains("correct-horse-battery"))
                }
            }
            try await client.shutdown()
            _ = (unbound, sink)
        }
    }
}
