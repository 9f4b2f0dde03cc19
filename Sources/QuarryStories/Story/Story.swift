public import QuarryCore

/// A hunt written down: agents that receive events from each other, as a story file says (YAML or JSON).
///
/// ```yaml
/// name: DNS threat hunt
/// agents:
///   - name: Start hunt
///     type: webhook
///   - name: Search DNS queries
///     type: elasticsearch
///     receives_from: [Start hunt]
///     options: { index: "packetbeat-*", query: { … } }
/// ```
///
/// Agents are referred to in templates by their snake-cased name (`{{ .search_dns_queries.hits }}`), as in Tines.
/// Parsing only reads the shape; ``StoryLinter`` says what is wrong with it, agent by agent.
public struct Story: Sendable {
    public var name: String
    public var description: String
    public var agents: [AgentDefinition]
    /// The agent whose event a caller (`send_to_story`, `quarry story run`) receives as the story's result.
    public var exitAgent: String?
    /// The credentials and global resources the story needs, by name.
    public var credentials: [String]
    public var resources: [String]
    /// The most events the story keeps; older ones are removed first (0: no limit).
    public var maxEvents: Int
    /// The most events one run of a story with a loop may emit before it fails (0: no limit): a loop whose trigger
    /// never stops matching ends there instead of running forever.
    public var maxRunEvents: Int
    public var form: StoryForm?
    /// Names templates may use for whichever of several agents is nearest upstream (`aliases: {Search: [Search 1,
    /// Search 2]}` makes `{{ .search.body }}` read the event of `search_1` or `search_2`, the one the handled event
    /// descends from most closely). Imported Tines stories need them: Tines allows two agents one name, and loops
    /// are written that way.
    public var aliases: [StoryAlias]
    /// Where the author placed each agent (by snake-cased name), as diagram hints: the diagram keeps their order.
    public var layout: [String: DiagramPosition]
    /// The story as it was read, for the engine's records.
    public var source: JSON
    /// The text it was read from (YAML with its comments, or JSON), when it was read from text: kept so that
    /// what is downloaded or edited is what was written.
    public var text: String?

    /// The agents that receive the events of `agent`.
    public func receivers(of agent: AgentDefinition) -> [AgentDefinition] {
        agents.filter { $0.sources.contains(agent.key) }
    }

    /// The agents that nothing feeds: where runs start.
    public var entryAgents: [AgentDefinition] { agents.filter { $0.sources.isEmpty && !$0.disabled } }

    /// `Search DNS queries` → `search_dns_queries`: lower case, runs of anything but letters and digits as one `_`.
    public static func snakeCase(_ name: String) -> String {
        var result = ""
        var pendingUnderscore = false
        for character in name.lowercased() {
            if character.isLetter || character.isNumber {
                if pendingUnderscore && !result.isEmpty { result.append("_") }
                pendingUnderscore = false
                result.append(character)
            } else {
                pendingUnderscore = true
            }
        }
        return result
    }
}

/// One agent of a story as written.
public struct AgentDefinition: Sendable {
    public var name: String
    /// The snake-cased name templates use.
    public var key: String
    public var type: String
    public var options: JSON
    /// Snake-cased names of the agents this one receives events from.
    public var sources: [String]
    public var schedules: [ScheduleDefinition]
    /// Seconds an event of this agent is kept (nil: until the story's `max_events` pushes it out).
    public var keepEventsFor: Double?
    public var retry: RetryPolicy
    /// Seconds one attempt may take before it counts as failed.
    public var timeout: Double
    /// Where in the story file the agent is, for messages: `agents[2] (Search DNS queries)`.
    public var location: String
    /// A disabled agent is kept in the story but never runs: nothing is delivered to it. An imported agent whose
    /// type Quarry does not have is disabled, with its type and options as they were.
    public var disabled: Bool

    /// The `type` of the agents through which webhooks start runs: the engine finds a story's webhooks by it, and
    /// the linter treats what they receive as input from outside.
    public static let webhookType = "webhook"

    /// Whether webhooks start runs at this agent.
    public var isWebhook: Bool { type == Self.webhookType }
}

/// A name for several agents, read by templates as whichever of them the handled event descends from most
/// closely (else the one with the latest event in the run).
public struct StoryAlias: Sendable, Equatable {
    /// As written; templates use it snake-cased.
    public var name: String
    public var key: String
    /// Snake-cased names of the agents it stands for.
    public var members: [String]

    public init(name: String, members: [String]) {
        self.name = name
        self.key = Story.snakeCase(name)
        self.members = members.map(Story.snakeCase)
    }
}

/// Where an agent's box was placed in the editor the story came from (Tines' `diagram_layout`): x grows right, y
/// down.
public struct DiagramPosition: Sendable, Equatable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A cron schedule that starts runs at an agent, in a time zone.
public struct ScheduleDefinition: Sendable {
    public var cron: String
    public var timeZone: String
}

/// How often and how patiently the engine tries an agent again after a failure that may pass.
public struct RetryPolicy: Sendable, Equatable {
    public var maximumAttempts: Int
    /// Seconds before the second attempt; each later one waits twice as long, with jitter, up to `maximumDelay`.
    public var initialDelay: Double
    public var maximumDelay: Double

    public init(maximumAttempts: Int = 3, initialDelay: Double = 1, maximumDelay: Double = 300) {
        self.maximumAttempts = maximumAttempts
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures): exponential, with ±25 % jitter so that
    /// retries of many runs do not arrive together.
    public func delay(afterAttempt attempt: Int) -> Double {
        let exponential = min(maximumDelay, initialDelay * Double(1 << min(attempt - 1, 30)))
        return exponential * Double.random(in: 0.75...1.25)
    }
}

/// The web form that starts a story: fields become the webhook event's members.
public struct StoryForm: Sendable {
    public struct Field: Sendable {
        public var name: String
        public var label: String
        public var type: String
        public var required: Bool
        public var defaultValue: JSON?
        public var options: [String]
    }

    public var title: String
    public var description: String
    public var fields: [Field]
    /// `public` forms are served to anyone holding their secret link (`/forms/<story>/<secret>`), as Tines' public
    /// forms; `private` ones (the default) only to signed-in users who may start runs.
    public var isPublic: Bool
}

/// A problem in a story file, with the agent and the option it concerns.
public struct StoryProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// `agents[2] (Search DNS queries)`, or `story` for the file as a whole.
    public var location: String
    /// The option concerned (`options.query.size`), if any.
    public var option: String?
    public var message: String
    /// A warning points at something risky that still runs; the engine refuses a story only for errors.
    public var isWarning: Bool
    /// Where in the text, when the parser knew it (a YAML syntax error); ``StorySourceMap`` finds the rest.
    public var line: Int?
    public var column: Int?

    public init(
        _ location: String,
        option: String? = nil,
        _ message: String,
        isWarning: Bool = false,
        line: Int? = nil,
        column: Int? = nil
    ) {
        self.location = location
        self.option = option
        self.message = message
        self.isWarning = isWarning
        self.line = line
        self.column = column
    }

    public var description: String {
        let prefix = isWarning ? "warning: " : ""
        if let option { return "\(prefix)\(location): \(option): \(message)" }
        return "\(prefix)\(location): \(message)"
    }
}

/// Several problems at once: the linter reports every problem, not the first.
public struct StoryProblems: Error, Sendable, CustomStringConvertible {
    public var problems: [StoryProblem]

    public init(_ problems: [StoryProblem]) { self.problems = problems }

    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
