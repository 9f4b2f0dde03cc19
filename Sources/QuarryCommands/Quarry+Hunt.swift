import ArgumentParser
import Foundation
import QuarryAgents
import QuarryCore
import QuarryElastic
import QuarryPacketbeat
import QuarrySearch
import QuarryStories

extension Quarry {
    /// `quarry hunt dns DOMAIN`: the reference story, once.
    struct Hunt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a canned hunt once.",
            subcommands: [DNS.self, Sigma.self]
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
                if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                    // One engine runs the data directory's stories: the server's.
                    if try await huntThroughServer(definition, path: path, served: served) { return }
                    throw ExitCode(2)
                }
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
                let overrides = optionOverrides
                for position in story.agents.indices {
                    guard case .object(var options) = story.agents[position].options,
                        let set = overrides[story.agents[position].type]
                    else { continue }
                    for (name, value) in set { options[name] = value }
                    story.agents[position].options = .object(options)
                }
                return story
            }

            /// ``configured(_:)`` on the story's text, for the server: the story as JSON with the same settings.
            private func configured(text: String) throws -> String {
                let overrides = optionOverrides
                // Unchanged, the story keeps its own text (the server shows it on the story's page).
                guard !overrides.isEmpty || clusterCredential != nil,
                    case .object(var story) = try YAMLText.document(text)
                else { return text }
                if let clusterCredential {
                    var credentials = story["credentials"]?.arrayValue ?? []
                    if !credentials.contains(.string(clusterCredential)) {
                        credentials.append(.string(clusterCredential))
                    }
                    story["credentials"] = .array(credentials)
                }
                story["agents"] = story["agents"]?.arrayValue.map { agents in
                    .array(
                        agents.map { agent in
                            guard case .object(var object) = agent, let type = object["type"]?.stringValue,
                                let set = overrides[type]
                            else { return agent }
                            var options = object["options"]?.objectValue ?? [:]
                            for (name, value) in set { options[name] = value }
                            object["options"] = .object(options)
                            return .object(object)
                        }
                    )
                }
                return JSON.object(story).serialized(pretty: true)
            }

            /// The options this run sets, by agent type.
            private var optionOverrides: [String: JSONObject] {
                var overrides: [String: JSONObject] = [:]
                if let cluster { overrides[ElasticsearchAgent.type, default: [:]]["cluster"] = .string(cluster) }
                if let clusterCredential {
                    overrides[ElasticsearchAgent.type, default: [:]]["credential"] = .string(clusterCredential)
                }
                if let index { overrides[ElasticsearchAgent.type, default: [:]]["index"] = .string(index) }
                if let resolver { overrides[DNSAgent.type, default: [:]]["resolver"] = .string(resolver) }
                if let email { overrides[EmailAgent.type, default: [:]]["allowed_recipients"] = [.string(email)] }
                return overrides
            }

            /// The hunt's entry event.
            private func payload(domain: String, window: (from: String, to: String)) -> JSON {
                var payload: JSONObject = [
                    "domain": .string(domain), "from": .string(window.from), "to": .string(window.to),
                    "include_subdomains": .bool(includeSubdomains),
                ]
                if let email { payload["recipients"] = .string(email) }
                return .object(payload)
            }

            /// The hunt run by the `quarry serve` that holds the data directory: a capture goes into its store
            /// through its Elasticsearch API, and the story runs on its engine. True when it found hosts.
            private func huntThroughServer(
                _ definition: Story,
                path: String,
                served: ServedDataDirectory
            ) async throws
                -> Bool
            {
                var window: (from: String, to: String) = ("now-\(since ?? "4h")", to ?? "now")
                if let from { window.from = from }
                let domain = try Self.normalizedDomain(domain)
                if resolver == "none" {
                    printError("Live lookup: off (--resolver none); using the resolutions seen in the data.")
                } else {
                    printError(
                        "Live lookup: asking \(resolver ?? "the resolver quarry serve is set up with") "
                            + "(--resolver none to skip it)."
                    )
                }
                if !capture.isEmpty {
                    let range = try await CaptureLoading.load(capture, into: served, quiet: json)
                    if since == nil && from == nil, let range { window = CaptureLoading.window(range) }
                }
                if email != nil {
                    do {
                        _ = try await served.webClient().perform(.get, "/api/v1/resources/smtp")
                    } catch let error as ElasticError where error.status == 404 {
                        throw CommandFailure(
                            #"--email needs the SMTP server: quarry resources set smtp '{"host":"…","port":587,"from":"…"}'"#
                        )
                    }
                }
                let text = try configured(text: definition.text ?? String(contentsOfFile: path, encoding: .utf8))
                let run = try await ServedStoryRun.run(
                    text,
                    story: definition,
                    payload: payload(domain: domain, window: window),
                    dryRun: false,
                    on: served
                )
                return try present(
                    definition,
                    guid: run.record.guid,
                    record: run.record,
                    events: run.events,
                    timeline: run.timeline
                )
            }

            /// Runs the hunt; true when it found hosts.
            private func hunt(_ definition: Story, runtime: StoryRuntime) async throws -> Bool {
                var window: (from: String, to: String) = ("now-\(since ?? "4h")", to ?? "now")
                if let from { window.from = from }
                let domain = try Self.normalizedDomain(domain)
                try announceResolver(runtime)
                if !capture.isEmpty, let store = runtime.store {
                    let range = try CaptureLoading.load(capture, into: store, quiet: json)
                    if since == nil && from == nil, let range { window = CaptureLoading.window(range) }
                }
                if try email != nil && runtime.engine.vault.resource("smtp") == nil {
                    throw CommandFailure(
                        #"--email needs the SMTP server: quarry resources set smtp '{"host":"…","port":587,"from":"…"}'"#
                    )
                }
                try await runtime.engine.register(configured(definition))
                let event = payload(domain: domain, window: window)
                let (guid, record) = try await runtime.engine.withRunning {
                    let guid = try await runtime.engine.startRun(story: definition.name, payload: event)
                    return (guid, try await runtime.engine.waitForRun(guid))
                }
                return try present(
                    definition,
                    guid: guid,
                    record: record,
                    events: try await runtime.engine.events(run: guid),
                    timeline: try await runtime.engine.timeline(guid)
                )
            }

            /// Prints the run's report (its exit agent's event) as a table or JSON; true when it found hosts.
            private func present(
                _ definition: Story,
                guid: String,
                record: RunRecord,
                events: [EventRecord],
                timeline: [TimelineEntry]
            ) throws -> Bool {
                let exit = Story.snakeCase(definition.exitAgent ?? "build_report")
                guard let report = events.last(where: { $0.agent == exit && !$0.isError })?.payload else {
                    // The run's error names the agent that failed and why; other failures are printed once each.
                    for entry in timeline where entry.outcome == .failed {
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
