import ArgumentParser
import Foundation
import QuarryAgents
import QuarryCore
import QuarryPacketbeat
import QuarrySearch
import QuarryStories

extension Quarry {
    /// `quarry hunt dns DOMAIN`: the reference story, once.
    struct Hunt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a canned hunt once.",
            subcommands: [DNS.self]
        )

        struct DNS: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "dns",
                abstract:
                    "Which hosts asked about DOMAIN, and which hosts sent traffic to the addresses it resolves to?",
                discussion: """
                    Runs stories/dns-threat-hunt.yaml on the embedded store (or --cluster). With --capture the files \
                    are decoded into the store first and, without --since/--from, the window is the whole capture. \
                    When the resolver cannot be reached the hunt still answers from the resolutions seen in the data, \
                    and says that live resolution failed. Names are compared without case and a trailing dot is \
                    ignored. Exit status: 0 when hosts were found, 2 when none were, 1 on failure.

                    Examples:
                      quarry hunt dns evil.example --capture incident.pcap
                      quarry hunt dns evil.example --since 4h --data ./data --json
                      quarry hunt dns Evil.Example. --include-subdomains --from now-2d --to now-1d
                      quarry hunt dns evil.example --cluster https://es.example:9200 --cluster-credential es_key

                    The live lookup asks a resolver for DOMAIN's addresses, which tells that resolver (by default \
                    Cloudflare's public DNS-over-HTTPS service) and the domain's own name servers that someone here \
                    is looking. Set the resolver once with the environment variable QUARRY_RESOLVER or the resource \
                    `resolver` (quarry resources set resolver '"https://…/dns-query"'), or turn the lookup off with \
                    --resolver none; the hunt then uses only the resolutions seen in the data. The resolver used is \
                    printed on standard error.
                    """
            )
            @Argument(help: "The domain to hunt for (any case; a trailing dot is ignored).") var domain: String
            @Flag(name: .long, help: "Also find names under DOMAIN (a.DOMAIN, b.c.DOMAIN).") var includeSubdomains =
                false
            @Option(name: .long, help: "Look back this far (30m, 4h, 2d); default 4h without --capture.") var since:
                String?
            @Option(name: .long, help: "Window start: ISO 8601 or Elasticsearch date math.") var from: String?
            @Option(name: .long, help: "Window end: ISO 8601 or Elasticsearch date math (default now).") var to: String?
            @Option(name: .long, parsing: .upToNextOption, help: "pcap/pcapng files to ingest first.") var capture:
                [String] = []
            @Option(
                name: .long,
                help: """
                    DoH URL (https://…/dns-query), udp://HOST:PORT, tcp://HOST:PORT, system, or none (no live lookup); \
                    default QUARRY_RESOLVER, the resource `resolver`, else Cloudflare's DoH service.
                    """
            )
            var resolver: String?
            @Option(
                name: .long,
                help: "Email the report to these addresses (comma-separated); needs the smtp resource."
            )
            var email: String?
            @Option(
                name: .long,
                help: "Search this Elasticsearch/OpenSearch URL (or resource name) instead of the embedded store."
            )
            var cluster: String?
            @Option(name: .long, help: "The credential holding the cluster's API key.") var clusterCredential: String?
            @Option(name: .long, help: "Index pattern (default packetbeat-*).") var index: String?
            @Option(name: .long, help: "The story file (default stories/dns-threat-hunt.yaml).") var story: String?
            @Option(name: .long, help: "Extra certificate authorities (PEM) to trust for HTTPS and SMTP.") var caFile:
                String?
            @Flag(name: .long, help: "Print the report as JSON (the contract in docs/stories.md).") var json = false
            @OptionGroup var store: StoreOptions

            func validate() throws {
                _ = try Self.normalizedDomain(domain)
                if since != nil && from != nil { throw ValidationError("give --since or --from, not both") }
                if let since,
                    !["s", "m", "h", "d", "w"].contains(since.last.map(String.init) ?? "")
                        || Int(since.dropLast()) == nil
                {
                    throw ValidationError(
                        "--since takes a whole number and a unit (Elasticsearch date math): 30m, 4h, 2d"
                    )
                }
                if since != nil || from != nil || to != nil {
                    try Self.checkWindow(
                        from: from ?? "now-\(since ?? "4h")",
                        to: to ?? "now",
                        fromOption: from != nil ? "--from" : since != nil ? "--since" : "the default start (now-4h)",
                        toOption: to != nil ? "--to" : "the default end (now)"
                    )
                }
            }

            func run() async throws {
                tuneMemoryAllocator()
                let logger = store.makeLogger()
                guard let path = story ?? StoryRuntime.referenceStoryPath() else {
                    throw ValidationError(
                        "stories/dns-threat-hunt.yaml not found: run from the checkout, or pass --story"
                    )
                }
                let definition = try loadStory(path)
                let runtime = try await StoryRuntime(
                    dataDirectory: store.dataDirectory,
                    openStore: cluster == nil || !capture.isEmpty,
                    trustedCertificates: caFile,
                    resolver: nil,
                    logger: logger
                )
                do {
                    let result = try await hunt(definition, runtime: runtime)
                    await runtime.shutdown()
                    if result { return }
                    throw ExitCode(2)
                } catch {
                    await runtime.shutdown()
                    throw error
                }
            }

            /// The domain as the hunt compares it: trimmed, lower case, without the trailing dot of an absolute name.
            /// - Throws: `ValidationError` naming DOMAIN when it is empty or not a DNS name.
            static func normalizedDomain(_ given: String) throws -> String {
                var name = given.trimmingCharacters(in: .whitespaces).asciiLowercased
                if name.hasSuffix(".") { name.removeLast() }
                let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_.")
                guard !name.isEmpty, name.count <= 253, name.allSatisfy({ allowed.contains($0) }),
                    !name.split(separator: ".", omittingEmptySubsequences: false).contains(where: {
                        $0.isEmpty || $0.count > 63
                    })
                else {
                    throw ValidationError(
                        "DOMAIN '\(given)' is not a DNS name (letters, digits, '-' and '_' in dot-separated labels)"
                    )
                }
                return name
            }

            /// The window as epoch milliseconds, to refuse an unreadable time or an end before the start before
            /// anything runs (the store would otherwise answer an empty window with "no host asked").
            static func checkWindow(from: String, to: String, fromOption: String, toOption: String) throws {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                func resolve(_ text: String, _ option: String, roundUp: Bool) throws -> Int64 {
                    do {
                        return try DateMath.resolve(text, now: now, roundUp: roundUp)
                    } catch {
                        throw ValidationError(
                            "\(option) '\(text)' is not a time: give ISO 8601 (2026-12-04T10:00:00Z) or date math (now-4h)"
                        )
                    }
                }
                let start = try resolve(from, fromOption, roundUp: false)
                let end = try resolve(to, toOption, roundUp: true)
                if end < start {
                    throw ValidationError("\(toOption) '\(to)' is before \(fromOption) '\(from)': the window is empty")
                }
            }

            private func loadStory(_ path: String) throws -> Story {
                do {
                    return try Story(contentsOf: path)
                } catch let error as StoryProblems {
                    throw CommandFailure(error.problems.map { "\(path): \($0)" }.joined(separator: "\n"))
                }
            }

            /// The story with this run's settings written into it. The story takes only data (domain, window,
            /// recipients) from its input; which cluster, index and resolver it uses, which credential it sends and
            /// to whom it may write are the story's, and the person running the command sets them here.
            private func configured(_ story: Story) -> Story {
                var story = story
                if let clusterCredential, !story.credentials.contains(clusterCredential) {
                    story.credentials.append(clusterCredential)
                }
                for position in story.agents.indices {
                    guard case .object(var options) = story.agents[position].options else { continue }
                    switch story.agents[position].type {
                    case ElasticsearchAgent.type:
                        if let cluster { options["cluster"] = .string(cluster) }
                        if let clusterCredential { options["credential"] = .string(clusterCredential) }
                        if let index { options["index"] = .string(index) }
                    case DNSAgent.type:
                        if let resolver { options["resolver"] = .string(resolver) }
                    case EmailAgent.type:
                        if let email { options["allowed_recipients"] = [.string(email)] }
                    default: continue
                    }
                    story.agents[position].options = .object(options)
                }
                return story
            }

            /// Runs the hunt; true when it found hosts.
            private func hunt(_ definition: Story, runtime: StoryRuntime) async throws -> Bool {
                var window: (from: String, to: String) = ("now-\(since ?? "4h")", to ?? "now")
                if let from { window.from = from }
                let domain = try Self.normalizedDomain(domain)
                try announceResolver(runtime)
                if !capture.isEmpty, let store = runtime.store {
                    let sink = try StoreSink(store: store, index: nil, batchSize: 5_000)
                    let ingester = CaptureIngester { document in sink.add(document) }
                    for file in capture {
                        if !json { printError("Decoding \(file) into the embedded store …") }
                        try ingester.ingest(path: file)
                    }
                    _ = ingester.finish()
                    try sink.finish()
                    if sink.failed > 0 { throw CommandFailure("\(sink.failed) documents were refused by the store") }
                    if !json { printError("  \(sink.created) new documents, \(sink.existing) already there") }
                    if since == nil && from == nil, let range = sink.timestamps {
                        window = (
                            ISO8601.format(range.lowerBound / 1_000_000),
                            ISO8601.format(range.upperBound / 1_000_000 + 1)
                        )
                    }
                    _ = try store.refresh("_all")
                }
                if try email != nil && runtime.engine.vault.resource("smtp") == nil {
                    throw CommandFailure(
                        #"--email needs the SMTP server: quarry resources set smtp '{"host":"…","port":587,"from":"…"}'"#
                    )
                }
                try await runtime.engine.register(configured(definition))
                var payload: JSONObject = [
                    "domain": .string(domain), "from": .string(window.from), "to": .string(window.to),
                    "include_subdomains": .bool(includeSubdomains),
                ]
                if let email { payload["recipients"] = .string(email) }
                let event = JSON.object(payload)
                let (guid, record) = try await runtime.engine.withRunning {
                    let guid = try await runtime.engine.startRun(story: definition.name, payload: event)
                    return (guid, try await runtime.engine.waitForRun(guid))
                }
                let exit = definition.exitAgent ?? "build_report"
                guard
                    let report = try await runtime.engine.events(run: guid, agent: exit).last(where: { !$0.isError })?
                        .payload
                else {
                    // The run's error names the agent that failed and why; other failures are printed once each.
                    for entry in try await runtime.engine.timeline(guid) where entry.outcome == .failed {
                        let failure = "\(entry.agent): \(entry.message ?? "failed")"
                        if failure != record.error { printError(failure) }
                    }
                    throw CommandFailure("the hunt failed (run \(guid)): \(record.error ?? record.status.rawValue)")
                }
                if record.status == .failed {
                    printError("warning: \(record.error ?? "an agent failed") (run \(guid))")
                }
                let hosts = report["hosts"]?.arrayValue ?? []
                if json {
                    var output = JSONObject()
                    for key in [
                        "domain", "include_subdomains", "window", "resolved_ips", "names_seen", "hosts",
                        "live_resolution_error", "dns_queries", "connections",
                    ] {
                        output[key] = report[key] ?? .null
                    }
                    output["run"] = .string(guid)
                    print(JSON.object(output).serialized(pretty: true))
                } else {
                    printReport(report, hosts: hosts, guid: guid)
                }
                return !hosts.isEmpty
            }

            /// Says on standard error which resolver the live lookup asks, since asking tells it (and the domain's
            /// name servers) that someone is looking.
            private func announceResolver(_ runtime: StoryRuntime) throws {
                let resource = try runtime.engine.vault.resource("resolver")
                let chosen = resolver ?? runtime.services.resolver(resource: resource)
                if chosen == "none" {
                    printError("Live lookup: off (--resolver none); using the resolutions seen in the data.")
                } else {
                    printError("Live lookup: asking \(chosen) (--resolver none to skip it).")
                }
            }

            private func printReport(_ report: JSON, hosts: [JSON], guid: String) {
                let text = { (value: JSON?) -> String in
                    value?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? ""
                }
                let domain = report["domain"]?.stringValue ?? domain
                print(
                    "DNS threat hunt for \(domain), \(report["window"]?["from"]?.stringValue ?? "") to \(report["window"]?["to"]?.stringValue ?? "")"
                )
                if let error = report["live_resolution_error"]?.stringValue {
                    print("  live resolution failed: \(error) — using the resolutions seen in the data")
                } else {
                    print(
                        "  resolves to (live):   \(text(report["resolved_ips"]?["live"]).isEmpty ? "nothing" : text(report["resolved_ips"]?["live"]))"
                    )
                }
                print(
                    "  resolved on the wire: \(text(report["resolved_ips"]?["observed"]).isEmpty ? "nothing" : text(report["resolved_ips"]?["observed"]))"
                )
                // A resolver randomising case (0x20) makes a name per query: the table shows a few, --json all.
                let names = report["names_seen"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if !names.isEmpty {
                    let more = names.count > 3 ? " and \(names.count - 3) more (--json lists them)" : ""
                    print("  names asked, as seen: \(names.prefix(3).joined(separator: ", "))\(more)")
                }
                print(
                    "  \(report["dns_queries"]?.intValue ?? 0) DNS queries, \(report["connections"]?.intValue ?? 0) connections\n"
                )
                guard !hosts.isEmpty else {
                    let scope = includeSubdomains ? "\(domain) (or a name under it)" : domain
                    print("No host asked about \(scope) or sent traffic to its addresses in the window.")
                    return
                }
                print(
                    "host             queried  connected  DNS queries  connections  first seen                   last seen"
                )
                let sorted = hosts.sorted {
                    (IPAddress($0["ip"]?.stringValue ?? "") ?? IPAddress(ipv4: 0))
                        < (IPAddress($1["ip"]?.stringValue ?? "") ?? IPAddress(ipv4: 0))
                }
                for host in sorted {
                    let columns = [
                        (host["ip"]?.stringValue ?? "").padding(toLength: 16, withPad: " ", startingAt: 0),
                        (host["queried"]?.boolValue == true ? "yes" : "no").padding(
                            toLength: 8,
                            withPad: " ",
                            startingAt: 0
                        ),
                        (host["connected"]?.boolValue == true ? "yes" : "no").padding(
                            toLength: 10,
                            withPad: " ",
                            startingAt: 0
                        ),
                        String(host["dns_queries"]?.intValue ?? 0).padding(toLength: 12, withPad: " ", startingAt: 0),
                        String(host["connections"]?.intValue ?? 0).padding(toLength: 12, withPad: " ", startingAt: 0),
                        (host["first_seen"]?.stringValue ?? "").padding(toLength: 28, withPad: " ", startingAt: 0),
                        host["last_seen"]?.stringValue ?? "",
                    ]
                    print(columns.joined(separator: " "))
                }
                print("\nrun \(guid)")
            }
        }
    }
}
