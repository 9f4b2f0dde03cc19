import ArgumentParser
import Foundation
import QuarryCore
import QuarryLiquid

extension Quarry {
    /// `quarry template render`: try a story's template from the command line.
    struct Template: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Work with Liquid templates, the language of every story option.",
            subcommands: [Render.self]
        )

        struct Render: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Render a template and print the output, or the error with its line and column.",
                discussion: """
                    Variables come from --vars. Tines-style references read them too: `.agent.path` reads \
                    vars["agent"], `.CREDENTIAL.name` and `{% credential name %}` read vars["CREDENTIAL"]["name"], \
                    `.RESOURCE.name` and `{% global_resource name %}` read vars["RESOURCE"]["name"]. `include` and \
                    `render` load NAME.liquid from the template's directory (or --includes).

                    Examples:
                      quarry template render report.liquid --vars @event.json
                      echo '{{ "Evil.Example." | downcase }}' | quarry template render -
                      quarry template render email.liquid --vars '{"hosts":["10.1.0.2"]}' --strict

                    Exit status: 0 when it rendered, 1 on a syntax error (or, with --strict, an undefined variable or \
                    filter), 64 for a usage error.
                    """
            )

            @Argument(help: "The template file, or - for standard input.") var template: String
            @Option(name: .long, help: "Variables as a JSON object, @file or -.") var vars: String?
            @Flag(name: .long, help: "Fail on undefined variables and filters instead of rendering them empty.")
            var strict = false
            @Option(name: .long, help: "Directory that include/render load templates from.") var includes: String?

            func run() throws {
                let source: String
                let directory: URL
                if template == "-" {
                    source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
                } else {
                    guard let data = FileManager.default.contents(atPath: template) else {
                        throw CommandFailure("cannot read \(template)")
                    }
                    source = String(decoding: data, as: UTF8.self)
                    directory = URL(fileURLWithPath: template).deletingLastPathComponent()
                }
                var variables = JSONObject()
                if let vars {
                    let bytes = try readArgument(vars)
                    let parsed: JSON
                    do {
                        parsed = try JSON.parse(bytes)
                    } catch {
                        throw ValidationError("--vars is not JSON: \(error)")
                    }
                    guard case .object(let object) = parsed else {
                        throw ValidationError("--vars must be a JSON object")
                    }
                    variables = object
                }
                let environment = LiquidEnvironment(
                    mode: strict ? .strict : .lax,
                    loader: DirectoryTemplateLoader(directory: includes.map { URL(fileURLWithPath: $0) } ?? directory)
                )
                do {
                    let name = template == "-" ? "<stdin>" : template
                    let output = try environment.parse(source, name: name).render(
                        variables,
                        story: VariablesStoryContext(variables: variables)
                    )
                    FileHandle.standardOutput.write(Data(output.utf8))
                } catch {
                    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                    throw ExitCode(1)
                }
            }
        }
    }
}

/// Tines' references for trying templates outside a story: agents, credentials and resources come from the
/// variables.
struct VariablesStoryContext: LiquidStoryContext {
    var variables: JSONObject
    let storyRunGUID = UUID().uuidString.lowercased()
    var storyRunLink: String { "quarry://runs/\(storyRunGUID)" }

    func event(ofAgentNamed name: String) throws(LiquidError) -> JSON? { variables[name] }

    func credential(named name: String) throws(LiquidError) -> String {
        guard case .string(let value)? = variables["CREDENTIAL"]?[name] else {
            throw LiquidError(.render, "no credential '\(name)' in vars[\"CREDENTIAL\"]")
        }
        return value
    }

    func globalResource(named name: String) throws(LiquidError) -> JSON {
        guard let value = variables["RESOURCE"]?[name] else {
            throw LiquidError(.render, "no resource '\(name)' in vars[\"RESOURCE\"]")
        }
        return value
    }

    func story(named name: String) throws(LiquidError) -> JSON {
        guard let value = variables["STORY"]?[name] else {
            throw LiquidError(.render, "no story '\(name)' in vars[\"STORY\"]")
        }
        return value
    }
}
