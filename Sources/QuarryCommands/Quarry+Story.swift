import ArgumentParser
import Foundation
import Logging
import QuarryAgents
import QuarryCore
import QuarryStories

extension Quarry {
    /// `quarry story lint|run|import|export|schema`.
    struct StoryCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "story",
            abstract: "Check, run and describe stories (docs/stories.md).",
            subcommands: [Lint.self, Run.self, Import.self, Export.self, Schema.self]
        )

        struct Lint: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Report every problem of a story file, with its line, agent and option.",
                discussion: """
                    When the data directory exists, credentials and resources the story declares but that are not \
                    set there are warnings naming the command that sets them.

                    Examples:
                      quarry story lint stories/dns-threat-hunt.yaml
                      quarry story lint my-hunt.yaml --data ./data

                    Exit status: 0 when the story has no error (warnings are printed), 1 otherwise.
                    """
            )
            @Argument(help: "The story file (YAML or JSON).") var file: String
            @OptionGroup var store: StoreOptions

            func run() async throws {
                var problems: [StoryProblem]
                do {
                    let story = try Story(contentsOf: file)
                    problems = StoryLinter.problems(in: story, agents: .builtIn)
                    problems += try await missingSecrets(story)
                } catch let error as StoryProblems {
                    problems = error.problems
                }
                // `file:line:column: problem`, as compilers print them, so that editors jump to the line.
                let map = StorySourceMap(text: (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
                for problem in problems {
                    let position = map.position(of: problem).map { ":\($0.line):\($0.column)" } ?? ""
                    printError("\(file)\(position): \(problem)")
                }
                if problems.contains(where: { !$0.isWarning }) { throw ExitCode(1) }
                print(problems.isEmpty ? "\(file): ok" : "\(file): ok, with \(problems.count) warning(s)")
            }

            /// Warnings for the credentials and resources `story` declares that the data directory does not have (none
            /// when there is no data directory yet). A webhook secret kept as a credential is generated on first load.
            func missingSecrets(_ story: Story) async throws -> [StoryProblem] {
                guard (try? store.existingDataDirectory()) != nil else { return [] }
                let generated = Set(
                    story.agents.filter(\.isWebhook).compactMap { agent in
                        agent.options["secret"]?.stringValue?.firstMatch(of: #/credential\s+([A-Za-z0-9_\-]+)/#)
                            .map { String($0.output.1) }
                    }
                )
                let (credentials, resources) = try await withEngine(store, readOnly: true) { engine in
                    (Set(try engine.vault.credentialNames()), Set(try engine.vault.resourceNames()))
                }
                var problems: [StoryProblem] = []
                for name in story.credentials where !credentials.contains(name) && !generated.contains(name) {
                    problems.append(
                        StoryProblem(
                            "story",
                            option: "credentials",
                            "credential '\(name)' is not set in \(store.dataDirectory.path): quarry credentials set \(name)",
                            isWarning: true
                        )
                    )
                }
                for name in story.resources where !resources.contains(name) {
                    problems.append(
                        StoryProblem(
                            "story",
                            option: "resources",
                            "resource '\(name)' is not set in \(store.dataDirectory.path): quarry resources set \(name) VALUE",
                            isWarning: true
                        )
                    )
                }
                return problems
            }
        }

        struct Run: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Run a story once and print its timeline and its exit event.",
                discussion: """
                    Examples:
                      quarry story run stories/dns-threat-hunt.yaml --input domain=evil.example --dry-run
                      quarry story run hunt.yaml --input domain=evil.example --input 'hours=24' --json

                    Exit status: 0 when the run succeeded, 2 when it ended without a match, 1 when it failed.
                    """
            )
            @Argument(help: "The story file (YAML or JSON).") var file: String
            @Option(
                name: .long,
                help: "A member of the entry event, key=value (repeatable; JSON values keep their type)."
            )
            var input: [String] = []
            @Flag(
                name: .long,
                help:
                    "Run every agent, but record HTTP requests other than GET, emails and sub-stories instead of performing them."
            )
            var dryRun = false
            @Flag(
                name: .long,
                help: "Print one JSON object: the run, its timeline, every event, and the exit event."
            )
            var json = false
            @Option(name: .long, help: "Extra certificate authorities (PEM) to trust for HTTPS and SMTP.") var caFile:
                String?
            @OptionGroup var store: StoreOptions

            func run() async throws {
                let logger = store.makeLogger()
                let story = try Quarry.StoryCommand.storyFile(file)
                let event = try inputEvent(input)
                let (record, timeline, events) = try await run(story, event: event, logger: logger)
                let exit =
                    events.last { !$0.isError && (story.exitAgent.map { Story.snakeCase($0) } == $0.agent) }
                    ?? events.last { !$0.isError }
                if json {
                    let output: JSON = [
                        "run": record.json, "timeline": .array(timeline.map(\.json)),
                        "events": .array(events.map(\.json)),
                        "exit_event": exit.map { ["agent": .string($0.agent), "payload": $0.payload] } ?? .null,
                    ]
                    print(output.serialized(pretty: true))
                } else {
                    print("run \(record.guid): \(record.status.rawValue)\(record.dryRun ? " (dry run)" : "")")
                    for entry in timeline {
                        let milliseconds = String(format: "%8.1f ms", (entry.ended - entry.started) * 1000)
                        var line =
                            "  \(milliseconds)  \(entry.agent.padding(toLength: 24, withPad: " ", startingAt: 0)) \(entry.outcome.rawValue)"
                        if entry.emitted > 0 { line += " (\(entry.emitted))" }
                        if let message = entry.message { line += ": \(message)" }
                        print(line)
                    }
                    if record.dryRun {
                        let wouldSend = DryRunReport.lines(for: events)
                        if !wouldSend.isEmpty { print(([""] + wouldSend).joined(separator: "\n"), terminator: "") }
                    }
                    if let exit {
                        print("exit event (\(exit.agent)):")
                        print(exit.payload.serialized(pretty: true))
                    }
                    if let error = record.error { printError("error: \(error)") }
                }
                switch record.status {
                case .succeeded: return
                case .noMatch: throw ExitCode(2)
                default: throw ExitCode(1)
                }
            }

            /// Runs the story in this process, or has the `quarry serve` that holds the data directory run it.
            private func run(
                _ story: Story,
                event: JSON,
                logger: Logger
            ) async throws -> (RunRecord, [TimelineEntry], [EventRecord]) {
                if let served = ServedDataDirectory.running(in: store.dataDirectory) {
                    let text = try story.text ?? String(contentsOfFile: file, encoding: .utf8)
                    let run = try await ServedStoryRun.run(
                        text,
                        story: story,
                        payload: event,
                        dryRun: dryRun,
                        on: served
                    )
                    return (run.record, run.timeline, run.events)
                }
                let runtime = try await StoryRuntime(
                    dataDirectory: store.dataDirectory,
                    openStore: true,
                    trustedCertificates: caFile,
                    resolver: nil,
                    logger: logger
                )
                do {
                    try await runtime.engine.register(story)
                } catch let error as StoryProblems {
                    await runtime.shutdown()
                    for problem in error.problems { printError("\(file): \(problem)") }
                    throw ExitCode(1)
                }
                do {
                    let (guid, record) = try await runtime.engine.withRunning {
                        let guid = try await runtime.engine.startRun(story: story.name, payload: event, dryRun: dryRun)
                        return (guid, try await runtime.engine.waitForRun(guid))
                    }
                    let timeline = try await runtime.engine.timeline(guid)
                    let events = try await runtime.engine.events(run: guid)
                    await runtime.shutdown()
                    return (record, timeline, events)
                } catch {
                    await runtime.shutdown()
                    throw error
                }
            }
        }

        struct Schema: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print the JSON Schema of story files (for editors), generated from the agents' options.",
                discussion: """
                    Examples:
                      quarry story schema > story.schema.json

                    Exit status: 0 on success, 1 when it fails (the message says why), 64 for a usage error.
                    """
            )

            func run() {
                print(StorySchema.json(agents: .builtIn).serialized(pretty: true))
            }
        }
    }
}

extension Quarry.StoryCommand {
    /// The story in `file`, or its problems printed (`file: problem`) and exit status 1.
    static func storyFile(_ file: String) throws -> Story {
        do {
            return try Story(contentsOf: file)
        } catch let error as StoryProblems {
            for problem in error.problems { printError("\(file): \(problem)") }
            throw ExitCode(1)
        }
    }
}
