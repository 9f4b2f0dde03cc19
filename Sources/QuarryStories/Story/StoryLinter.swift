import Foundation
import QuarryCore
public import QuarryLiquid

/// Everything wrong with a story, each problem with the agent and option it concerns. The engine refuses a story
/// with the same messages `quarry story lint` prints.
public enum StoryLinter {
    /// How story templates are parsed and rendered: lax, as in Tines (an undefined variable renders empty).
    public static let environment = LiquidEnvironment()

    /// Every problem of `story`, errors and warnings, with the agent types of `agents`.
    public static func problems(in story: Story, agents registry: AgentRegistry) -> [StoryProblem] {
        var problems: [StoryProblem] = []
        var seen: [String: String] = [:]
        for agent in story.agents where !agent.key.isEmpty {
            if let first = seen[agent.key] {
                problems.append(
                    StoryProblem(
                        agent.location,
                        option: "name",
                        "the name is already used by \(first) (names are compared snake_cased)"
                    )
                )
            }
            seen[agent.key] = seen[agent.key] ?? agent.location
        }
        let keys = Set(story.agents.map(\.key))
        problems += aliasProblems(story, keys: keys)
        for agent in story.agents {
            problems += optionProblems(agent, registry)
            for source in agent.sources where !keys.contains(source) {
                problems.append(
                    StoryProblem(
                        agent.location,
                        option: "receives_from",
                        "no agent named '\(source)' in this story" + Suggestion.hint(for: source, in: keys.sorted())
                    )
                )
            }
            for schedule in agent.schedules {
                do {
                    _ = try CronSchedule(schedule.cron, timeZone: schedule.timeZone)
                } catch {
                    problems.append(StoryProblem(agent.location, option: "schedule", "\(error)"))
                }
            }
        }
        problems += cycleProblems(story)
        problems += referenceProblems(story)
        problems += untrustedDestinationProblems(story, registry)
        if story.agents.contains(where: { !$0.key.isEmpty }) && story.entryAgents.isEmpty {
            problems.append(
                StoryProblem("story", option: "agents", "no agent starts the story: every agent receives from another")
            )
        }
        if let exit = story.exitAgent, !keys.contains(exit) {
            problems.append(
                StoryProblem(
                    "story",
                    option: "exit_agent",
                    "no agent named '\(exit)' in this story" + Suggestion.hint(for: exit, in: keys.sorted())
                )
            )
        }
        if let text = story.text {
            for position in StorySourceMap(text: text).unquotedTemplates() {
                problems.append(
                    StoryProblem(
                        "story",
                        "a template YAML read as a mapping: '{{' opens a YAML mapping, so quote the template "
                            + "(\"{{ … }}\")",
                        line: position.line,
                        column: position.column
                    )
                )
            }
        }
        return problems
    }

    /// An alias names agents of the story, and no agent has its name (a template could not tell them apart).
    private static func aliasProblems(_ story: Story, keys: Set<String>) -> [StoryProblem] {
        var problems: [StoryProblem] = []
        for alias in story.aliases {
            if alias.key.isEmpty || keys.contains(alias.key) {
                problems.append(
                    StoryProblem(
                        "story",
                        option: "aliases.\(alias.name)",
                        alias.key.isEmpty ? "an alias needs a name" : "an agent already has this name"
                    )
                )
            }
            for member in alias.members where !keys.contains(member) {
                problems.append(
                    StoryProblem(
                        "story",
                        option: "aliases.\(alias.name)",
                        "no agent named '\(member)' in this story" + Suggestion.hint(for: member, in: keys.sorted())
                    )
                )
            }
        }
        return problems
    }

    private static func optionProblems(_ agent: AgentDefinition, _ registry: AgentRegistry) -> [StoryProblem] {
        guard let type = registry[agent.type] else {
            if agent.type.isEmpty { return [] }
            if agent.disabled {
                // An imported agent Quarry has no equivalent for: kept, reported, never run.
                return [
                    StoryProblem(
                        agent.location,
                        option: "type",
                        "disabled: Quarry has no agent type '\(agent.type)', so this agent never runs (its options "
                            + "are kept; replace it with Quarry agents to use it)",
                        isWarning: true
                    )
                ]
            }
            let types = registry.types.map { $0.type }
            let known = types.joined(separator: ", ")
            let hint = Suggestion.closest(to: agent.type, in: types).map { "did you mean '\($0)'? " } ?? ""
            return [
                StoryProblem(
                    agent.location,
                    option: "type",
                    "unknown agent type '\(agent.type)' (\(hint)known: \(known))"
                )
            ]
        }
        var problems: [StoryProblem] = []
        let specs = Dictionary(uniqueKeysWithValues: type.options.map { ($0.name, $0) })
        let options = agent.options.objectValue ?? [:]
        for (name, value) in options {
            guard let spec = specs[name] else {
                let names = type.options.map(\.name)
                let hint = Suggestion.closest(to: name, in: names).map { "did you mean '\($0)'? " } ?? ""
                problems.append(
                    StoryProblem(
                        agent.location,
                        option: "options.\(name)",
                        "unknown option for \(type.type) (\(hint)known: \(names.joined(separator: ", ")))"
                    )
                )
                continue
            }
            if let message = kindMismatch(value, spec) {
                problems.append(StoryProblem(agent.location, option: "options.\(name)", message))
            }
        }
        for spec in type.options where spec.required && options[spec.name] == nil {
            problems.append(StoryProblem(agent.location, option: "options.\(spec.name)", "required option is missing"))
        }
        do {
            // Rendering is lax (an unknown filter passes its input through, as in Tines), so a misspelt filter would
            // go unnoticed: the linter names it.
            for template in try environment.parseOptions(agent.options).templates {
                for filter in template.unknownFilters {
                    let path = template.name.map { $0 == "options" ? "options" : "options.\($0)" } ?? "options"
                    problems.append(
                        StoryProblem(
                            agent.location,
                            option: path,
                            "unknown filter '\(filter)'" + Suggestion.hint(for: filter, in: environment.filterNames)
                        )
                    )
                }
            }
        } catch {
            let option = error.templateName.map { $0 == "options" ? "options" : "options.\($0)" } ?? "options"
            problems.append(StoryProblem(agent.location, option: option, "template error: \(error)"))
        }
        do {
            _ = try type.init(definition: agent)
        } catch {
            problems.append(error)
        }
        return problems
    }

    /// A literal of the wrong kind; a template may render to anything, so templates pass.
    private static func kindMismatch(_ value: JSON, _ spec: OptionSpec) -> String? {
        if case .string(let text) = value, text.contains("{{") || text.contains("{%") { return nil }
        let fits: Bool
        switch (spec.kind, value) {
        case (.any, _): fits = true
        case (.string, .string): fits = true
        case (.integer, .int): fits = true
        case (.integer, .string(let text)): fits = Int(text) != nil
        case (.number, .int), (.number, .double): fits = true
        case (.number, .string(let text)): fits = Double(text) != nil
        case (.boolean, .bool): fits = true
        case (.boolean, .string(let text)): fits = ["true", "false"].contains(text)
        case (.array, .array), (.object, .object): fits = true
        case (.list, .array), (.list, .string): fits = true
        default: fits = false
        }
        guard fits else { return "expected \(spec.kind.rawValue), found \(value.tokenName)" }
        if !spec.allowed.isEmpty, let text = value.stringValue, !spec.allowed.contains(text.lowercased()) {
            return "'\(text)' is not one of \(spec.allowed.joined(separator: ", "))"
        }
        return nil
    }

    /// A loop (Tines' paging pattern: fetch, trigger on "more pages", fetch again) needs a trigger on it, which
    /// ends it by not matching; a cycle without one would run forever. Exactly those cycles remain when triggers
    /// (and disabled agents, which stop events too) are taken out of the graph.
    private static func cycleProblems(_ story: Story) -> [StoryProblem] {
        var state: [String: Int] = [:]  // 1: on the current path, 2: done
        var problems: [StoryProblem] = []
        let byKey = Dictionary(
            story.agents.filter { $0.type != triggerType && !$0.disabled }.map { ($0.key, $0) },
            uniquingKeysWith: { first, _ in first }
        )
        func visit(_ key: String, path: [String]) {
            if state[key] == 2 { return }
            if state[key] == 1 {
                let cycle = Array(path.drop { $0 != key }) + [key]
                problems.append(
                    StoryProblem(
                        byKey[key]?.location ?? key,
                        option: "receives_from",
                        "agents form a cycle with no trigger to end it: \(cycle.joined(separator: " → "))"
                    )
                )
                return
            }
            state[key] = 1
            for source in byKey[key]?.sources ?? [] where byKey[source] != nil { visit(source, path: path + [key]) }
            state[key] = 2
        }
        for agent in story.agents where byKey[agent.key] != nil { visit(agent.key, path: []) }
        return problems
    }

    /// The agent type that decides whether an event goes on: the one that can end a loop.
    static let triggerType = "trigger"

    /// Warns where input from outside (the payload of a webhook that starts the story) decides where a request
    /// that carries a credential goes, or which credential it carries: a caller could send the credential, or a
    /// report, anywhere.
    private static func untrustedDestinationProblems(_ story: Story, _ registry: AgentRegistry) -> [StoryProblem] {
        let entries = story.entryAgents.filter(\.isWebhook).map(\.key)
        guard !entries.isEmpty else { return [] }
        func fromInput(_ text: String) -> Bool {
            entries.contains { text.contains(".\($0)") || text.contains("{{ \($0).") || text.contains("{{\($0).") }
        }
        var problems: [StoryProblem] = []
        for agent in story.agents {
            guard let options = registry[agent.type]?.destinationOptions, !options.isEmpty else { continue }
            let text = agent.options.serialized()
            let credential = agent.options["credential"]?.stringValue ?? ""
            let carriesCredential =
                text.contains("{% credential") || text.contains("{%- credential") || text.contains(".CREDENTIAL.")
                || !credential.isEmpty
            guard carriesCredential else { continue }
            for option in options {
                guard let value = agent.options[option], fromInput(value.serialized()) else { continue }
                problems.append(
                    StoryProblem(
                        agent.location,
                        option: "options.\(option)",
                        "comes from the webhook's input, and this agent sends a credential: a caller could choose "
                            + "where the credential (or what it protects) goes; take it from a resource or the story",
                        isWarning: true
                    )
                )
            }
        }
        return problems
    }

    /// `{{ .agent.path }}` must name an agent upstream of the one whose option it is; credentials and resources
    /// that templates use must be declared.
    private static func referenceProblems(_ story: Story) -> [StoryProblem] {
        var problems: [StoryProblem] = []
        let byKey = Dictionary(story.agents.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for agent in story.agents {
            var upstream = Set<String>()
            var pending = agent.sources
            while let next = pending.popLast() {
                if upstream.insert(next).inserted { pending += byKey[next]?.sources ?? [] }
            }
            for (path, text) in templateStrings(agent.options, path: "options") {
                let unquoted = text.replacingOccurrences(
                    of: #""[^"]*"|'[^']*'"#,
                    with: "''",
                    options: .regularExpression
                )
                for name in matches(agentReference, in: unquoted) {
                    if name == "CREDENTIAL" || name == "RESOURCE" { continue }
                    let members = story.aliases.first { $0.key == name }?.members ?? [name]
                    if !members.contains(where: upstream.contains) {
                        let message =
                            byKey[members[0]] == nil
                            ? "refers to '.\(name)', but no agent has that name"
                            : "refers to '.\(name)', which is not upstream of this agent"
                        problems.append(StoryProblem(agent.location, option: path, message))
                    }
                }
                for name in matches(credentialReference, in: text) where !story.credentials.contains(name) {
                    problems.append(
                        StoryProblem(
                            agent.location,
                            option: path,
                            "uses credential '\(name)', which the story does not declare under credentials"
                        )
                    )
                }
                for name in matches(resourceReference, in: text) where !story.resources.contains(name) {
                    problems.append(
                        StoryProblem(
                            agent.location,
                            option: path,
                            "uses resource '\(name)', which the story does not declare under resources"
                        )
                    )
                }
            }
        }
        return problems
    }

    /// The credentials and resources the templates of `options` name.
    static func secretsUsed(in options: JSON) -> (credentials: Set<String>, resources: Set<String>) {
        var credentials = Set<String>()
        var resources = Set<String>()
        for (_, text) in templateStrings(options, path: "options") {
            credentials.formUnion(matches(credentialReference, in: text))
            resources.formUnion(matches(resourceReference, in: text))
        }
        return (credentials, resources)
    }

    private static func templateStrings(_ value: JSON, path: String) -> [(String, String)] {
        switch value {
        case .string(let text) where text.contains("{{") || text.contains("{%"): return [(path, text)]
        case .array(let items):
            return items.enumerated().flatMap { templateStrings($0.element, path: "\(path)[\($0.offset)]") }
        case .object(let object): return object.flatMap { templateStrings($0.value, path: "\(path).\($0.key)") }
        default: return []
        }
    }

    // A leading-dot reference inside an output or tag: `{{ .search.hits }}`, `{% if .trigger.rule_matched %}`.
    private static let agentReference = try! NSRegularExpression(
        pattern: #"(?:\{\{-?|\{%-?)[^}]*?(?<![\w\]\)])\.([A-Za-z_][A-Za-z0-9_]*)"#
    )
    private static let credentialReference = try! NSRegularExpression(
        pattern: #"(?:\{%-?\s*credential\s+([A-Za-z0-9_\-]+)|\.CREDENTIAL\.([A-Za-z0-9_\-]+))"#
    )
    private static let resourceReference = try! NSRegularExpression(
        pattern: #"(?:\{%-?\s*global_resource\s+([A-Za-z0-9_\-]+)|\.RESOURCE\.([A-Za-z0-9_\-]+))"#
    )

    private static func matches(_ expression: NSRegularExpression, in text: String) -> [String] {
        let range = NSRange(text.startIndex..., in: text)
        return expression.matches(in: text, range: range).compactMap { match in
            for group in 1..<match.numberOfRanges {
                if let range = Range(match.range(at: group), in: text) { return String(text[range]) }
            }
            return nil
        }
    }
}
