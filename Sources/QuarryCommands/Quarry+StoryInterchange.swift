import ArgumentParser
import Foundation
import QuarryAgents
import QuarryCore
import QuarryStories

extension Quarry.StoryCommand {
    /// `quarry story import EXPORT.json`: Tines and Huginn exports as story files.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a Tines story export or a Huginn scenario into Quarry story files (docs/stories.md).",
            discussion: """
                Reads a Tines export (schema_version 3, 2020–2021) or a Huginn scenario (schema_version 1) and \
                writes one YAML file per story — the story and each of Tines' embedded send_to_stories — named \
                after the story (snake_cased). The same export always gives the same files. Agent types Quarry \
                does not have are kept disabled with their options; the problems lint would report are printed.

                Examples:
                  quarry story import jarm.json --out stories/
                  quarry story import scenario.json

                Exit status: 0 when the stories lint clean (warnings are printed), 1 when the files were written \
                with problems to fix or nothing could be imported (the message says why), 64 for a usage error.
                """
        )
        @Argument(help: "The export (a Tines story export or a Huginn scenario, JSON).") var file: String
        @Option(name: .long, help: "The directory to write the stories to (default: the current directory).")
        var out: String = "."
        @Flag(name: .long, help: "Replace a file that holds a different story of the same name.") var force = false

        func run() async throws {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                printError("\(file): cannot read it: \(error.localizedDescription)")
                throw ExitCode(1)
            }
            if text.drop(while: \.isWhitespace).first != "{", (try? Story(text: text)) != nil {
                printError("\(file) is a Quarry story already, not a Tines or Huginn export (JSON): lint or run it")
                throw ExitCode(1)
            }
            let results: [StoryImport.Result]
            do {
                results = try StoryImport.stories(fromExport: text, agents: .builtIn)
            } catch let error as StoryProblems {
                for problem in error.problems { printError("\(file): \(problem)") }
                throw ExitCode(1)
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            var planned: [(path: String, yaml: String, result: StoryImport.Result)] = []
            for result in results {
                let yaml = try StoryYAML.text(result.story)
                let name = Story.snakeCase(result.name)
                let path = (out as NSString).appendingPathComponent("\(name.isEmpty ? "imported_story" : name).yaml")
                if !force, let existing = try? String(contentsOfFile: path, encoding: .utf8), existing != yaml {
                    printError(
                        "\(path) exists and holds something else: move it, or pass --force to replace it"
                    )
                    throw ExitCode(1)
                }
                planned.append((path, yaml, result))
            }
            var failed = false
            for (path, yaml, result) in planned {
                try yaml.write(toFile: path, atomically: true, encoding: .utf8)
                print("\(path): story '\(result.name)' (\(result.story["agents"]?.arrayValue?.count ?? 0) agents)")
                let map = StorySourceMap(text: yaml)
                for problem in result.problems {
                    let position = map.position(of: problem).map { ":\($0.line):\($0.column)" } ?? ""
                    printError("\(path)\(position): \(problem)")
                    if !problem.isWarning { failed = true }
                }
                let story = try Story(text: yaml)
                for name in story.credentials { print("  needs credential \(name): quarry credentials set \(name)") }
                for name in story.resources { print("  needs resource \(name): quarry resources set \(name) VALUE") }
            }
            if failed { throw ExitCode(1) }
        }
    }

    /// `quarry story export STORY.yaml --format tines|huginn`.
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a story as a Tines export or a Huginn scenario that imports back to the same story.",
            discussion: """
                For Tines, the stories its send_to_story agents run are embedded (found by name among the story \
                files of --stories, by default the story's own directory). Agent types the other product lacks \
                are written as Quarry::<type> with their options, which only Quarry imports; what the export \
                leaves out is printed on standard error.

                Examples:
                  quarry story export stories/dns-threat-hunt.yaml --format tines > hunt.tines.json
                  quarry story export my-hunt.yaml --format huginn --out my-hunt.huginn.json

                Exit status: 0 on success, 1 when the story does not load or a sub-story is missing, 64 for a \
                usage error.
                """
        )
        @Argument(help: "The story file (YAML or JSON).") var file: String
        @Option(
            name: .long,
            help: "tines or huginn.",
            transform: { text in
                guard let format = StoryImport.Format(rawValue: text.lowercased()) else {
                    throw ValidationError("unknown format '\(text)': tines or huginn")
                }
                return format
            }
        )
        var format: StoryImport.Format
        @Option(name: .long, help: "Write the export to this file (default: standard output).") var out: String?
        @Option(
            name: .long,
            help: "Where to find the stories send_to_story agents run (default: the file's directory)."
        )
        var stories: String?

        func run() async throws {
            let story = try Quarry.StoryCommand.storyFile(file)
            let directory = stories ?? (file as NSString).deletingLastPathComponent
            let subStories =
                format == .tines ? try Self.subStories(of: story, in: directory.isEmpty ? "." : directory) : []
            let result = try StoryExport.export(
                story,
                as: format,
                subStories: subStories,
                agents: .builtIn,
                exportedAt: Date()
            )
            for note in result.notes { printError("note: \(note)") }
            let text = result.export.serialized(pretty: true) + "\n"
            if let out {
                try text.write(toFile: out, atomically: true, encoding: .utf8)
            } else {
                print(text, terminator: "")
            }
        }

        /// The stories `story`'s send_to_story agents run, and theirs, from the story files of `directory`.
        static func subStories(of story: Story, in directory: String) throws -> [Story] {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var available: [String: Story] = [:]
            for name in files.sorted() where [".yaml", ".yml"].contains(where: name.hasSuffix) {
                let path = (directory as NSString).appendingPathComponent(name)
                if let candidate = try? Story(contentsOf: path) {
                    available[Story.snakeCase(candidate.name)] = candidate
                }
            }
            let (found, missing) = story.subStories { available[Story.snakeCase($0)] }
            for (agent, name) in missing {
                printError("\(agent.location): runs story '\(name)', which no story file in \(directory) holds")
            }
            if !missing.isEmpty { throw ExitCode(1) }
            return found
        }
    }
}
