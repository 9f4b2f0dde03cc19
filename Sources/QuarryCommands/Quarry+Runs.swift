import ArgumentParser
import Foundation
import QuarryCore
import QuarryStories

extension Quarry {
    /// `quarry runs list|show`: the runs of the data directory's stories, readable in a terminal, as JSON for scripts.
    /// They read the engine's records only, so they work while `quarry serve` runs.
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect story runs: status, timeline, events.",
            discussion: """
                Examples:
                  quarry runs list --story dns_threat_hunt
                  quarry runs show 4232d591            # a unique prefix of the run's guid is enough
                  quarry runs show 4232d591 --follow   # until the run ends
                  quarry runs show 4232d591 --json

                Exit status: 0 on success, 1 when no run matches or the data directory cannot be read, 64 for a usage \
                error.
                """,
            subcommands: [List.self, Show.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "The latest runs, newest first: start, duration, status, story and input.",
                discussion: """
                    Examples:
                      quarry runs list
                      quarry runs list --story 'DNS threat hunt' --limit 5
                      quarry runs list --json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Option(name: .long, help: "Only runs of this story (its name or snake-cased key).") var story: String?
            @Option(name: .long, help: "How many.") var limit = 20
            @Flag(name: .long, help: "As JSON.") var json = false
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let rows = try await withEngine(store, readOnly: true) { engine -> [(RunRecord, JSON?)] in
                    let name = story.map { Runs.storyName($0, in: engine) }
                    var rows: [(RunRecord, JSON?)] = []
                    for run in try await engine.runs(story: name, limit: limit) {
                        // The entry agent's event is the run's input (a webhook passes its body on).
                        rows.append(
                            (run, try await engine.events(run: run.guid, offset: 0, limit: 1).events.first?.payload)
                        )
                    }
                    return rows
                }
                if json {
                    print(JSON.array(rows.map(\.0.json)).serialized(pretty: true))
                    return
                }
                guard !rows.isEmpty else {
                    printError(story.map { "no run of \($0)" } ?? "no run yet")
                    return
                }
                var table = [["RUN", "STARTED", "DURATION", "STATUS", "STORY", "INPUT"]]
                for (run, input) in rows {
                    table.append([
                        String(run.guid.prefix(8)), Runs.time(run.started),
                        run.ended.map { Runs.duration($0 - run.started) } ?? "running",
                        run.status.rawValue + (run.dryRun ? " (dry)" : ""), run.story,
                        (input.map { $0.serialized() } ?? "").truncated(to: 60),
                    ])
                }
                print(Runs.columns(table))
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A run: its status, its agents' timeline and its result (--json: the whole record).",
                discussion: """
                    Examples:
                      quarry runs show 3f2a
                      quarry runs show 3f2a --follow
                      quarry runs show 3f2a --json | jq '.events[]'

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )
            @Argument(help: "The run's guid, or a prefix of it that only one run has.") var guid: String
            @Flag(name: .long, help: "The run, its timeline and every event as JSON.") var json = false
            @Flag(name: .long, help: "Print the timeline as it grows, until the run ends.") var follow = false
            @OptionGroup var store: StoreOptions

            func run() async throws {
                try await withEngine(store, readOnly: true) { engine in
                    let guid = try await Runs.resolve(guid, in: engine)
                    if json {
                        guard let record = try await engine.run(guid) else { throw CommandFailure("no run \(guid)") }
                        let output: JSON = [
                            "run": record.json,
                            "timeline": .array(try await engine.timeline(guid).map(\.json)),
                            "events": .array(try await engine.events(run: guid).map(\.json)),
                        ]
                        print(output.serialized(pretty: true))
                        return
                    }
                    var printed = 0
                    var record = try await engine.run(guid)
                    guard let first = record else { throw CommandFailure("no run \(guid)") }
                    print("run      \(first.guid)\(first.dryRun ? " (dry run)" : "")")
                    print("story    \(first.story)")
                    print("started  \(Runs.time(first.started))")
                    print("")
                    let widths = [22, 7, 8, 9, 6, 0]
                    print(Runs.columns([["AGENT", "ATTEMPT", "OUTCOME", "TOOK", "EVENTS", "ERROR"]], widths: widths))
                    while true {
                        let steps = try await engine.timeline(guid)
                        if steps.count > printed {
                            let rows = steps[printed...].map { step in
                                [
                                    step.agent, String(step.attempt), step.outcome.rawValue,
                                    Runs.duration(step.ended - step.started), String(step.emitted), step.message ?? "",
                                ]
                            }
                            print(Runs.columns(rows, widths: widths))
                            printed = steps.count
                        }
                        record = try await engine.run(guid)
                        guard follow, record?.status == .running else { break }
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    guard let record else { return }
                    print("")
                    let took = record.ended.map { " in " + Runs.duration($0 - record.started) } ?? ""
                    print("status   \(record.status.rawValue)\(took)")
                    if let error = record.error { print("error    \(error)") }
                    if record.dryRun {
                        let wouldSend = DryRunReport.lines(for: try await engine.events(run: guid))
                        if !wouldSend.isEmpty { print(([""] + wouldSend).joined(separator: "\n"), terminator: "") }
                    }
                    if let story = engine.story(named: record.story), let exit = story.exitAgent,
                        let result = try await engine.lastEvent(run: guid, agent: exit)
                    {
                        print("result   (\(exit))")
                        print(result.serialized(pretty: true))
                    }
                }
            }
        }

        /// A story's name from its name or snake-cased key.
        static func storyName(_ given: String, in engine: StoryEngine<ContinuousClock>) -> String {
            if engine.story(named: given) != nil { return given }
            return engine.storyNames.first { Story.snakeCase($0) == Story.snakeCase(given) } ?? given
        }

        /// The one run whose guid starts with `prefix` (among the latest 10,000).
        static func resolve(_ prefix: String, in engine: StoryEngine<ContinuousClock>) async throws -> String {
            let prefix = prefix.lowercased()
            if try await engine.run(prefix) != nil { return prefix }
            let matches = try await engine.runs(limit: 10_000).filter { $0.guid.hasPrefix(prefix) }
            switch matches.count {
            case 0: throw CommandFailure("no run \(prefix)")
            case 1: return matches[0].guid
            default:
                throw CommandFailure(
                    "\(matches.count) runs start with \(prefix): \(matches.prefix(5).map(\.guid).joined(separator: ", "))"
                        + (matches.count > 5 ? ", …" : "") + "; give more of the guid"
                )
            }
        }

        static func time(_ seconds: Double) -> String { ReadableTime.timestamp(seconds) }

        static func duration(_ seconds: Double) -> String { ReadableTime.duration(seconds) }

        /// Left-aligned columns two spaces apart; `widths` fixes them (0: as wide as the text), else each is as wide as
        /// its widest cell.
        static func columns(_ rows: [[String]], widths: [Int]? = nil) -> String {
            let count = rows.map(\.count).max() ?? 0
            let widths =
                widths ?? (0..<count).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
            return rows.map { row in
                row.enumerated().map { column, cell in
                    column == row.count - 1 || widths[column] == 0
                        ? cell : cell.padding(toLength: max(widths[column], cell.count), withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }.joined(separator: "\n")
        }
    }
}
