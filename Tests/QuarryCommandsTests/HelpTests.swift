import ArgumentParser
import Foundation
import QuarryCommands
import QuarryTesting
import Testing

/// Every command's `--help` as a newcomer reads it: examples that are real command lines, the exit statuses, and a
/// description for every positional argument.
@Suite(.mayBlock)
struct HelpTests {
    /// Every command under `quarry`, with its path of names (`["story", "lint"]`).
    static func commands(
        under command: any ParsableCommand.Type = Quarry.self,
        path: [String] = []
    ) -> [(path: [String], type: any ParsableCommand.Type)] {
        let configuration = command.configuration
        let name = configuration.commandName ?? ""
        let here = command == Quarry.self ? [] : path + [name]
        if configuration.subcommands.isEmpty { return [(here, command)] }
        return configuration.subcommands.flatMap { commands(under: $0, path: here) }
    }

    /// The words of one shell command line: single and double quotes group, nothing is expanded.
    static func words(_ line: Substring) -> [String] {
        var words: [String] = []
        var word = ""
        var quote: Character?
        var inWord = false
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { word.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(character)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// The `quarry …` commands of an example line: each part of a pipeline that runs quarry, without the
    /// environment assignments before it and the redirection after it.
    static func quarryCommands(in line: String) -> [[String]] {
        line.split(separator: "|").compactMap { part in
            var words = Self.words(part).drop { $0.contains("=") && !$0.hasPrefix("-") }
            if let redirect = words.firstIndex(where: { $0 == ">" }) { words = words[..<redirect] }
            guard words.first == "quarry" else { return nil }
            return Array(words.dropFirst())
        }
    }

    @Test func everyCommandHasExamplesThatParseAndItsExitStatuses() throws {
        let commands = Self.commands()
        #expect(commands.count >= 38, "\(commands.count) commands")
        var examples = 0
        for (path, type) in commands {
            let help = Quarry.helpMessage(for: type, columns: 200)
            let name = "quarry " + path.joined(separator: " ")
            #expect(help.contains("Examples:"), "\(name) --help has no examples")
            let words = help.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains("Exit status:"), "\(name) --help does not document its exit statuses")
            guard let start = help.range(of: "Examples:") else { continue }
            let lines = help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
                .dropFirst().prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            #expect(!lines.isEmpty, "\(name): an empty Examples section")
            for line in lines {
                for arguments in Self.quarryCommands(in: line.trimmingCharacters(in: .whitespaces)) {
                    examples += 1
                    #expect(
                        throws: Never.self,
                        "\(name): the example `quarry \(arguments.joined(separator: " "))` does not parse"
                    ) {
                        _ = try Quarry.parseAsRoot(arguments)
                    }
                }
            }
            // ARGUMENTS lists each positional argument as `<name>` followed by its description on the same line.
            if let arguments = help.range(of: "ARGUMENTS:") {
                let section = help[arguments.upperBound...].split(separator: "\n").prefix { $0.hasPrefix(" ") }
                for line in section where line.trimmingCharacters(in: .whitespaces).hasPrefix("<") {
                    let described = line.trimmingCharacters(in: .whitespaces).split(separator: " ").count > 1
                    #expect(
                        described,
                        "\(name): the argument \(line.trimmingCharacters(in: .whitespaces)) has no description"
                    )
                }
            }
        }
        #expect(examples >= 60, "\(examples) example command lines")
    }
}
