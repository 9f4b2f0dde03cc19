import QuarryCore
import QuarryLiquid

/// A story checked and ready to run: each agent created once, its options parsed once.
struct CompiledStory: Sendable {
    struct Agent: Sendable {
        var definition: AgentDefinition
        var instance: any StoryAgent
        var templates: LiquidOptions
        /// Snake-cased names of the agents that receive this one's events.
        var receivers: [String]
        /// The agents whose names appear in this one's options: their events become template variables
        /// (`{{ search.hits }}`, Tines' form without the dot), loaded only for agents that are named.
        var namedAgents: Set<String>
        /// The named agents written with a dot (`{{ .search.hits }}`): only these may need their latest event in
        /// the run when the event handled does not descend from them, which costs a read per delivery.
        var dottedAgents: Set<String>
        /// The story's aliases this agent's options name, with the agents each stands for.
        var aliases: [String: [String]]
    }

    var story: Story
    var agents: [String: Agent]
    /// The agents whose events mean the run reached the end of the story: the exit agent, else those nothing
    /// receives from.
    var terminalAgents: Set<String>
    /// Whether events can come back to an agent they passed (a loop a trigger ends): runs are then bounded by the
    /// story's `max_run_events`.
    var hasLoop: Bool

    /// Compiles `story` with the agent types of `registry`, or throws every problem ``StoryLinter`` finds.
    init(_ story: Story, agents registry: AgentRegistry) throws(StoryProblems) {
        let problems = StoryLinter.problems(in: story, agents: registry).filter { !$0.isWarning }
        guard problems.isEmpty else { throw StoryProblems(problems) }
        self.story = story
        var agents: [String: Agent] = [:]
        let disabled = Set(story.agents.filter(\.disabled).map(\.key))
        for definition in story.agents where !definition.disabled {
            // Snake-cased like the names, so that `.Search.hits` and `{{ search.hits }}` both name `search`.
            let optionsText = Story.snakeCase(definition.options.serialized())
            let aliases = story.aliases.filter { optionsText.contains($0.key) }
            let named = story.agents.map(\.key).filter { optionsText.contains($0) } + aliases.map(\.key)
            // The names right after a dot, snake-cased: `.Search-Results.hits` names `search_results`.
            let afterDots = definition.options.serialized().split(separator: ".").dropFirst().map { segment in
                Story.snakeCase(String(segment.prefix { $0.isLetter || $0.isNumber || "_- ".contains($0) }))
            }
            // The linter has created each agent and parsed each option already; these cannot fail now.
            guard let type = registry[definition.type],
                let instance = try? type.init(definition: definition),
                let templates = try? StoryLinter.environment.parseOptions(definition.options)
            else { continue }
            agents[definition.key] = Agent(
                definition: definition,
                instance: instance,
                templates: templates,
                receivers: story.receivers(of: definition).map(\.key).filter { !disabled.contains($0) },
                namedAgents: Set(named),
                dottedAgents: Set(named).intersection(afterDots),
                aliases: Dictionary(aliases.map { ($0.key, $0.members) }, uniquingKeysWith: { first, _ in first })
            )
        }
        self.agents = agents
        hasLoop = Self.hasLoop(agents)
        terminalAgents = Set(
            agents.keys.filter { key in
                if let exit = story.exitAgent { return key == exit }
                return agents[key]?.receivers.isEmpty ?? false
            }
        )
    }

    private static func hasLoop(_ agents: [String: Agent]) -> Bool {
        var state: [String: Int] = [:]  // 1: on the path, 2: done
        func loops(from key: String) -> Bool {
            if state[key] == 1 { return true }
            if state[key] == 2 { return false }
            state[key] = 1
            defer { state[key] = 2 }
            return (agents[key]?.receivers ?? []).contains { loops(from: $0) }
        }
        return agents.keys.sorted().contains { loops(from: $0) }
    }

    /// Whether an event of `agent` means the run reached the end of the story.
    func isTerminal(_ agent: String) -> Bool {
        terminalAgents.contains(agent)
    }
}
