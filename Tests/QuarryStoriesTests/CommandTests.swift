import Foundation
import QuarryCore
import QuarrySamples
import QuarryTesting
import Testing

/// The story commands as a user runs them: `quarry story lint`, `quarry hunt dns`, `quarry credentials`.
@Suite(.mayBlock) struct CommandTests {
    /// Runs `quarry ARGUMENTS` with `input` on standard input; returns the exit status, standard output and error.
    static func quarry(_ arguments: [String], input: String = "") async throws -> (Int32, String, String) {
        let result = try await QuarryCommand.run(arguments, input: input)
        return (result.status, result.text, result.error)
    }

    @Test func lintAcceptsTheReferenceStoryAndReportsEveryProblem() async throws {
        let reference = ProjectPaths.root.appendingPathComponent("stories/dns-threat-hunt.yaml").path
        // A data directory that does not exist: no warnings about credentials it would lack.
        let (status, output, _) = try await Self.quarry([
            "story", "lint", reference, "--data", "/nonexistent/quarry-data",
        ])
        #expect(status == 0)
        #expect(output.hasSuffix("ok\n"))
        try await withTemporaryDirectory { directory in
            let broken = directory.appendingPathComponent("broken.yaml")
            try """
            name: broken
            agents:
              - {name: Start, type: webhook}
              - {name: Decide, type: trigger, receives_from: Start, options: {rules: [{type: regex, path: "{{ .nobody.x }}", value: "("}]}}
              - {name: Mail, type: email, receives_from: Decide, options: {recipients: a@b.c, from: a@b.c, subject: s, body: b, smtp_host: h, smtp_password: hunter2}}
            """.write(to: broken, atomically: true, encoding: .utf8)
            let (status, _, errors) = try await Self.quarry(["story", "lint", broken.path])
            #expect(status == 1)
            let lines = errors.split(separator: "\n").map(String.init)
            #expect(
                lines.contains {
                    $0.contains("agents[1] (Decide): options.rules[0].value: not a valid regular expression")
                }
            )
            #expect(
                lines.contains {
                    $0.contains(
                        "agents[1] (Decide): options.rules[0].path: refers to '.nobody', but no agent has that name"
                    )
                }
            )
            #expect(
                lines.contains {
                    $0.contains("agents[2] (Mail): options.smtp_password: a password written in the story")
                }
            )
            #expect(!errors.contains("hunter2"))
        }
    }

    /// Broken stories as people write them, with the message and position `story lint` must print.
    static let brokenStories: [(text: String, expected: String)] = [
        ("name: x\nagents:\n  - name: a\n   type: webhook\n", ":4:4: story: not valid YAML: did not find expected '-'"),
        ("name: \"x\nagents: []\n", ":3:1: story: not valid YAML: found unexpected end of stream"),
        ("name: x\nagents:\n\t- name: a\n", ":3:1: story: not valid YAML: found character that cannot start any token"),
        ("", "story: the file is empty"),
        ("name: x\nagents:\n  - name: a\n    type: webhok\n", ":4:11: agents[0] (a): type: unknown agent type"),
        (
            "name: x\nagents:\n  - {name: a, type: webhook}\n  - {name: b, type: transform, receives_from: c}\n",
            ":4:47: agents[1] (b): receives_from: no agent named 'c'",
        ),
        (
            "name: x\nagents:\n  - {name: s, type: webhook}\n  - {name: t, type: transform, receives_from: s, "
                + "options: {mode: message_only, payload: {a: \"{{ .s.a | upcse }}\"}}}\n",
            "unknown filter 'upcse' (did you mean 'upcase'?)",
        ),
        (
            "name: x\nagents:\n  - {name: s, type: webhook}\n  - name: t\n    type: transform\n    receives_from: s\n"
                + "    options:\n      mode: message_only\n      payload: {{ .s.a | as_object }}\n",
            ":9:17: story: a template YAML read as a mapping",
        ),
        (
            "name: x\nagents:\n  - {name: s, type: webhok}\n",
            "unknown agent type 'webhok' (did you mean 'webhook'?",
        ),
        (
            "name: x\nagents:\n  - {name: start, type: webhook}\n  - {name: t, type: transform, receives_from: strat, "
                + "options: {mode: message_only, paylaod: {}}}\n",
            "no agent named 'strat' in this story (did you mean 'start'?)",
        ),
    ]

    @Test(arguments: brokenStories.indices) func lintNamesTheLineOfEachMistake(_ index: Int) async throws {
        let (text, expected) = Self.brokenStories[index]
        try await withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("story.yaml")
            try text.write(to: file, atomically: true, encoding: .utf8)
            let (status, _, errors) = try await Self.quarry(["story", "lint", file.path])
            #expect(status == 1)
            #expect(errors.contains(expected), "\(errors)")
        }
    }

    @Test func huntDNSOnACaptureAnswersWithTheJSONContract() async throws {
        try await withTemporaryDirectory { directory in
            let capture = directory.appendingPathComponent("net.pcap").path
            let now = Int64(Date().timeIntervalSince1970)
            let summary = try CaptureGenerator.write(
                path: capture,
                configuration: .init(hosts: 12, minutes: 12, start: (now - 720) * 1_000_000_000)
            )
            let domain = CaptureGenerator.plantedDomains[0].name
            let data = directory.appendingPathComponent("data").path
            let (status, output, errors) = try await Self.quarry([
                "hunt", "dns", domain.uppercased() + ".", "--capture", capture, "--resolver", "none", "--json",
                "--data",
                data, "--log-level", "error",
            ])
            #expect(status == 0, "\(errors)")
            #expect(errors.contains("Live lookup: off (--resolver none)"), "\(errors)")
            let report = try JSON.parse(output)
            #expect(report["domain"] == .string(domain))
            #expect(Set(report["resolved_ips"]?["observed"]?.arrayValue ?? []) == ["203.0.113.66", "2001:db8::66"])
            #expect(report["resolved_ips"]?["live"] == [])
            #expect(report["window"]?["from"]?.stringValue?.hasPrefix("20") == true)
            let queried = Set(
                report["hosts"]?.arrayValue?.filter { $0["queried"] == true }.compactMap { $0["ip"]?.stringValue } ?? []
            )
            #expect(queried == summary.plantedLookups[domain])
            for key in [
                "ip", "hostname", "queried", "connected", "first_seen", "last_seen", "dns_queries", "connections",
            ] {
                #expect(report["hosts"]?[0]?[key] != nil, "\(key)")
            }

            // The same capture again: nothing is stored twice, and the answer is the same.
            let (_, again, againErrors) = try await Self.quarry([
                "hunt", "dns", domain, "--capture", capture, "--resolver", "none", "--json", "--data", data,
                "--log-level", "error",
            ])
            let repeated = try JSON.parse(again)
            #expect(
                repeated["dns_queries"] == report["dns_queries"] && repeated["connections"] == report["connections"]
            )
            #expect(repeated["hosts"] == report["hosts"], "\(againErrors)")

            // Subdomains of the registered domain, and the window's mistakes, named.
            let (parentStatus, parentOutput, _) = try await Self.quarry([
                "hunt", "dns", "Evil-CDN.example", "--include-subdomains", "--since", "1h", "--resolver", "none",
                "--json", "--data", data, "--log-level", "error",
            ])
            #expect(parentStatus == 0)
            let parent = try JSON.parse(parentOutput)
            #expect(parent["dns_queries"] == report["dns_queries"])
            for (arguments, message) in [
                (["--from", "now", "--to", "now-1h"], "--to 'now-1h' is before --from 'now'"),
                (["--from", "yesterday-ish"], "--from 'yesterday-ish' is not a time"),
                (["--to", "2026-13-45"], "--to '2026-13-45' is not a time"),
            ] {
                let (code, _, text) = try await Self.quarry(["hunt", "dns", domain, "--data", data] + arguments)
                #expect(code != 0 && code != 2 && text.contains(message), "\(arguments): \(text)")
            }
            let (badName, _, badText) = try await Self.quarry(["hunt", "dns", "evil*.example", "--data", data])
            #expect(badName != 0 && badText.contains("is not a DNS name"))

            // Nobody asked about this one: exit status 2 and the "nothing found" text.
            let (quiet, text, _) = try await Self.quarry([
                "hunt", "dns", "nobody.quiet.example", "--since", "1h", "--resolver", "none", "--data",
                directory.appendingPathComponent("data").path, "--log-level", "error",
            ])
            #expect(quiet == 2)
            #expect(text.contains("No host asked about nobody.quiet.example"))
        }
    }

    @Test func credentialsComeFromStandardInputAndNeverPrint() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.path
            let (set, _, _) = try await Self.quarry(
                ["credentials", "set", "es_key", "--data", data],
                input: "id-1:very-secret-value\n"
            )
            #expect(set == 0)
            let (_, list, _) = try await Self.quarry(["credentials", "list", "--data", data])
            #expect(list == "es_key\n")
            let (_, _, _) = try await Self.quarry([
                "resources", "set", "smtp", #"{"host": "mail.example"}"#, "--data", data,
            ])
            let (_, shown, _) = try await Self.quarry(["resources", "show", "smtp", "--data", data])
            #expect(try JSON.parse(shown)["host"] == "mail.example")
            let database = try Data(contentsOf: directory.appendingPathComponent("stories/stories.sqlite"))
            #expect(database.range(of: Data("very-secret-value".utf8)) == nil)
            let (removed, _, _) = try await Self.quarry(["credentials", "remove", "es_key", "--data", data])
            #expect(removed == 0)
        }
    }

    @Test func runsListAndShowAreReadableAndFindARunByAPrefix() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let story = directory.appendingPathComponent("greet.yaml")
            try """
            name: Greet
            exit_agent: Shape
            agents:
              - {name: Start, type: webhook}
              - {name: Shape, type: transform, receives_from: Start, options: {mode: message_only, payload: {hello: "{{ .start.name }}"}}}
            """.write(to: story, atomically: true, encoding: .utf8)
            let (ran, _, errors) = try await Self.quarry([
                "story", "run", story.path, "--input", "name=ada", "--data", data,
            ])
            #expect(ran == 0, "\(errors)")
            let (listed, list, _) = try await Self.quarry(["runs", "list", "--story", "greet", "--data", data])
            #expect(listed == 0)
            let lines = list.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("RUN       STARTED") == true, "\(list)")
            #expect(lines.count == 2)
            #expect(
                lines[1].contains("succeeded") && lines[1].contains("Greet") && lines[1].contains(#"{"name":"ada"}"#)
            )
            let prefix = String(lines[1].prefix(8))
            let (shown, show, _) = try await Self.quarry(["runs", "show", prefix, "--data", data])
            #expect(shown == 0)
            #expect(show.contains("status   succeeded"))
            #expect(show.contains("shape") && show.contains("emitted"))
            let (asJSON, json, _) = try await Self.quarry(["runs", "show", prefix, "--json", "--data", data])
            #expect(asJSON == 0)
            #expect(try JSON.parse(json)["run"]?["status"]?.stringValue == "succeeded")
            let (missing, _, missingErrors) = try await Self.quarry(["runs", "show", "zzzz", "--data", data])
            #expect(missing == 1)
            #expect(missingErrors.contains("no run zzzz"))
        }
    }

    /// A dry run shows what it would have sent: the whole request, with the secrets in its headers replaced, and the
    /// whole email; `story run --json` holds every event, as its help says.
    @Test func aDryRunShowsTheRequestAndTheEmailItWouldHaveSent() async throws {
        try await withTemporaryDirectory { directory in
            let data = directory.appendingPathComponent("data").path
            let story = directory.appendingPathComponent("notify.yaml")
            try """
            name: Notify
            agents:
              - {name: Start, type: webhook}
              - name: Post it
                type: http_request
                receives_from: Start
                options:
                  url: http://127.0.0.1:9/alerts
                  method: post
                  headers: {Authorization: "Bearer not-a-real-token-42", X-Case: "{{ .start.case }}"}
                  payload: {host: "{{ .start.host }}"}
              - name: Mail it
                type: email
                receives_from: Post it
                options:
                  recipients: [soc@example.com]
                  from: Quarry <quarry@example.com>
                  subject: "Host {{ .start.host }}"
                  body: "<p>Look at <b>{{ .start.host }}</b></p>"
                  smtp_host: 127.0.0.1
                  smtp_port: 9
            """.write(to: story, atomically: true, encoding: .utf8)
            let run = ["story", "run", story.path, "--input", "host=web-1", "--input", "case=C-7", "--dry-run"]
            let (status, text, errors) = try await Self.quarry(run + ["--data", data])
            #expect(status == 0, "\(errors)")
            for expected in [
                "would send (post_it):", "  POST http://127.0.0.1:9/alerts", "  Authorization: Bearer [redacted]",
                "  X-Case: C-7", #"  {"host":"web-1"}"#, "would email (mail_it):",
                "  From: Quarry <quarry@example.com>",
                "  To: soc@example.com", "  Subject: Host web-1", "  via 127.0.0.1:9 (starttls)", "  Look at web-1",
            ] {
                #expect(text.contains(expected), "missing \(expected) in:\n\(text)")
            }
            #expect(!text.contains("not-a-real-token-42"))

            let (jsonStatus, json, _) = try await Self.quarry(run + ["--json", "--data", data])
            #expect(jsonStatus == 0)
            let record = try JSON.parse(json)
            let events = record["events"]?.arrayValue ?? []
            #expect(events.map { $0["agent"]?.stringValue ?? "" } == ["start", "post_it", "mail_it"])
            #expect(events[1]["payload"]?["request"]?["body"]?.stringValue == #"{"host":"web-1"}"#)
            #expect(events[2]["payload"]?["message"]?["html"]?.stringValue == "<p>Look at <b>web-1</b></p>")
            #expect(record["run"]?["dry_run"] == true)

            // quarry runs show prints the same.
            let (_, shown, _) = try await Self.quarry([
                "runs", "show", record["run"]?["guid"]?.stringValue ?? "", "--data", data,
            ])
            #expect(shown.contains("would send (post_it):") && shown.contains("would email (mail_it):"), "\(shown)")
        }
    }
}
